"""Wall time of one N-HARPG iteration vs one Vanilla-PG iteration at the same batch size.

Target (issue 3): N-HARPG <= 3x Vanilla-PG per iteration.  The per-iteration time is measured as
``(T(K2) - T(K1)) / (K2 - K1)`` of whole jitted ``train`` calls (compile excluded, best of
``--repeats``), which cancels initialisation and the evaluation episodes.  Every variant runs in
the same process, interleaved, so the printed *ratios* are meaningful on a shared machine even
when the absolute times are not.

    python benchmarks/pg_hvp_overhead.py                      # CartPole, N = 25 episodes, H = 200
    python benchmarks/pg_hvp_overhead.py --env gymnax:Acrobot-v1 --horizon 500 --batch-episodes 10
"""

from __future__ import annotations

import argparse
import time

import jax

from rlsuite.agents import npg, reinforce
from rlsuite.core.results import markdown_table, provenance, write_markdown
from rlsuite.envs import make


def _variants(n: int):
    common = dict(horizon=0, batch_episodes=n)  # horizon filled in below
    return {
        "Vanilla-PG": (reinforce, reinforce.ReinforceConfig, {**common}),
        "N-PG-IGT": (npg, npg.NPGConfig, {**common, "method": "igt"}),
        "N-HARPG (N_B=1, paper)": (
            npg,
            npg.NPGConfig,
            {**common, "method": "nharpg", "hessian_episodes": 1},
        ),
        f"N-HARPG (N_B=N={n})": (
            npg,
            npg.NPGConfig,
            {**common, "method": "nharpg", "hessian_episodes": n},
        ),
        f"N-HARPG (N_B=N={n}, vmap HVP)": (
            npg,
            npg.NPGConfig,
            {**common, "method": "nharpg", "hessian_episodes": n, "hvp_impl": "vmap"},
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="gymnax:CartPole-v1")
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--batch-episodes", type=int, default=25)
    ap.add_argument("--k1", type=int, default=10)
    ap.add_argument("--k2", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="results/benchmarks/pg_hvp_overhead.md")
    args = ap.parse_args()

    env, env_params = make(args.env)
    fns = {}
    for name, (mod, cls, kw) in _variants(args.batch_episodes).items():
        kw = {**kw, "horizon": args.horizon, "eval_episodes": 1}
        for k in (args.k1, args.k2):
            cfg = cls(**kw, num_iterations=k, eval_every=k)
            train = jax.jit(mod.make_train(cfg, env, env_params))
            hp = mod.default_hparams(cfg)
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
    write_markdown(
        args.out, "N-HARPG HVP overhead", body, provenance(seeds=list(range(1, args.repeats + 1)))
    )


if __name__ == "__main__":
    main()
