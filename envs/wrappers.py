"""Adapters and wrappers around gymnax-API environments.

- :class:`BraxToGymnax`  a Brax env behind gymnax's functional API, with its own time limit
  (``terminated`` = Brax's ``done``; ``truncated`` = the time limit), so the engine keeps the two apart.
- :class:`ClipAction`, :class:`FlattenObservation`  small gymnax-API wrappers.
- :func:`to_gymnasium`  export any JAX env as a ``gymnasium.Env``.

Auto-reset and episode statistics are done once, in the rollout engine
(:mod:`rlsuite.core.rollout`), not per wrapper; observation / reward normalisation keep their
statistics in the learner state (:mod:`rlsuite.core.normalize`), as Brax's trainers do.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.core.validate import require_positive_int

# Brax backends measured on the 2-core CPU (benchmarks/engine_overhead.py and STACK.md):
# spring is the fastest on CPU for every env we tried (inverted_pendulum 290k steps/s vs
# positional 117k, generalized 92k, mjx 72k; hopper 84k vs 48k / 13k / 13k).
DEFAULT_BRAX_BACKEND = "spring"
BRAX_BACKENDS = ("spring", "positional", "generalized", "mjx")


def import_brax_envs():
    """``brax.envs``, imported with mujoco's "Failed to import warp" stdout lines silenced (warp is
    an optional GPU backend of MuJoCo-MJX that rlsuite does not use)."""
    import sys

    if "brax.envs" not in sys.modules:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import brax.envs  # noqa: F401
    return sys.modules["brax.envs"]


def brax_env_names() -> list[str]:
    brax = import_brax_envs

    return sorted(n for n in brax()._envs if n != "fast")


@struct.dataclass
class BraxEnvState:
    pipeline: Any  # brax.envs.base.State
    time: jax.Array


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


class BraxToGymnax(environment.Environment):
    """A Brax environment behind gymnax's functional API.

    ``step_env`` returns ``terminated`` from Brax's ``done`` (the robot fell); the time limit is
    reported separately by ``is_truncated`` so that value targets bootstrap on time-outs.
    """

    # The engine resets Brax envs without a batch-level lax.cond: on CPU the conditional around
    # the Brax state costs more than the reset it skips (see rlsuite.core.rollout).
    reset_under_cond = False

    def __init__(self, name: str, backend: str = DEFAULT_BRAX_BACKEND, episode_length: int = 1000, **kwargs):
        brax_envs = import_brax_envs()

        if backend not in BRAX_BACKENDS:
            raise ValueError(f"unknown Brax backend {backend!r}; choose one of {BRAX_BACKENDS}")
        require_positive_int("episode_length", episode_length)
        super().__init__()
        self.name_ = name
        self.backend = backend
        self.episode_length = int(episode_length)
        self._env = brax_envs.get_environment(name, backend=backend, **kwargs)
        self._obs_size = None  # filled on the first observation_space() call

    @property
    def name(self) -> str:
        return f"brax:{self.name_}"

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(max_steps_in_episode=self.episode_length)

    def reset_env(self, key, params):
        s = self._env.reset(key)
        return s.obs, BraxEnvState(pipeline=s, time=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        # Brax's step returns some weakly typed leaves (done, metrics) where reset does not; the
        # engine (rlsuite.core.rollout.strong_types) canonicalises them.
        s = self._env.step(state.pipeline, action)
        new = BraxEnvState(pipeline=s, time=state.time + 1)
        return s.obs, new, s.reward, s.done.astype(bool), {}

    def is_truncated(self, state, params):
        return state.time >= params.max_steps_in_episode

    def is_terminal(self, state, params):
        return jnp.logical_or(state.pipeline.done.astype(bool), self.is_truncated(state, params))

    @property
    def num_actions(self) -> int:
        return self._env.action_size

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def observation_space(self, params=None):
        # Brax's `observation_size` runs an eager (un-jitted) reset, ~8 s on CPU; the shape of an
        # abstract reset (`jax.eval_shape`, no computation) is the same and costs ~0.3 s once.
        if self._obs_size is None:
            self._obs_size = int(jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs.shape[-1])
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)


class _Wrapper(environment.Environment):
    def __init__(self, env):
        super().__init__()
        self._env = env

    def __getattr__(self, name):
        # Only called for attributes not found normally.  Never forward `_env` itself or dunder
        # lookups: copy/pickle probe `__setstate__` etc. on an instance without `_env` yet, which
        # would otherwise recurse forever.
        if name == "_env" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self):
        return self._env.default_params

    # gymnax's base class defines these, so __getattr__ would never forward them
    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def reset_env(self, key, params):
        return self._env.reset_env(key, params)

    def step_env(self, key, state, action, params):
        return self._env.step_env(key, state, action, params)

    def is_truncated(self, state, params):
        return self._env.is_truncated(state, params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def action_space(self, params=None):
        return self._env.action_space(params)


class ClipAction(_Wrapper):
    """Clip continuous actions into the action space's bounds before stepping."""

    def step_env(self, key, state, action, params):
        space = self._env.action_space(params)
        return self._env.step_env(key, state, jnp.clip(action, space.low, space.high), params)


class FlattenObservation(_Wrapper):
    """Flatten observations to one vector (e.g. MinAtar's 10x10xC grids for an MLP)."""

    def reset_env(self, key, params):
        obs, state = self._env.reset_env(key, params)
        return obs.reshape(-1), state

    def step_env(self, key, state, action, params):
        obs, state, r, term, info = self._env.step_env(key, state, action, params)
        return obs.reshape(-1), state, r, term, info

    def observation_space(self, params=None):
        space = self._env.observation_space(params)
        n = int(np.prod(space.shape))
        return spaces.Box(jnp.min(jnp.asarray(space.low)), jnp.max(jnp.asarray(space.high)), (n,), space.dtype)


def _to_gymnasium_space(space):
    import gymnasium

    if isinstance(space, spaces.Discrete):
        return gymnasium.spaces.Discrete(int(space.n))
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
        return gymnasium.spaces.Box(low, high, tuple(space.shape), np.float32)
    raise TypeError(f"cannot convert space {space!r} to gymnasium")


def to_gymnasium(env, env_params=None, seed: int = 0):
    """Export a JAX (gymnax-API) environment as a ``gymnasium.Env`` running on the host.

    ``reset``/``step`` call jitted ``reset_env``/``step_env``; the time limit becomes
    gymnasium's ``truncated`` flag.
    """
    import gymnasium

    params = env.default_params if env_params is None else env_params
    reset_fn = jax.jit(env.reset_env)
    step_fn = jax.jit(env.step_env)
    trunc_fn = jax.jit(env.is_truncated)

    class _Exported(gymnasium.Env):
        metadata = {"render_modes": []}

        def __init__(self):
            self.observation_space = _to_gymnasium_space(env.observation_space(params))
            self.action_space = _to_gymnasium_space(env.action_space(params))
            self._key = jax.random.PRNGKey(seed)
            self._state = None

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            if seed is not None:
                self._key = jax.random.PRNGKey(seed)
            self._key, k = jax.random.split(self._key)
            obs, self._state = reset_fn(k, params)
            return np.asarray(obs), {}

        def step(self, action):
            if self._state is None:
                raise RuntimeError("call reset() before step()")
            self._key, k = jax.random.split(self._key)
            obs, self._state, r, term, info = step_fn(k, self._state, jnp.asarray(action), params)
            trunc = trunc_fn(self._state, params)
            return np.asarray(obs), float(r), bool(term), bool(trunc) and not bool(term), {}

    return _Exported()
