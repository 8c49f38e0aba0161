"""Engine overhead: rlsuite's `rollout` vs a hand-written bare `lax.scan(vmap(env.step))`.

Both loops run the same stochastic linear policy on the same env and stack the per-step data a
learner needs (ours: the full `Transition` with terminated/truncated, next_obs, episode
statistics; bare: obs, action, reward, done as in PureJaxRL).  Both return a checksum of every
stacked array plus the final observations, so XLA cannot delete the simulation.  Compilation is
timed separately (AOT `lower().compile()`); the run time is the minimum over `--reps`
interleaved repetitions (the machine is shared, so the minimum is the least noisy estimate).

Bare loops:
- gymnax: `env.step`, gymnax's own step that auto-resets every env every step (reset computed
  always, selected where done);
- brax: the same gymnax-style `step` of our adapter, and Brax's own training wrappers
  (`brax.envs.training.wrap`: EpisodeWrapper + AutoResetWrapper, which caches the first state
  instead of resetting), the loop Brax's trainers use.

`--part backends` times every Brax backend on inverted_pendulum and hopper with our engine
(small number of steps) to check the registry's default backend.

Usage:
    python benchmarks/engine_overhead.py                       # CartPole 256/2048 envs + Brax, backends
    taskset -c 1 python benchmarks/engine_overhead.py --part engine   # pinned: steadier on a busy box
    python benchmarks/engine_overhead.py --quick               # smaller sizes
    python benchmarks/engine_overhead.py --smoke               # CI: tiny CartPole only, writes to /tmp
Writes results/benchmarks/engine_overhead.{md,csv} and brax_backends.{md,csv}.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import jax
import numpy as np
import tyro
from limits import bare_env_loop as bare_gymnax_fn
from limits import checksum, compile_fn, time_run
from limits import random_linear_policy as make_policy

from rlsuite.core import results
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.envs import make

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """Engine overhead: our rollout vs bare lax.scan(vmap(env.step)) loops (and Brax backends)."""

    part: Literal["all", "engine", "backends"] = "all"
    """engine overhead table, Brax backend sweep, or both."""
    quick: bool = False
    """Smaller sizes (CartPole 1024 / 256 steps, Brax 200 steps, 50 steps per backend)."""
    reps: int = 7
    """Interleaved timed repetitions (the minimum is reported)."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/benchmarks unless --out is given)."""
    smoke: bool = False
    """CI: CartPole with 8 / 16 envs x 32 steps, 2 repetitions, no Brax (its compilation alone takes
    minutes on 2 cores); never writes results/."""


# ----------------------------------------------------------------------------- the loops


def ours_fn(env, params, policy, num_envs, num_steps):
    def run(w, key):
        carry = init_rollout(env, params, key, num_envs)
        carry, tr = rollout(env, params, policy, w, carry, num_steps)
        return checksum(tr) + checksum(carry.obs) + checksum(carry.ep_return)

    return run


def bare_brax_fn(name, backend, policy, num_envs, num_steps, episode_length=1000):
    """Brax's own loop: training.wrap (VmapWrapper + EpisodeWrapper + AutoResetWrapper)."""
    import brax.envs
    from brax.envs.wrappers import training

    benv = training.wrap(brax.envs.get_environment(name, backend=backend), episode_length=episode_length)

    def run(w, key):
        key, k_reset = jax.random.split(key)
        state = benv.reset(jax.random.split(k_reset, num_envs))

        def step(c, _):
            state, key = c
            key, k_act = jax.random.split(key)
            obs = state.obs
            action, _ = policy(w, obs, k_act)
            state = benv.step(state, action)
            return (state, key), (obs, action, state.reward, state.done)

        (state, key), ys = jax.lax.scan(step, (state, key), None, length=num_steps)
        return checksum(ys) + checksum(state.obs)

    return run


# ----------------------------------------------------------------------------- timing


def compare(label, fns: dict, w, reps: int, steps: int):
    """Compile every loop, then time them interleaved ``reps`` times; return one row per loop."""
    key = jax.random.PRNGKey(0)
    compiled, comp_t = {}, {}
    for name, fn in fns.items():
        compiled[name], comp_t[name] = compile_fn(fn, w, key)
        jax.block_until_ready(compiled[name](w, key))  # warm-up
    run_t = {name: [] for name in fns}
    for r in range(reps):
        for name in fns:
            run_t[name].append(time_run(compiled[name], w, jax.random.PRNGKey(r + 1)))
    rows = []
    ours = min(run_t["ours"])
    for name in fns:
        best = min(run_t[name])
        rows.append(
            dict(
                setup=label,
                loop=name,
                compile_s=comp_t[name],
                run_s=best,
                median_run_s=float(np.median(run_t[name])),
                steps_per_s=steps / best,
                ours_over_this=best / ours,
            )
        )
        print(
            f"{label:38s} {name:12s} compile {comp_t[name]:6.2f}s  run {best:7.3f}s  "
            f"{steps / best / 1e6:7.3f} M steps/s  ours/this {best / ours:5.2f}",
            flush=True,
        )
    return rows


def engine_rows(quick: bool, reps: int, smoke: bool = False):
    rows = []
    cart_sizes = [(256, 1024), (2048, 256)] if quick else [(256, 4096), (2048, 1024)]
    if smoke:
        cart_sizes = [(8, 32), (16, 32)]
    env, params = make("gymnax:CartPole-v1")
    policy, w = make_policy(env, params)
    for n, t in cart_sizes:
        fns = {
            "ours": ours_fn(env, params, policy, n, t),
            "bare_gymnax": bare_gymnax_fn(env, params, policy, n, t),
        }
        rows += compare(f"gymnax:CartPole-v1 N={n} T={t}", fns, w, reps, n * t)
    if smoke:
        print("smoke: Brax loops skipped (compiling them takes minutes on 2 cores)", flush=True)
        return rows

    n, t = (64, 200) if quick else (64, 1000)
    env, params = make("brax:inverted_pendulum", backend="spring")
    policy, w = make_policy(env, params)
    fns = {
        "ours": ours_fn(env, params, policy, n, t),
        "bare_gymnax": bare_gymnax_fn(env, params, policy, n, t),
        "bare_brax": bare_brax_fn("inverted_pendulum", "spring", policy, n, t),
    }
    rows += compare(f"brax:inverted_pendulum spring N={n} T={t}", fns, w, reps, n * t)
    return rows


def backend_rows(reps: int, num_envs: int = 64, num_steps: int = 100, envs=("inverted_pendulum", "hopper")):
    """Per env: compile every backend, then time them interleaved (min over ``reps``)."""
    rows = []
    backends = ("spring", "positional", "generalized", "mjx")
    for name in envs:
        compiled, comp, w = {}, {}, None
        for backend in backends:
            env, params = make(f"brax:{name}", backend=backend)
            policy, w = make_policy(env, params)
            fn = ours_fn(env, params, policy, num_envs, num_steps)
            compiled[backend], comp[backend] = compile_fn(fn, w, jax.random.PRNGKey(0))
            jax.block_until_ready(compiled[backend](w, jax.random.PRNGKey(0)))
            print(f"brax:{name:18s} {backend:12s} compile {comp[backend]:6.2f}s", flush=True)
        times = {b: [] for b in backends}
        for r in range(reps):
            for backend in backends:
                times[backend].append(time_run(compiled[backend], w, jax.random.PRNGKey(r + 1)))
        for backend in backends:
            best = min(times[backend])
            sps = num_envs * num_steps / best
            print(f"brax:{name:18s} {backend:12s} {sps / 1e3:8.1f} k steps/s", flush=True)
            rows.append(dict(env=name, backend=backend, compile_s=comp[backend], run_s=best, steps_per_s=sps))
    return rows


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, reps=2, out=SMOKE_OUT if args.out == OUT else args.out)
    if args.reps < 1:
        raise ValueError(f"--reps must be >= 1, got {args.reps}")
    pinned = _affinity()
    meta = results.provenance(seeds=[0], reps=args.reps, jax=jax.__version__, cpu_affinity=pinned)

    if args.part in ("all", "engine"):
        rows = engine_rows(args.quick, args.reps, args.smoke)
        header = ["setup", "loop", "compile_s", "run_s", "median_run_s", "steps_per_s", "ours_over_this"]
        results.write_csv(
            os.path.join(args.out, "engine_overhead.csv"), header, [[r[h] for h in header] for r in rows], meta
        )
        body = [
            "Steps/s of our `rollout` (auto-reset, terminated/truncated, next_obs, episode statistics) "
            "vs bare `lax.scan(vmap(env.step))` loops, same policy, same env; both reduce every stacked "
            "output and the final observations to a checksum. `ratio ours/bare` = bare run time / our "
            "run time (>= 0.9 is the target). Run time: min over interleaved repetitions; compile: AOT. "
            "`bare_gymnax` = gymnax's auto-resetting `env.step` (fresh random reset); `bare_brax` = "
            "Brax's training wrappers, whose AutoResetWrapper restarts every episode of an env from "
            "the SAME cached first state (no reset computation, no fresh randomness).",
            "",
            results.markdown_table(
                ["setup", "loop", "compile s", "run s", "M steps/s", "ratio ours/bare"],
                [
                    [r["setup"], r["loop"], r["compile_s"], r["run_s"], r["steps_per_s"] / 1e6,
                     "-" if r["loop"] == "ours" else r["ours_over_this"]]
                    for r in rows
                ],
            ),
        ]
        results.write_markdown(
            os.path.join(args.out, "engine_overhead.md"), "Engine overhead", "\n".join(body), meta
        )
        print("wrote", os.path.normpath(os.path.join(args.out, "engine_overhead.md")))

    if args.part in ("all", "backends") and args.smoke:
        print("smoke: Brax backend sweep skipped (compiling Brax takes minutes on 2 cores)", flush=True)
    elif args.part in ("all", "backends"):
        brows = backend_rows(args.reps, num_steps=50 if args.quick else 100)
        bh = ["env", "backend", "compile_s", "run_s", "steps_per_s"]
        results.write_csv(
            os.path.join(args.out, "brax_backends.csv"), bh, [[r[h] for h in bh] for r in brows], meta
        )
        fastest = {}
        for r in brows:
            if r["env"] not in fastest or r["steps_per_s"] > fastest[r["env"]]["steps_per_s"]:
                fastest[r["env"]] = r
        body = [
            "Our engine (`rollout`, auto-reset), 64 envs, 100 steps, random linear policy; all backends of "
            "an env are compiled first, then timed interleaved; run = min over repetitions.",
            "",
            results.markdown_table(
                ["env", "backend", "compile s", "k steps/s"],
                [[r["env"], r["backend"], r["compile_s"], r["steps_per_s"] / 1e3] for r in brows],
            ),
            "",
            "Fastest on this CPU: " + ", ".join(f"{e}: {r['backend']}" for e, r in fastest.items()) + ".",
        ]
        results.write_markdown(
            os.path.join(args.out, "brax_backends.md"), "Brax backends on CPU", "\n".join(body), meta
        )
        print("wrote", os.path.normpath(os.path.join(args.out, "brax_backends.md")))


def _affinity() -> str:
    """CPU cores this process may use (run under `taskset -c 1` for steadier ratios on a busy box)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        return f"{len(cores)} of {os.cpu_count()} cores {cores}"
    except AttributeError:
        return "unknown"


if __name__ == "__main__":
    main(tyro.cli(Args))
