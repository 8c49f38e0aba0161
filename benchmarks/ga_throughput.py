"""Deep GA population evaluation vs a bare vmapped rollout of the same policies (target ratio >= 0.9).

Both simulate N individuals x H steps of one episode each (the engine steps every env for the full
horizon and masks after the end, the bare loop simply never resets), with the same deterministic
MLP policies.  ``ours`` is :attr:`rlsuite.meta.deep_ga.GA.evaluate` (vmapped
``rollout_episodes`` + the behaviour-characterisation wrapper + masks); ``bare`` is a hand-written
``lax.scan`` over ``vmap(env.step_env)``.  Both return values computed from the simulated states.
Compilation is excluded; the median of ``--reps`` timed calls is reported.

    python benchmarks/ga_throughput.py                # CartPole-v1 and maze:hard, N = 256
    python benchmarks/ga_throughput.py --smoke        # tiny, < 60 s, writes to /tmp

Writes results/benchmarks/ga_throughput.{md,csv} (``--smoke``: /tmp/rlsuite-smoke/benchmarks).
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np
import tyro

from rlsuite.core import validate as V
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """Deep GA population evaluation vs a bare vmapped rollout of the same policies."""

    population: int = 256
    """Individuals N evaluated at once (one episode each)."""
    reps: int = 5
    """Timed calls per side (the median is reported)."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/benchmarks unless given)."""
    smoke: bool = False
    """Tiny sizes (N = 16, short horizons): checks the script end to end."""


def _time(fn, *args, reps):
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench(env_id: str, N: int, H: int, reps: int, env_kwargs=None):
    from rlsuite.envs import make
    from rlsuite.meta import deep_ga as D

    env, params = make(env_id, **(env_kwargs or {}))
    ga = D.make_ga(D.GAConfig(population=N, truncation=2, horizon=H, hidden=(64, 64)), env, params)
    thetas = jax.jit(lambda: ga.init().params)()
    keys = jax.random.split(jax.random.PRNGKey(0), N)
    _, head = D._action_head(env.action_space(params))

    @jax.jit
    def ours(thetas, keys):
        ret, bc, steps = ga.evaluate(thetas, keys, 1)
        return ret.sum() + bc.sum() + steps.sum()

    @jax.jit
    def bare(thetas, keys):
        def one(theta, key):
            k_reset, k_scan = jax.random.split(key)
            obs, state = env.reset_env(k_reset, params)

            def step(c, k):
                obs, state, ret = c
                a = head(ga.net.apply(theta, obs))
                obs, state, r, d, _ = env.step_env(k, state, a, params)
                return (obs, state, ret + r), None

            (obs, state, ret), _ = jax.lax.scan(step, (obs, state, 0.0), jax.random.split(k_scan, H))
            return ret + obs.sum()

        return jax.vmap(one)(thetas, keys).sum()

    t_ours, t_bare = _time(ours, thetas, keys, reps=reps), _time(bare, thetas, keys, reps=reps)
    steps = N * H
    return steps / t_ours, steps / t_bare


def main(a: Args) -> None:
    V.require_positive_int("--population", a.population)
    V.require_positive_int("--reps", a.reps)
    N, reps = (16, 2) if a.smoke else (a.population, a.reps)
    out = SMOKE_OUT if a.smoke and a.out == OUT else a.out
    cases = [("gymnax:CartPole-v1", 100 if a.smoke else 500, None), ("maze:hard", 50 if a.smoke else 150, None)]
    print(f"device: {jax.devices()[0].platform}, population {N}")
    print(f"{'env':22s} {'horizon':>7s} {'ours steps/s':>14s} {'bare steps/s':>14s} {'ratio':>6s}")
    rows = []
    for env_id, H, kw in cases:
        ours, bare = bench(env_id, N, H, reps, kw)
        print(f"{env_id:22s} {H:7d} {ours:14,.0f} {bare:14,.0f} {ours / bare:6.2f}")
        rows.append([env_id, H, N, round(ours), round(bare), round(ours / bare, 3)])
    header = ["env", "horizon", "population", "engine steps/s", "bare steps/s", "engine / bare"]
    meta = provenance(seeds=[0], population=N, reps=reps)
    write_csv(os.path.join(out, "ga_throughput.csv"), header, rows, meta)
    body = (f"Deep GA population evaluation (`GA.evaluate`: the engine's `rollout_episodes`, vmapped, "
            f"MLP 64-64 policies, one episode each) vs a bare `lax.scan(vmap(env.step_env))` of the same "
            f"policies; median of {reps} timed calls, compile excluded. Target engine / bare >= 0.9.\n\n"
            + markdown_table(header, rows))
    write_markdown(os.path.join(out, "ga_throughput.md"), "Deep GA population-evaluation throughput", body, meta)
    print(f"wrote {out}/ga_throughput.{{md,csv}}")


if __name__ == "__main__":
    main(tyro.cli(Args))
