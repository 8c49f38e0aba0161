"""GA vs random search (T = 0) vs OpenES vs PPO on gymnax CartPole-v1 at equal env-step budgets (>= 3 seeds).

All three evolve the same MLP (32, 32) on the same flat parameter vector and the same engine
evaluation (``GA.evaluate``: one episode per individual).  GA: N 64, T 10, sigma 0.05, elite = best of
the top 5 (+ previous elite) re-evaluated on 5 episodes (frames counted).  RS: the same loop with
T = 0.  OpenES (evosax via :mod:`rlsuite.meta.es`): population 64, sigma 0.05, Adam lr 0.03, centred
ranks; its frames are the sum of the population's returns (CartPole pays 1 per step).  Each method
runs generations until it has used ``--budget`` frames; the reported score is the GA elite / the
ES mean on 200 test episodes.  PPO: ``rlsuite.train.run_training("ppo", ...)`` with the registry's
default CartPole config and ``total_timesteps = budget`` (the seeds vmapped in one run); its score
is the runner's final ``eval_return`` (the agent's own evaluation protocol, 16 episodes).

    python experiments/deep_ga/cartpole_compare.py              # 3 seeds, 500k frames each (~3 min)
    python experiments/deep_ga/cartpole_compare.py --smoke      # < 60 s
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

    seeds: int = 3
    """Seeds per method (>= 3)."""
    budget: int = 500_000
    """Environment frames per method and seed."""
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    import jax
    import jax.numpy as jnp

    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.meta import deep_ga as D
    from rlsuite.meta.es import ESConfig, make_es

    seeds, budget = (1, 5_000) if a.smoke else (a.seeds, a.budget)
    N, hidden, horizon = (16, (8,), 100) if a.smoke else (64, (32, 32), None)
    test_eps = 10 if a.smoke else 200
    rows = []
    for method in ("GA", "RS", "OpenES"):
        for seed in range(seeds):
            cfg = D.GAConfig(population=N, truncation=0 if method == "RS" else 10, sigma=0.05, generations=10_000,
                             elite_candidates=5, elite_episodes=5, test_episodes=test_eps, hidden=hidden,
                             horizon=horizon, seed=seed)
            ga = D.build("gymnax:CartPole-v1", cfg)
            t0, frames, gens = time.perf_counter(), 0, 0
            if method != "OpenES":
                seg = jax.jit(lambda s: ga.segment(s, 2))
                state = ga.init()
                while frames < budget:
                    state, m = seg(state)
                    frames += int(np.asarray(m["frames"]).sum())
                    gens += 2
                score = D.test_elite(ga, state, test_eps)["mean_return"]
            else:
                def fitness(theta, key):
                    return ga.evaluate(theta[None], key[None], 1)[0][0]

                es = make_es(ESConfig(population=N, generations=10_000, sigma=0.05, lr=0.03, seed=seed), fitness,
                             jnp.zeros(ga.net.num_params))
                seg = jax.jit(lambda s: es.segment(s, 2))
                state = jax.jit(es.init)(jax.random.PRNGKey(seed), jax.jit(ga.theta0)(jnp.int32(0)))
                while frames < budget:
                    state, m = seg(state)
                    frames += int(np.asarray(m["fitness"]).sum())  # CartPole: return = steps
                    gens += 2
                mean = es.mean(state)
                score = D.test_elite(ga, type("S", (), {"params": mean[None]}), test_eps)["mean_return"]
            wall = time.perf_counter() - t0
            rows.append([method, seed, gens, frames, float(score), round(wall, 1)])
            print(f"{method} seed {seed}: {gens} generations, {frames:,} frames, test return {score:.1f} "
                  f"({wall:.1f} s)", file=sys.stderr, flush=True)
    import dataclasses

    from rlsuite import agents
    from rlsuite.train import run_training

    entry = agents.get("ppo")
    pcfg = entry.smoke_config() if a.smoke else entry.config()
    pcfg = dataclasses.replace(pcfg, total_timesteps=budget)
    t0 = time.perf_counter()
    run_dir = os.path.join("/tmp/rlsuite-smoke/deep_ga" if a.smoke else "runs/deep_ga", f"ppo-cartpole-{os.getpid()}")
    ps = run_training("ppo", "gymnax:CartPole-v1", pcfg, seeds=list(range(seeds)), run_dir=run_dir, segments=2,
                      progress=False)
    wall = time.perf_counter() - t0
    for seed, score in enumerate(ps["final"]["eval_return"]):
        rows.append(["PPO", seed, "-", int(ps[ps["counter"]]), float(score), round(wall / seeds, 1)])
    header = ["method", "seed", "generations", "frames", f"test return ({test_eps} episodes)", "wall s"]
    meta = provenance(seeds=list(range(seeds)), budget_frames=budget, population=N, hidden=hidden, smoke=a.smoke)
    out = out_dir(a.smoke)
    write_csv(os.path.join(out, "cartpole_compare.csv"), header, rows, meta)
    agg = [[m, float(np.mean([r[4] for r in rows if r[0] == m])), float(np.min([r[4] for r in rows if r[0] == m])),
            float(np.mean([r[3] for r in rows if r[0] == m]))] for m in ("GA", "RS", "OpenES", "PPO")]
    body = (markdown_table(["method", "mean test return", "worst seed", "mean frames"], agg)
            + "\n\nPer seed:\n\n" + markdown_table(header, rows) + "\n\nPPO: its runner's final eval_return (the agent's evaluation protocol), seeds vmapped in one run "
            "(wall s = the run's time / seeds).\n")
    write_markdown(os.path.join(out, "cartpole_compare.md"), "GA vs RS vs OpenES vs PPO on CartPole-v1 (equal frames)",
                   body, meta)
    print(open(os.path.join(out, "cartpole_compare.md")).read())


if __name__ == "__main__":
    main(tyro.cli(Args))
