"""Pytrees that flow between the rollout engine and the agents.

Shapes use ``T`` for time and ``N`` for the env batch; every field is time-major ``[T, N, ...]``.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class Transition:
    """One step of ``N`` environments (stacked to ``[T, N, ...]`` by the engine).

    ``next_obs`` is the true successor of ``obs`` (the final observation when the episode ended
    at this step, *before* auto-reset), so a learner can bootstrap ``V(next_obs)`` on time-outs.
    ``terminated`` means a true terminal state (no bootstrap); ``truncated`` a time limit
    (bootstrap).  ``episode_return`` / ``episode_length`` hold the finished episode's statistics
    where ``terminated | truncated``, and 0 elsewhere.  ``extras`` is what the policy returned
    alongside the action (log-probabilities, values, ...).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    extras: Any = None

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


@struct.dataclass
class Trajectory:
    """Fixed-horizon episodes ``[H, N, ...]`` from the engine's episode mode.

    Every env starts a fresh episode at ``t = 0``; ``mask[t] = 1`` while the episode is running
    (including the step on which it ends) and 0 afterwards.  Masked-out steps hold zero reward and
    a frozen state, so sums over ``t`` weighted by ``mask`` are exact.  ``terminated`` /
    ``truncated`` are set on the last valid step only; an episode still running at ``H`` has
    neither (it was cut by the horizon).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    mask: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    extras: Any = None

    @property
    def episode_return(self) -> jax.Array:
        """Undiscounted return of each episode, ``[N]``."""
        return self.reward.sum(0)

    @property
    def episode_length(self) -> jax.Array:
        return self.mask.sum(0)


@struct.dataclass
class RolloutState:
    """The engine's carry between calls: env state, current observation, key and the running
    statistics of the episodes in progress."""

    env_state: Any
    obs: jax.Array
    key: jax.Array
    ep_return: jax.Array
    ep_length: jax.Array
