"""LSTD policy evaluation on diffusion:ou vs the bare rollout it consumes (ratios from one run).

    python benchmarks/martingale_lstd.py [--paths 10000] [--dt 0.01]

Prints compile and run times of (1) the engine's ``rollout_episodes`` alone and (2) the full
LSTD ``train`` (sampling + statistics + solve), their ratio, and LSTD's relative L2 error.
"""

from __future__ import annotations

import argparse
import time

import jax

from rlsuite.agents import martingale as mg
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make
from rlsuite.envs.diffusion import zero_policy


def timed(fn, *args, repeats: int = 3):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    t1 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t)
    return out, t1 - t0, best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--dt", type=float, default=0.01)
    a = ap.parse_args()
    env, p = make("diffusion:ou", dt=a.dt)
    k = int(p.max_steps_in_episode)
    key = jax.random.PRNGKey(0)

    def roll(key):  # return a state-dependent quantity so XLA cannot drop the physics
        tr = rollout_episodes(env, p, zero_policy, None, key, a.paths, k)
        return (tr.next_obs[..., 0] ** 2 * tr.mask).sum()

    cfg = mg.MartingaleConfig(method="lstd", num_paths=a.paths)
    hp = mg.default_hparams(cfg, p)
    train = mg.make_train(cfg, env, p)
    _, c_roll, t_roll = timed(roll, key)
    (st, _), c_lstd, t_lstd = timed(train, key, hp)
    err = float(mg.relative_l2_error(cfg, env, p, st.theta))
    steps = a.paths * k
    print(f"device: {jax.devices()[0]}; {a.paths} paths x {k} steps (dt={a.dt})")
    print(
        f"rollout only : compile {c_roll:.2f}s, run {t_roll:.3f}s ({steps / t_roll / 1e6:.1f} M steps/s)"
    )
    print(
        f"LSTD train   : compile {c_lstd:.2f}s, run {t_lstd:.3f}s ({steps / t_lstd / 1e6:.1f} M steps/s)"
    )
    print(
        f"ratio LSTD / rollout run time: {t_lstd / t_roll:.2f}x; theta={st.theta}, relative L2 error {err:.4f}"
    )


if __name__ == "__main__":
    main()
