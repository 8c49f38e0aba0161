"""Cost of one BPG gradient estimate vs one MC (REINFORCE) estimate, M = 20 LQR trajectories.

Two timings, both jitted, compile excluded, median of repeated calls, measured in one run:
- "estimate": sample M episodes with the rollout engine + compute the estimate (what an update costs);
- "estimator only": the gradient computation on a fixed batch.
Target (issue 4): BPG estimate <= 5x the MC estimate's wall time.

    python benchmarks/bpg_cost.py [--M 20] [--repeats 200]
    python benchmarks/bpg_cost.py --smoke      # tiny sizes, writes to /tmp
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from rlsuite.agents import bayes_pg as B
from rlsuite.core.results import markdown_table, provenance, write_markdown
from rlsuite.envs import make

THETA = jnp.array([-0.2, 0.0])
OUT = "results/benchmarks"
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    M: int = 20
    """Trajectories per estimate."""
    repeats: int = 200
    """Timed calls per variant (the median is reported)."""
    out: str = OUT
    """Output folder of bpg_cost.md (``--smoke`` writes to /tmp/rlsuite-smoke/benchmarks unless --out is given)."""
    smoke: bool = False
    """Tiny sizes (CI): M = 5, 5 repeats; never writes results/."""


SMOKE = dict(M=5, repeats=5)


def median_time(f, args, repeats):
    jax.block_until_ready(f(*args))  # compile
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, **SMOKE, out=SMOKE_OUT if args.out == OUT else args.out)
    env, p = make("lqr:lqr-1d")
    variants = [("mc", False), ("bpg1", False), ("bpg2", False), ("bpg1", True), ("bpg2", True)]
    key = jax.random.PRNGKey(0)
    cfg0 = B.BPGConfig(num_episodes=args.M)
    _, batch = jax.jit(B.make_estimator(cfg0, env, p))(key, THETA, B.default_hparams(cfg0))
    rows, base = [], {}
    for est, sparse in variants:
        cfg = B.BPGConfig(estimator=est, num_episodes=args.M, sparse=sparse, dictionary_size=args.M)
        hp = B.default_hparams(cfg)
        full = jax.jit(lambda k, th, cfg=cfg, hp=hp: B.make_estimator(cfg, env, p)(k, th, hp)[0].mean)
        only = jax.jit(lambda b, cfg=cfg, hp=hp: B.estimate(cfg, b, hp).mean)
        t_full = median_time(full, (key, THETA), args.repeats)
        t_only = median_time(only, (batch,), args.repeats)
        name = est + (" (sparse ALD)" if sparse else "")
        if est == "mc":
            base = {"full": t_full, "only": t_only}
        rows.append([name, t_full * 1e6, t_full / base["full"], t_only * 1e6, t_only / base["only"]])
        print(f"{name:18s} estimate {t_full*1e6:8.1f} us  ratio {t_full/base['full']:.2f}   "
              f"estimator-only {t_only*1e6:8.1f} us  ratio {t_only/base['only']:.2f}", flush=True)
    worst = max(r[2] for r in rows)
    body = markdown_table(["estimator", "estimate (us)", "ratio vs MC", "estimator only (us)", "ratio vs MC"], rows)
    body += (f"\n\nTarget: one BPG estimate at M={args.M} <= 5x the MC estimate. Worst measured ratio "
             f"(sampling + estimate): {worst:.2f} -> {'met' if worst <= 5 else 'NOT met'}.\n")
    meta = provenance(seeds="PRNGKey(0)", M=args.M, repeats=args.repeats, env="lqr:lqr-1d (H=20)")
    write_markdown(f"{args.out}/bpg_cost.md", "BPG vs MC gradient-estimate cost", body, meta)
    print(f"worst BPG/MC ratio (estimate incl. sampling): {worst:.2f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
