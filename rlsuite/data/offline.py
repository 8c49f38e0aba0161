"""Offline-RL data preparation shared by O-DICE, BC and IQL (host side, once per run).

:func:`prepare_data` turns a :class:`~rlsuite.data.dataset.Dataset` into :class:`OfflineData`,
the device arrays the learners sample from:

1. validate it against the env (observation / action shapes, finiteness: one clear error);
2. reward preprocessing: ``"locomotion"`` scales ``r <- r * 1000 / (max_return - min_return)``
   with the returns of :func:`return_range` (D4RL / IQL ``return_range``), ``"none"`` keeps them;
   ``zero_rewards`` (imitation) sets them to 0;
3. D4RL ``qlearning_dataset`` semantics through :meth:`Dataset.qlearning` (time-out transitions
   dropped, or kept as bootstrapped transitions with ``drop_timeouts=False``);
4. actions mapped linearly from the env's Box bounds to ``[-1, 1]``;
5. observation statistics (mean / std + 1e-3 of the whole dataset) when ``normalize_states``,
   else the identity (mean 0, std 1); the learners apply them with :meth:`OfflineData.normalize`.

``OfflineData`` is a pytree: pass it into ``jit`` as an argument (large datasets are then not
baked into the program as constants) or ``vmap`` over datasets of equal shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlsuite.core import validate as V
from rlsuite.data.dataset import Dataset

REWARD_SCALES = ("locomotion", "none")


@struct.dataclass
class OfflineData:
    """Prepared transitions ``[N, ...]``.

    ``actions`` are in ``[-1, 1]``; ``observations`` are raw (normalise with :meth:`normalize`);
    ``dones`` = true terminals as float32; ``obs_mean`` / ``obs_std`` ``[obs_dim]``.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    dones: jax.Array
    obs_mean: jax.Array
    obs_std: jax.Array

    @property
    def size(self) -> int:
        return self.observations.shape[0]

    def normalize(self, obs):
        return (obs - self.obs_mean) / self.obs_std

    def sample(self, key: jax.Array, batch_size: int) -> "OfflineData":
        """Uniform batch (with replacement) of ``batch_size`` transitions (jittable; the
        statistics are kept)."""
        idx = jax.random.randint(key, (batch_size,), 0, self.observations.shape[0])
        take = lambda x: x[idx]  # noqa: E731
        return self.replace(
            observations=take(self.observations), actions=take(self.actions), rewards=take(self.rewards),
            next_observations=take(self.next_observations), dones=take(self.dones),
        )


def sample_batch(data: OfflineData, key: jax.Array, batch_size: int) -> OfflineData:
    """:meth:`OfflineData.sample` as a function."""
    return data.sample(key, batch_size)


def action_bounds(env, env_params) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of a bounded 1-D Box action space (the offline learners are continuous)."""
    from gymnax.environments import spaces  # imported when used (gymnax takes ~1.3 s)

    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        raise ValueError(
            f"O-DICE / BC / IQL here need a continuous (Box) action space; {getattr(env, 'name', env)} "
            f"has Discrete({space.n})"
        )
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"unsupported action space {space!r}; expected a 1-D Box")
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("the action space must have finite bounds")
    return low, high


def return_range(dataset: Dataset, max_steps: int) -> np.ndarray:
    """Returns of the dataset's episodes as the D4RL / IQL reward scaling sees them: cut at a
    terminal, a time-out, a break in the ``next_obs[i] == obs[i+1]`` chain, or after
    ``max_steps`` steps (via :meth:`Dataset.episode_returns` on a re-cut copy)."""
    max_steps = V.require_positive_int("max_episode_steps", max_steps)
    obs = np.asarray(dataset.observations)
    nobs = np.asarray(dataset.next_observations)
    n = len(dataset)
    brk = np.zeros(n, bool)
    if n > 1:
        brk[:-1] = np.any(np.abs(nobs[:-1] - obs[1:]).reshape(n - 1, -1) > 1e-6, axis=-1)
    ends = np.asarray(dataset.terminals) | np.asarray(dataset.timeouts) | brk
    # within each piece, one more cut every max_steps rows
    piece_start = np.zeros(n, np.int64)
    starts = np.concatenate([[0], np.flatnonzero(ends[:-1]) + 1]) if n else np.zeros(0, np.int64)
    piece_start[starts] = starts
    piece_start = np.maximum.accumulate(piece_start) if n else piece_start
    ends |= (np.arange(n) - piece_start) % max_steps == max_steps - 1
    cut = dataset.replace(terminals=np.zeros(n, bool), timeouts=ends, metadata={})
    return cut.episode_returns()


def locomotion_reward_scale(dataset: Dataset, max_steps: int) -> float:
    """``1000 / (max_return - min_return)`` over :func:`return_range` (1 if the range is 0)."""
    rets = return_range(dataset, max_steps)
    span = float(rets.max() - rets.min()) if rets.size else 0.0
    return 1000.0 / span if span > 0 else 1.0


def prepare_data(
    dataset: Dataset,
    env,
    env_params,
    reward_scale: str = "none",
    max_episode_steps: int = 1000,
    drop_timeouts: bool = True,
    normalize_states: bool = False,
    zero_rewards: bool = False,
) -> OfflineData:
    """Validate ``dataset`` against ``env`` and turn it into :class:`OfflineData` (module docstring)."""
    if not isinstance(dataset, Dataset):
        raise ValueError(f"expected an rlsuite.data.Dataset, got {type(dataset).__name__}")
    V.require_choice("reward_scale", reward_scale, REWARD_SCALES)
    obs_shape = tuple(env.observation_space(env_params).shape)
    low, high = action_bounds(env, env_params)
    ds = dataset.to_numpy()
    act = np.asarray(ds.actions)
    if act.ndim == 1 and low.shape == (1,):  # a 1-D continuous action stored as [N]
        act = act.astype(np.float32)[:, None]
    if act.dtype != np.float32:
        raise ValueError(f"dataset actions are {act.dtype} (discrete?); the env's action space is a Box {low.shape}")
    ds = ds.replace(actions=act)
    ds.validate(obs_shape=obs_shape, act_shape=low.shape)
    n = len(ds)
    rew = np.zeros(n, np.float32) if zero_rewards else np.asarray(ds.rewards, np.float32)
    if reward_scale == "locomotion" and not zero_rewards:
        rets = return_range(ds, max_episode_steps)
        span = rets.max() - rets.min()
        rew = rew * (1000.0 / span) if span > 0 else rew
    obs = np.asarray(ds.observations, np.float32)
    mean = obs.mean(0) if normalize_states else np.zeros(obs_shape, np.float32)
    std = obs.std(0) + 1e-3 if normalize_states else np.ones(obs_shape, np.float32)
    q = ds.replace(rewards=rew.astype(np.float32)).qlearning(drop_timeouts=drop_timeouts)
    if len(q) == 0:
        raise ValueError("every transition of the dataset is a time-out; nothing left to learn from")
    a = np.clip(2.0 * (np.asarray(q.actions) - low) / (high - low) - 1.0, -1.0, 1.0)
    return OfflineData(
        observations=jnp.asarray(q.observations, jnp.float32),
        actions=jnp.asarray(a, jnp.float32),
        rewards=jnp.asarray(q.rewards, jnp.float32),
        next_observations=jnp.asarray(q.next_observations, jnp.float32),
        dones=jnp.asarray(q.terminals, jnp.float32),
        obs_mean=jnp.asarray(mean, jnp.float32),
        obs_std=jnp.asarray(std, jnp.float32),
    )


def references(dataset) -> tuple[float, float] | None:
    """``(random, expert)`` reference returns stored in ``dataset.metadata`` if both are there and
    usable (finite, different; never D4RL MuJoCo numbers for a Brax env), else ``None``."""
    md = getattr(dataset, "metadata", None) or {}
    r, e = md.get("ref_random_return"), md.get("ref_expert_return")
    if r is None or e is None:
        return None
    if str(md.get("env_id", "")).startswith("brax:") and md.get("ref_source") == "d4rl":
        return None
    r, e = float(r), float(e)
    if not (np.isfinite(r) and np.isfinite(e)) or r == e:
        return None
    return r, e
