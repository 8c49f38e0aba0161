"""Wall time of one N-HARPG iteration vs one Vanilla-PG iteration at the same batch size.

Target (issue 3): N-HARPG <= 3x Vanilla-PG per iteration.  The per-iteration time is measured as
``(T(K2) - T(K1)) / (K2 - K1)`` of whole jitted ``train`` calls (compile excluded, best of
``--repeats``), which cancels initialisation.  ``train`` is the protocol's
``rlsuite.core.agent.make_train(agent)`` of the registry agent (no evaluation episodes).  Every
variant runs in the same process, interleaved, so the printed *ratios* are meaningful on a shared
machine even when the absolute times are not.

    python benchmarks/pg_hvp_overhead.py                      # CartPole, N = 25 episodes, H = 200
    python benchmarks/pg_hvp_overhead.py --env gymnax:Acrobot-v1 --horizon 500 --batch-episodes 10
    python benchmarks/pg_hvp_overhead.py --smoke              # tiny sizes (seconds), writes to /tmp
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import jax
import tyro

from rlsuite import agents
from rlsuite.core.agent import make_train
from rlsuite.core.results import markdown_table, provenance, write_markdown
from rlsuite.envs import make


@dataclasses.dataclass(frozen=True)
class Args:
    """N-HARPG HVP overhead per iteration, relative to Vanilla-PG."""

    env: str = "gymnax:CartPole-v1"
    """Environment id (rlsuite.envs.make)."""
    horizon: int = 200
    """Episode length H."""
    batch_episodes: int = 25
    """Gradient batch N (episodes)."""
    k1: int = 10
    """Iterations of the shorter run."""
    k2: int = 40
    """Iterations of the longer run (per-iteration time = (T(k2) - T(k1)) / (k2 - k1))."""
    repeats: int = 5
    """Interleaved timing repeats (best of)."""
    out: Optional[str] = None
    """Markdown report (default results/benchmarks/pg_hvp_overhead.md; with --smoke under /tmp)."""
    smoke: bool = False
    """Tiny sizes (H = 10, N = 2, 1 vs 3 iterations, 1 repeat): checks the script, not a result."""


SMOKE = dict(horizon=10, batch_episodes=2, k1=1, k2=3, repeats=1, out="/tmp/rlsuite-smoke/benchmarks/pg_hvp_overhead.md")


def _variants(n: int):
    """``{label: (registry name, config overrides)}``."""
    return {
        "Vanilla-PG": ("reinforce", {}),
        "N-PG-IGT": ("npg-igt", {}),
        "N-HARPG (N_B=1, paper)": ("nharpg", {"hessian_episodes": 1}),
        f"N-HARPG (N_B=N={n})": ("nharpg", {"hessian_episodes": n}),
        f"N-HARPG (N_B=N={n}, vmap HVP)": ("nharpg", {"hessian_episodes": n, "hvp_impl": "vmap"}),
    }


def main(args: Args) -> None:
    if args.smoke:
        args = dataclasses.replace(args, **{**SMOKE, "out": args.out or SMOKE["out"]})
    out = args.out or "results/benchmarks/pg_hvp_overhead.md"
    if not 0 < args.k1 < args.k2:
        raise ValueError(f"need 0 < k1 < k2, got k1={args.k1}, k2={args.k2}")

    env, env_params = make(args.env)
    fns = {}
    for name, (agent_name, kw) in _variants(args.batch_episodes).items():
        entry = agents.get(agent_name)
        for k in (args.k1, args.k2):
            cfg = entry.config(
                **kw, horizon=args.horizon, batch_episodes=args.batch_episodes, num_iterations=k,
                eval_every=k, eval_episodes=1,
            )
            train = jax.jit(make_train(entry.make(cfg, env, env_params)))
            hp = entry.default_hparams(cfg)
            jax.block_until_ready(train(jax.random.PRNGKey(0), hp))  # compile
            fns[(name, k)] = (train, hp)

    best = {key: float("inf") for key in fns}
    for r in range(args.repeats):  # interleaved so load changes hit every variant alike
        for key, (train, hp) in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(train(jax.random.PRNGKey(r + 1), hp))
            best[key] = min(best[key], time.perf_counter() - t)

    per_iter = {
        name: (best[(name, args.k2)] - best[(name, args.k1)]) / (args.k2 - args.k1)
        for name, _ in fns
    }
    base = per_iter["Vanilla-PG"]
    rows = []
    for name, t in per_iter.items():
        rows.append([name, f"{1e3 * t:.2f}", f"{t / base:.2f}"])
        print(f"{name:36s} {1e3 * t:8.2f} ms/iteration   ratio to Vanilla-PG {t / base:5.2f}")
    nb1 = per_iter["N-HARPG (N_B=1, paper)"] / base
    nbn = per_iter[f"N-HARPG (N_B=N={args.batch_episodes})"] / base
    verdict = (
        f"Target <= 3x: N-HARPG with the paper's Hessian batch (1 episode) costs **{nb1:.2f}x** a Vanilla-PG "
        f"iteration ({'met' if nb1 <= 3 else 'NOT met'}); with a Hessian batch as large as the gradient batch "
        f"(N_B = N = {args.batch_episodes}, twice the samples) **{nbn:.2f}x** ({'met' if nbn <= 3 else 'NOT met'})."
    )
    print(verdict)
    body = (
        f"Environment `{args.env}`, horizon {args.horizon}, gradient batch N = {args.batch_episodes} episodes, "
        f"policy MLP [32, 32].  Per-iteration time = (T({args.k2} it) - T({args.k1} it)) / {args.k2 - args.k1}, "
        f"best of {args.repeats} interleaved repeats, compile excluded.  An iteration includes sampling "
        "(the engine's episode mode), the GPOMDP gradient, and for N-HARPG the second batch at q_t and the "
        "per-trajectory HVP (jax.jvp over jax.grad).\n\n"
        + markdown_table(["method", "ms / iteration", "ratio to Vanilla-PG"], rows)
        + "\n\n"
        + verdict
        + "\n"
    )
    write_markdown(out, "N-HARPG HVP overhead", body, provenance(seeds=list(range(1, args.repeats + 1))))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
