"""Deep GA population evaluation vs a bare vmapped rollout of the same policies (target ratio >= 0.9).

Both simulate N individuals x H steps of one episode each (the engine steps every env for the full
horizon and masks after the end, the bare loop simply never resets), with the same deterministic
MLP policies.  ``ours`` is :attr:`rlsuite.meta.deep_ga.GA.evaluate` (vmapped
``rollout_episodes`` + the behaviour-characterisation wrapper + masks); ``bare`` is a hand-written
``lax.scan`` over ``vmap(env.step_env)``.  Both return values computed from the simulated states.
Compilation is excluded; the median of ``--reps`` timed calls is reported.

    python benchmarks/ga_throughput.py                # CartPole-v1 and maze:hard, N = 256
    python benchmarks/ga_throughput.py --smoke        # tiny, < 60 s
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    N, reps = (16, 2) if a.smoke else (a.population, a.reps)
    cases = [("gymnax:CartPole-v1", 100 if a.smoke else 500, None), ("maze:hard", 50 if a.smoke else 150, None)]
    print(f"device: {jax.devices()[0].platform}, population {N}")
    print(f"{'env':22s} {'horizon':>7s} {'ours steps/s':>14s} {'bare steps/s':>14s} {'ratio':>6s}")
    for env_id, H, kw in cases:
        ours, bare = bench(env_id, N, H, reps, kw)
        print(f"{env_id:22s} {H:7d} {ours:14,.0f} {bare:14,.0f} {ours / bare:6.2f}")


if __name__ == "__main__":
    main()
