"""LSTD policy evaluation on diffusion:ou vs the bare rollout it consumes (ratios from one run).

    python benchmarks/martingale_lstd.py [--paths 10000] [--dt 0.01]
    python benchmarks/martingale_lstd.py --smoke     # tiny sizes (CI): 200 paths, dt = 0.1

Prints compile and run times of (1) the engine's ``rollout_episodes`` alone and (2) the full
LSTD run through the agent protocol (``rlsuite.agents.get("martingale").make`` +
``rlsuite.core.agent.make_train``: sampling + statistics + solve), their ratio, and LSTD's relative
L2 error.  Nothing is written to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import tyro

from rlsuite import agents
from rlsuite.agents import martingale as mg
from rlsuite.core.agent import make_train
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make
from rlsuite.envs.diffusion import zero_policy


@dataclass
class Args:
    paths: int = 10_000
    """Paths of the LSTD run (one batch)."""
    dt: float = 0.01
    """Time step of diffusion:ou (T = 3)."""
    repeats: int = 3
    """Timed runs after the warm-up; the best is reported."""
    smoke: bool = False
    """Tiny sizes (200 paths, dt = 0.1, 1 repeat) so CI checks the script runs."""


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


def main(a: Args):
    if a.smoke:
        a = Args(paths=200, dt=0.1, repeats=1)
    env, p = make("diffusion:ou", dt=a.dt)
    k = int(p.max_steps_in_episode)
    key = jax.random.PRNGKey(0)

    def roll(key):  # return a state-dependent quantity so XLA cannot drop the physics
        tr = rollout_episodes(env, p, zero_policy, None, key, a.paths, k)
        return (tr.next_obs[..., 0] ** 2 * tr.mask).sum()

    entry = agents.get("martingale")
    cfg = entry.config(method="lstd", num_paths=a.paths)
    hp = entry.default_hparams(cfg)  # dt = 0: the env's own dt
    train = make_train(entry.make(cfg, env, p))
    _, c_roll, t_roll = timed(roll, key, repeats=a.repeats)
    (st, _), c_lstd, t_lstd = timed(train, key, hp, repeats=a.repeats)
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
    main(tyro.cli(Args))
