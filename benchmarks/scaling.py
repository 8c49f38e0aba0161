"""Sharding overhead: the same runs on 8 (virtual) devices vs 1, through rlsuite.core.sharding.

Two workloads, each timed unsharded (``devices=1``) and sharded over 8 devices in one process:

- runner: ``S`` PPO CartPole-v1 training runs (seeds), the runner's path
  (:class:`rlsuite.core.sharding.Runs`: ``jit(shard_map(vmap(train)))``, the seed axis padded to a
  multiple of 8);
- meta: one ES generation of ``P`` PPO runs (:func:`rlsuite.meta.es.make_es` with ``devices``;
  ask / tell replicated, the population's runs split over the devices).

On a CPU the 8 devices are virtual (``--xla_force_host_platform_device_count=8``, set here
before JAX starts) and share the machine's cores, so the ratio measures overhead, not speed-up:
target sharded / unsharded wall time <= 1.1.  On a machine with 8 real accelerators the same
script reports the weak-scaling speed-up.  Compilation is timed separately (AOT); run times are
the minimum over ``--reps`` interleaved repetitions (the machine is shared).

Usage:
    python benchmarks/scaling.py                # S = 32 seeds, P = 8 members, PPO 32k steps per run
    python benchmarks/scaling.py --smoke        # CI: S = 8, P = 8, the registry's smoke PPO, /tmp
Writes results/benchmarks/scaling.{md,csv}.
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    import rlsuite  # noqa: F401  (sets its scheduler flag first; both flags are kept)

    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import dataclasses  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402

from rlsuite import agents  # noqa: E402
from rlsuite.core import results, sharding  # noqa: E402
from rlsuite.core.agent import eval_key  # noqa: E402
from rlsuite.core.sweep import seed_keys  # noqa: E402
from rlsuite.meta import es as M  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """The same runs sharded over 8 devices vs on 1."""

    seeds: int = 32
    """Runner workload: PPO training runs (seeds) at once."""
    population: int = 8
    """Meta workload: ES members (one PPO run each) in the generation.  On 8 virtual CPU devices keep
    it at one member per device: with more, the members' PPO init (orthogonal initialisers: a
    batched LAPACK QR) runs in several device programs at once and jaxlib 0.10.2's CPU LAPACK
    kernels can deadlock (all threads parked; see the README's scale-out section)."""
    total_timesteps: int = 32_768
    """Environment steps of each PPO run (PureJaxRL CartPole config otherwise: 4 envs x 128 steps)."""
    devices: int = 8
    """Devices of the sharded side."""
    reps: int = 3
    """Interleaved timed repetitions (the minimum is reported)."""
    out: str = OUT
    """Output folder (``--smoke``: /tmp/rlsuite-smoke/benchmarks unless given)."""
    smoke: bool = False
    """CI: 8 seeds, 8 members, the registry's smoke PPO, 2 repetitions; never writes results/."""


def runner_side(agent, base, n_seeds: int, devices: int):
    """(compiled training of the seeds, its arguments) on the runner's path: ``init`` unsharded (as
    :func:`rlsuite.train.run_training` does), then every update and the final evaluation sharded."""
    runs = sharding.Runs(n_seeds, devices)
    keys = seed_keys(range(n_seeds))
    state = runs.rows(jax.jit(jax.vmap(agent.init, in_axes=(0, None)))(keys, base))

    def train(s, k, h):
        s, _ = agent.segment(s, h, agent.num_updates)
        return agent.evaluate(s, eval_key(k, agent.num_updates))[agent.score]

    return runs.jit_vmap(train, (0, 0, None), name="rlsuite_train"), (state, runs.rows(keys), runs.replicated(base))


def meta_side(info, population: int, devices: int):
    es, init, *_ = M._hparam_problem(info, M.ESConfig(population=population, generations=1, sigma=0.3), devices)
    state = es.init(jax.random.PRNGKey(0), init)
    return jax.jit(es.step), (sharding.replicate(state, es.mesh),)


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, seeds=8, population=8, reps=2, out=SMOKE_OUT if args.out == OUT else args.out)
    for name in ("seeds", "population", "devices", "reps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if jax.device_count() < args.devices:
        raise ValueError(f"--devices {args.devices}: only {jax.device_count()} devices ({jax.devices()})")
    entry = agents.get("ppo")
    cfg = entry.smoke_config() if args.smoke else entry.config(total_timesteps=args.total_timesteps)
    info = M._run_info("hparams", "ppo", "gymnax:CartPole-v1", cfg, None, None, evolve=["lr", "clip_eps"],
                       bounds={"lr": "1e-4:1e-2:log", "clip_eps": "0.1:0.4"}, mapping="sigmoid")
    agent, base, _ = M._build_agent(info)
    steps_per_run = agent.num_updates * agent.steps_per_update

    sides = {}
    for d in (1, args.devices):
        sides[("runner", d)] = runner_side(agent, base, args.seeds, d)
        sides[("meta", d)] = meta_side(info, args.population, d)
    compiled, comp_t, outs = {}, {}, {}
    for k, (fn, a) in sides.items():
        t0 = time.perf_counter()
        compiled[k] = fn.lower(*a).compile()
        comp_t[k] = time.perf_counter() - t0
        outs[k] = jax.block_until_ready(compiled[k](*a))  # warm-up
        print(f"{k[0]:6s} {k[1]} device(s): compiled in {comp_t[k]:.1f}s", flush=True)
    # the sharded runs give the unsharded results (first element: runner scores; meta: fitness)
    same = {"runner": np.array_equal(sharding.to_host(outs[("runner", 1)]),
                                     sharding.to_host(outs[("runner", args.devices)])[: args.seeds]),
            "meta": np.array_equal(sharding.to_host(outs[("meta", 1)][1]["fitness"]),
                                   sharding.to_host(outs[("meta", args.devices)][1]["fitness"]))}
    run_t = {k: [] for k in sides}
    for _ in range(args.reps):
        for k, (_, a) in sides.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[k](*a))
            run_t[k].append(time.perf_counter() - t0)
    rows = []
    for what, n in (("runner", args.seeds), ("meta", args.population)):
        base_t = min(run_t[(what, 1)])
        for d in (1, args.devices):
            best = min(run_t[(what, d)])
            rows.append(dict(workload=f"{what}: {n} PPO runs" + (" (1 ES generation)" if what == "meta" else ""),
                             devices=d, compile_s=comp_t[(what, d)], run_s=best,
                             runs_per_s=n / best, env_steps_per_s=n * steps_per_run / best,
                             ratio_vs_1_device=best / base_t, same_results=bool(same[what])))
            print(f"{what:6s} {d} device(s): {best:8.3f}s  {n / best:7.2f} runs/s  vs 1 device {best / base_t:5.3f}x",
                  flush=True)
    worst = max(r["ratio_vs_1_device"] for r in rows if r["devices"] != 1)
    print(f"sharded / unsharded wall time: worst {worst:.3f}x (target <= 1.1)")

    meta = results.provenance(seeds=list(range(args.seeds)), reps=args.reps, env_steps_per_run=steps_per_run,
                              jax=jax.__version__, note="2-core machine shared with other jobs; the 8 devices are "
                              "virtual CPU devices sharing those cores, so the ratio is an overhead figure")
    header = list(rows[0])
    results.write_csv(os.path.join(args.out, "scaling.csv"), header, [[r[h] for h in header] for r in rows], meta)
    table = results.markdown_table(
        ["workload", "devices", "compile s", "run s", "runs/s", "env steps/s", "vs 1 device", "same results"],
        [[r["workload"], r["devices"], r["compile_s"], r["run_s"], r["runs_per_s"], f"{r['env_steps_per_s']:,.0f}",
          f"{r['ratio_vs_1_device']:.3f}x", "yes" if r["same_results"] else "NO"] for r in rows])
    body = (f"{table}\n\nTarget: the sharded run takes <= 1.1x the unsharded wall time; worst measured "
            f"{worst:.3f}x ({'met' if worst <= 1.1 else 'not met'}).  \"same results\": the sharded outputs equal "
            "the unsharded ones bit for bit (the outputs are final evaluation returns).\n")
    results.write_markdown(os.path.join(args.out, "scaling.md"), "Sharding overhead: 8 devices vs 1", body, meta)
    print(f"wrote {os.path.join(args.out, 'scaling.md')}")
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
