"""Observation and reward normalisation whose statistics live in the learner state.

Following Brax's trainers, the statistics are part of the agent's state (so they are
checkpointed, vmapped per seed and never hidden inside an env wrapper):

- :class:`RunningStats` is a parallel-update (Chan et al.) mean / variance over batches;
- :func:`normalize_obs` standardises and clips observations with it;
- :class:`RewardScaler` divides rewards by the running std of each env's discounted return
  (the scheme of PureJaxRL's ``NormalizeVecReward`` / gym's ``NormalizeReward``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningStats":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))

    def update(self, x: jax.Array) -> "RunningStats":
        """Merge a batch ``x[..., *shape]`` (all leading axes are samples)."""
        x = x.reshape((-1,) + self.mean.shape).astype(jnp.float32)
        b_mean, b_var, b_n = x.mean(0), x.var(0), jnp.asarray(x.shape[0], jnp.float32)
        delta = b_mean - self.mean
        tot = self.count + b_n
        mean = self.mean + delta * b_n / tot
        m2 = self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / tot
        return RunningStats(mean, m2 / tot, tot)


def normalize_obs(stats: RunningStats | None, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    if stats is None:
        return obs
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)


@struct.dataclass
class RewardScaler:
    """Running std of the discounted return, with one accumulator per env."""

    stats: RunningStats
    ret: jax.Array  # [N] discounted return of the episode in progress

    @classmethod
    def create(cls, num_envs: int) -> "RewardScaler":
        return cls(RunningStats.create(()), jnp.zeros((num_envs,), jnp.float32))

    def update(self, reward_t: jax.Array, done_t: jax.Array, gamma) -> "RewardScaler":
        """Feed a ``[T, N]`` batch of rewards in time order."""

        def body(ret, x):
            r, d = x
            ret = ret * gamma + r
            return ret * (1.0 - d), ret

        ret, rets = jax.lax.scan(body, self.ret, (reward_t, done_t.astype(jnp.float32)))
        return RewardScaler(self.stats.update(rets), ret)

    def scale(self, reward: jax.Array) -> jax.Array:
        return reward / jnp.sqrt(self.stats.var + 1e-8)
