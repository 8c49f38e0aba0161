"""Host-side batch of gymnasium environments with the same spaces contract as our JAX envs.

The rollout engine's host loop (:func:`rlsuite.core.rollout.rollout_host`) drives it; it
auto-resets finished envs itself and keeps the pre-reset observation, exactly like the JAX path.
"""

from __future__ import annotations

import numpy as np
from gymnax.environments import spaces

from rlsuite.core.validate import require_positive_int


def _from_gymnasium_space(space):
    import gymnasium

    if isinstance(space, gymnasium.spaces.Discrete):
        return spaces.Discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.Box):
        return spaces.Box(space.low, space.high, space.shape, np.float32)
    raise TypeError(f"unsupported gymnasium space {space!r} (Discrete and Box are supported)")


class HostEnv:
    """``num_envs`` copies of one gymnasium env, stepped in a Python loop."""

    is_host = True

    def __init__(self, name: str, num_envs: int = 1, **kwargs):
        import gymnasium

        require_positive_int("num_envs", num_envs)
        self.name = f"gymnasium:{name}"
        self.envs = [gymnasium.make(name, **kwargs) for _ in range(int(num_envs))]
        self.num_envs = int(num_envs)
        # fail at construction (not at the first rollout) on spaces we cannot express
        self.observation_space()
        self.action_space()

    @property
    def default_params(self):
        return None

    def observation_space(self, params=None):
        return _from_gymnasium_space(self.envs[0].observation_space)

    def action_space(self, params=None):
        return _from_gymnasium_space(self.envs[0].action_space)

    def reset(self, seed: int) -> np.ndarray:
        return np.stack([np.asarray(e.reset(seed=seed + i)[0], np.float32) for i, e in enumerate(self.envs)])

    def step(self, actions: np.ndarray):
        """Step every env; finished ones are reset.

        Returns ``(obs, reward, terminated, truncated, next_obs)`` where ``obs`` is what the policy
        sees next (post-reset) and ``next_obs`` the true successor (pre-reset).
        """
        n = self.num_envs
        obs = np.empty((n,) + self.envs[0].observation_space.shape, np.float32)
        next_obs = np.empty_like(obs)
        rew = np.empty(n, np.float32)
        term = np.empty(n, bool)
        trunc = np.empty(n, bool)
        for i, e in enumerate(self.envs):
            a = actions[i]
            if isinstance(e.action_space, __import__("gymnasium").spaces.Discrete):
                a = int(a)
            o, r, te, tr, _ = e.step(a)
            next_obs[i] = o
            rew[i], term[i], trunc[i] = r, te, tr
            obs[i] = e.reset()[0] if (te or tr) else o
        return obs, rew, term, trunc, next_obs
