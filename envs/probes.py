"""Probe environments: tiny tasks whose values and best actions are known exactly.

After Andy Jones, "Debugging RL, Without the Agonizing Pain" (2021): each probe isolates one
part of an agent, so a failing probe says which part is broken.

==================  =========================================  ====================================
id                  task                                       what it checks
==================  =========================================  ====================================
probe:constant      obs 0, reward +1, one step                 value net: ``V = 1``
probe:obs_reward    obs +-1 at random, reward = obs, one step  value net uses obs: ``V(obs) = obs``
probe:two_step      obs 0 then 1, reward +1 only at the end    discounting: ``V(0) = gamma``,
                                                               ``V(1) = 1``
probe:action_reward obs 0, reward +1 for ``good_action``       policy: picks ``good_action``
                    else -1, one step                          (``V* = 1``)
probe:obs_action    obs +-1 at random, reward +1 for action    policy uses obs: action 1 when obs=+1,
_reward             ``obs > 0`` else -1, one step              action 0 when obs=-1 (``V* = 1``)
==================  =========================================  ====================================

All probes: ``Box(-1, 1, (obs_dim,))`` observations (every coordinate carries the same value, so
``obs_dim=2`` suits agents whose policies need 2-D observations, e.g. BAC's softmax-RBF policy)
and ``Discrete(num_actions)`` actions (``num_actions >= 2``; the first three probes ignore the
action).  Episodes end by termination (never truncation), so nothing is bootstrapped past the
end; ``max_steps_in_episode`` equals the episode length (evaluation rollouts use it as horizon).

Each env exposes the ground truth the tests assert: ``true_value(obs, gamma)`` (the value of the
optimal policy at an observation the env emits; for the first three probes every policy has
this value) and ``best_action(obs)`` (``-1`` where every action is equally good).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.envs.registry import register


@struct.dataclass
class ProbeState(environment.EnvState):
    sign: jax.Array  # the observation value (0, 1 or +-1)
    time: int


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class Probe(environment.Environment[ProbeState, ProbeParams]):
    """Base class: ``Box(-1, 1, (obs_dim,))`` observations, ``Discrete(num_actions)`` actions."""

    length = 1
    """Steps per episode."""
    random_obs = False
    """Reset draws the observation from {-1, +1} (else 0)."""

    def __init__(self, obs_dim: int = 1, num_actions: int = 2):
        super().__init__()
        for name, v, lo in (("obs_dim", obs_dim, 1), ("num_actions", num_actions, 2)):
            if isinstance(v, bool) or int(v) != v or int(v) < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.obs_dim = int(obs_dim)
        self._num_actions = int(num_actions)

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams(max_steps_in_episode=self.length)

    def reset_env(self, key, params: ProbeParams):
        if self.random_obs:
            sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        else:
            sign = jnp.zeros((), jnp.float32)
        state = ProbeState(sign=sign, time=0)
        return self.get_obs(state), state

    def reward(self, state: ProbeState, action: jax.Array) -> jax.Array:
        raise NotImplementedError

    def step_env(self, key, state: ProbeState, action, params: ProbeParams):
        a = jnp.reshape(jnp.asarray(action, jnp.int32), ())
        reward = jnp.asarray(self.reward(state, a), jnp.float32)
        time = state.time + 1
        state = ProbeState(sign=self.next_sign(state), time=time)
        return self.get_obs(state), state, reward, self.is_terminated(state, params), {}

    def next_sign(self, state: ProbeState) -> jax.Array:
        return state.sign

    def get_obs(self, state: ProbeState, params=None, key=None):
        return jnp.full((self.obs_dim,), state.sign, jnp.float32)

    def is_terminated(self, state: ProbeState, params) -> jax.Array:
        return jnp.asarray(state.time >= self.length)

    def true_value(self, obs, gamma: float = 0.99) -> jax.Array:
        """Value of the optimal policy at ``obs`` (``[..., obs_dim]`` -> ``[...]``)."""
        raise NotImplementedError

    def best_action(self, obs) -> jax.Array:
        """The rewarded action at ``obs`` (``[..., obs_dim]`` -> ``[...]``; -1: any action)."""
        return jnp.full(jnp.shape(obs)[:-1], -1, jnp.int32)

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.obs_dim,), jnp.float32)


class ConstantReward(Probe):
    """Obs 0, reward +1, one step: ``V = 1``."""

    def reward(self, state, action):
        return 1.0

    def true_value(self, obs, gamma=0.99):
        return jnp.ones(jnp.shape(obs)[:-1], jnp.float32)

    @property
    def name(self) -> str:
        return "probe-constant"


class ObsReward(Probe):
    """Obs +-1 at random, reward = obs, one step: ``V(obs) = obs``."""

    random_obs = True

    def reward(self, state, action):
        return state.sign

    def true_value(self, obs, gamma=0.99):
        return jnp.asarray(obs, jnp.float32)[..., 0]

    @property
    def name(self) -> str:
        return "probe-obs-reward"


class TwoStep(Probe):
    """Obs 0 then 1, reward 0 then +1, two steps: ``V(0) = gamma``, ``V(1) = 1``."""

    length = 2

    def reward(self, state, action):
        return jnp.where(state.time == 1, 1.0, 0.0)

    def next_sign(self, state):
        return jnp.ones((), jnp.float32)

    def true_value(self, obs, gamma=0.99):
        o = jnp.asarray(obs, jnp.float32)[..., 0]
        return jnp.where(o > 0.5, 1.0, gamma).astype(jnp.float32)

    @property
    def name(self) -> str:
        return "probe-two-step"


class ActionReward(Probe):
    """Obs 0, reward +1 for ``good_action`` else -1, one step: the policy must pick it."""

    def __init__(self, obs_dim: int = 1, num_actions: int = 2, good_action: int = 1):
        super().__init__(obs_dim, num_actions)
        if isinstance(good_action, bool) or int(good_action) != good_action or not 0 <= good_action < num_actions:
            raise ValueError(f"good_action must be an integer in [0, {num_actions}), got {good_action!r}")
        self.good_action = int(good_action)

    def reward(self, state, action):
        return jnp.where(action == self.good_action, 1.0, -1.0)

    def true_value(self, obs, gamma=0.99):
        return jnp.ones(jnp.shape(obs)[:-1], jnp.float32)

    def best_action(self, obs):
        return jnp.full(jnp.shape(obs)[:-1], self.good_action, jnp.int32)

    @property
    def name(self) -> str:
        return "probe-action-reward"


class ObsActionReward(Probe):
    """Obs +-1 at random, reward +1 for action ``1`` at obs +1 and action ``0`` at obs -1, else -1."""

    random_obs = True

    def reward(self, state, action):
        return jnp.where(action == (state.sign > 0).astype(jnp.int32), 1.0, -1.0)

    def true_value(self, obs, gamma=0.99):
        return jnp.ones(jnp.shape(obs)[:-1], jnp.float32)

    def best_action(self, obs):
        return (jnp.asarray(obs)[..., 0] > 0).astype(jnp.int32)

    @property
    def name(self) -> str:
        return "probe-obs-action-reward"


def _factory(cls):
    def make(**kwargs):
        env = cls(**kwargs)
        return env, env.default_params

    make.__doc__ = f"``(env, params)`` of :class:`{cls.__name__}`; kwargs go to its constructor."
    return make


PROBES = {
    "probe:constant": (ConstantReward, "probe: obs 0, reward +1, one step (V = 1)"),
    "probe:obs_reward": (ObsReward, "probe: obs +-1, reward = obs, one step (V(obs) = obs)"),
    "probe:two_step": (TwoStep, "probe: obs 0 then 1, reward +1 at the end (V(0) = gamma, V(1) = 1)"),
    "probe:action_reward": (ActionReward, "probe: reward +1 for good_action (default 1) else -1, one step"),
    "probe:obs_action_reward": (ObsActionReward, "probe: obs +-1, reward +1 for action (obs > 0) else -1, one step"),
}

for _id, (_cls, _desc) in PROBES.items():
    register(_id, _factory(_cls), _desc)
