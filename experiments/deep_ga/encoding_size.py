"""Compact seed-chain encoding vs raw parameters (sheet §2; issue target: < 10 MB for a 1M-parameter
policy at 1000 generations).

Builds the real GA for an MLP of about 1M parameters on ``maze:hard`` and reads the byte sizes of
its checkpointed state (``jax.eval_shape``, nothing is allocated) for several population sizes and
generation counts, and times the replay of one chain (``decode``) per mutation step.  Writes
``results/deep_ga/encoding_size.{md,csv}``.

    python experiments/deep_ga/encoding_size.py
    python experiments/deep_ga/encoding_size.py --smoke     # small net, < 60 s
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir  # noqa: E402


@dataclasses.dataclass
class Args:
    """Options (``--help``); ``--smoke`` runs a tiny version that writes to /tmp."""

    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    import jax
    import jax.numpy as jnp

    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.envs import make
    from rlsuite.meta import deep_ga as D

    env, params = make("maze:hard")
    hidden = (64, 64) if a.smoke else (1000, 990)  # 9*1000 + 1000 + 1000*990 + 990 + 990*2 + 2 ~ 1.0M params
    rows = []
    for N, G in ([(8, 10), (8, 100)] if a.smoke else [(100, 1000), (1000, 1000), (1000, 100), (5000, 1000)]):
        ga = D.make_ga(D.GAConfig(population=N, truncation=2, generations=G, hidden=hidden, horizon=10), env, params)
        shp = jax.eval_shape(lambda ga=ga: D.compact(ga.init()))
        nb = lambda x: int(np.prod(x.shape)) * x.dtype.itemsize  # noqa: E731
        chains = nb(shp["chains"]) + nb(shp["lengths"])
        state = sum(nb(x) for x in jax.tree.leaves(shp))
        raw = N * ga.net.num_params * 4
        rows.append([ga.net.num_params, N, G, chains, state, raw, raw / chains])
    # replay cost of one chain (per mutation step), measured on a short chain
    L = 5 if a.smoke else 20
    ga = D.make_ga(D.GAConfig(population=2, truncation=1, generations=L, hidden=hidden, horizon=10), env, params)
    chain = jnp.arange(L + 1, dtype=jnp.int32)
    dec = jax.jit(ga.decode)
    dec(chain, jnp.int32(L + 1)).block_until_ready()
    t0 = time.perf_counter()
    dec(chain, jnp.int32(L + 1)).block_until_ready()
    per_step = (time.perf_counter() - t0) / L
    header = ["policy params", "population N", "generations", "seed-chain bytes", "checkpoint state bytes",
              "raw params bytes (N x P float32)", "raw / chains"]
    meta = provenance(seeds=None, smoke=a.smoke, decode_s_per_mutation=f"{per_step:.4f}")
    out = out_dir(a.smoke)
    write_csv(os.path.join(out, "encoding_size.csv"), header, rows, meta)
    body = (markdown_table(header, rows)
            + f"\n\nThe checkpoint state adds the RNG key, counters and the novelty archive (1000 x 2 float32)."
            f"\nReplaying a chain costs {per_step * 1e3:.1f} ms per mutation step for this "
            f"{rows[0][0]:,}-parameter net on this device (a 1000-generation chain: about "
            f"{per_step * 1000:.0f} s); the GA keeps the population's parameters in memory and replays "
            "chains only on resume.\n")
    write_markdown(os.path.join(out, "encoding_size.md"), "Seed-chain encoding vs raw parameters", body, meta)
    print(open(os.path.join(out, "encoding_size.md")).read())


if __name__ == "__main__":
    main(tyro.cli(Args))
