"""ES engine overhead: one generation of P members through `rlsuite.meta.es` vs a bare `jax.vmap`.

Both sides train the same P PPO runs on gymnax CartPole-v1 and evaluate each at the end
(:func:`rlsuite.meta.es.final_score_fn`):

- engine: :attr:`ES.step` of the hyper-parameter tuner's ES (Open_ES ``ask``, the mapping of the
  unconstrained members into bounded ``lr`` / ``clip_eps``, the population ``vmap``, fitness
  shaping and ``tell``), jitted;
- bare: ``jax.jit(jax.vmap(score))(keys, hparams)`` over the same P hyper-parameter points.

Same compiled sizes (P runs of the same agent config).  Compilation is timed separately (AOT
``lower().compile()``); the run time is the minimum over ``--reps`` interleaved repetitions (the
machine is shared).  Target: engine / bare <= 1.05.  ``--chunk C`` adds an engine row that
evaluates the population ``C`` runs at a time (``lax.map(batch_size=C)``), for reference.

Usage:
    python benchmarks/es_overhead.py                  # P = 8, PPO 65k steps per run
    python benchmarks/es_overhead.py --smoke          # CI: P = 4, the registry's smoke PPO, /tmp
Writes results/benchmarks/es_overhead.{md,csv}.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

import jax
import numpy as np
import tyro

from rlsuite import agents
from rlsuite.core import results
from rlsuite.meta import es as M

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """ES engine generation vs bare vmap of the same training runs."""

    population: int = 8
    """Members (= training runs) per generation."""
    total_timesteps: int = 65_536
    """Environment steps of each PPO run (PureJaxRL CartPole config otherwise: 4 envs x 128 steps)."""
    chunk: Optional[int] = None
    """Also time the engine evaluating this many runs at a time (lax.map batch size)."""
    reps: int = 5
    """Interleaved timed repetitions (the minimum is reported)."""
    out: str = OUT
    """Output folder (``--smoke``: /tmp/rlsuite-smoke/benchmarks unless given)."""
    smoke: bool = False
    """CI: population 4, the registry's smoke PPO config, 2 repetitions; never writes results/."""


def build(args: Args, chunk: int | None):
    entry = agents.get("ppo")
    cfg = entry.smoke_config() if args.smoke else entry.config(total_timesteps=args.total_timesteps)
    info = M._run_info("hparams", "ppo", "gymnax:CartPole-v1", cfg, None, None, evolve=["lr", "clip_eps"],
                       bounds={"lr": "1e-4:1e-2:log", "clip_eps": "0.1:0.4"}, mapping="sigmoid")
    es_cfg = M.ESConfig(population=args.population, generations=1, sigma=0.3, chunk=chunk)
    es, init, _, steps, _ = M._hparam_problem(info, es_cfg)
    return es, init, steps, info


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, population=4, reps=2, out=SMOKE_OUT if args.out == OUT else args.out)
    if args.reps < 1:
        raise ValueError(f"--reps must be >= 1, got {args.reps}")
    es, init, steps_per_run, info = build(args, None)
    agent, base, _ = M._build_agent(info)
    score = M.final_score_fn(agent)
    space = M.HParamSpace(M.parse_bounds(info["bounds"]))

    state = es.init(jax.random.PRNGKey(0), init)
    # the bare side trains the same P hparam points the engine's first generation asks for
    pop, _ = es.strategy.ask(jax.random.PRNGKey(1), state.strategy, es.strategy_params)
    hps = jax.vmap(lambda u: base.replace(**space.values(u)))(pop)
    keys = jax.random.split(jax.random.PRNGKey(2), args.population)

    fns = {"engine": (jax.jit(es.step), (state,))}
    if args.chunk:
        es_c, *_ = build(args, args.chunk)
        fns[f"engine chunk={args.chunk}"] = (jax.jit(es_c.step), (es_c.init(jax.random.PRNGKey(0), init),))
    fns["bare vmap"] = (jax.jit(jax.vmap(score)), (keys, hps))

    compiled, comp_t = {}, {}
    for name, (fn, a) in fns.items():
        t0 = time.perf_counter()
        compiled[name] = fn.lower(*a).compile()
        comp_t[name] = time.perf_counter() - t0
        jax.block_until_ready(compiled[name](*a))  # warm-up
        print(f"{name:18s} compiled in {comp_t[name]:.1f}s", flush=True)
    run_t = {name: [] for name in fns}
    for _ in range(args.reps):
        for name, (_, a) in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[name](*a))
            run_t[name].append(time.perf_counter() - t0)
    bare = min(run_t["bare vmap"])
    steps = args.population * steps_per_run
    rows = []
    for name in fns:
        best = min(run_t[name])
        rows.append(dict(side=name, compile_s=comp_t[name], run_s=best, median_run_s=float(np.median(run_t[name])),
                         env_steps_per_s=steps / best, ratio_vs_bare=best / bare))
        print(f"{name:18s} run {best:8.3f}s  {steps / best / 1e6:6.3f} M env steps/s  vs bare {best / bare:5.3f}x",
              flush=True)
    ratio = rows[0]["ratio_vs_bare"]
    print(f"engine / bare = {ratio:.3f}x (target <= 1.05)")

    meta = results.provenance(seeds=[0], reps=args.reps, population=args.population, env_steps_per_run=steps_per_run,
                              jax=jax.__version__)
    header = list(rows[0])
    results.write_csv(os.path.join(args.out, "es_overhead.csv"), header, [[r[h] for h in header] for r in rows], meta)
    body = [
        f"One ES generation of P = {args.population} PPO training runs on gymnax CartPole-v1 "
        f"({steps_per_run} env steps each, final evaluation) through `rlsuite.meta.es` (Open_ES ask, "
        "hparam mapping, population vmap, shaping, tell) vs a bare `jax.jit(jax.vmap(train_and_score))` "
        "of the same P runs. Run time: min over interleaved repetitions; compile: AOT. Target engine/bare <= 1.05.",
        "",
        results.markdown_table(["side", "compile s", "run s", "M env steps/s", "vs bare"],
                               [[r["side"], r["compile_s"], r["run_s"], r["env_steps_per_s"] / 1e6, r["ratio_vs_bare"]]
                                for r in rows]),
    ]
    results.write_markdown(os.path.join(args.out, "es_overhead.md"), "ES engine overhead", "\n".join(body), meta)
    print("wrote", os.path.normpath(os.path.join(args.out, "es_overhead.md")))
    return ratio


if __name__ == "__main__":
    main(tyro.cli(Args))
