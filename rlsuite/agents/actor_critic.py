"""Machinery shared by the on-policy actor-critic agents (PPO, A2C).

Nothing here knows a loss: it builds the network and optimiser, acts through the rollout
engine, computes GAE targets (bootstrapping time-outs from ``V(next_obs)``), keeps the
normalisation statistics in the learner state, and scans ``update`` over a segment.  An agent
supplies its ``learn(state, batch, hp) -> (params, opt_state, loss_metrics)``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.core import networks as nets
from rlsuite.core.normalize import RewardScaler, RunningStats, normalize_obs
from rlsuite.core.returns import gae
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.core.types import RolloutState
from rlsuite.envs.wrappers import ClipAction, FlattenObservation


@struct.dataclass
class ACState:
    """Everything a run needs to continue: params, optimiser, normalisation stats, envs, RNG."""

    params: Any
    opt_state: Any
    obs_stats: RunningStats
    reward_scaler: RewardScaler
    rollout: RolloutState
    key: jax.Array
    update: jax.Array  # number of updates done


@struct.dataclass
class Batch:
    obs: jax.Array  # [T, N, obs...] normalised observations
    action: jax.Array
    log_prob: jax.Array  # [T, N] behaviour log-probabilities
    value: jax.Array  # [T, N] behaviour values
    advantage: jax.Array  # [T, N]
    target: jax.Array  # [T, N] value targets


def check_positive(config, *names: str) -> None:
    for n in names:
        v = getattr(config, n)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{type(config).__name__}.{n} must be positive, got {v!r}")


def check_network(config) -> None:
    """Validate the network fields shared by the actor-critic configs."""
    if not config.hidden or any(int(h) <= 0 for h in config.hidden):
        raise ValueError(f"{type(config).__name__}.hidden sizes must be positive, got {tuple(config.hidden)}")
    if config.activation not in nets.ACTIVATIONS:
        raise ValueError(
            f"{type(config).__name__}.activation {config.activation!r} is unknown; choose one of {sorted(nets.ACTIVATIONS)}"
        )


def prepare_env(env, env_params):
    """Validate the action space, clip continuous actions into their bounds and flatten
    image-like observations (MinAtar) for the MLP."""
    discrete, action_dim = nets.action_info(env.action_space(env_params))
    if len(env.observation_space(env_params).shape) > 1:
        env = FlattenObservation(env)
    if not discrete:
        env = ClipAction(env)
    return env, discrete, action_dim


def make_network(config, env, env_params):
    env, discrete, action_dim = prepare_env(env, env_params)
    net = nets.ActorCritic(action_dim, discrete, tuple(config.hidden), config.activation)
    return env, net, discrete


def make_policy_fn(net, discrete: bool, normalize: bool, deterministic: bool = False):
    """``policy((params, obs_stats), obs, key) -> (action, {"log_prob", "value"})``."""

    def policy(policy_params, obs, key):
        params, stats = policy_params
        x = normalize_obs(stats if normalize else None, obs)
        dist, value = net.apply(params, x)
        action = nets.dist_mode(discrete, dist) if deterministic else nets.dist_sample(discrete, key, dist)
        return action, {"log_prob": nets.dist_log_prob(discrete, dist, action), "value": value}

    return policy


def make_optimizer(hp, lr_schedule: Callable[[jax.Array], jax.Array], kind: str = "adam"):
    """Gradient clipping + Adam (or RMSprop); ``hp`` fields may be traced (vmappable)."""
    if kind == "adam":
        opt = optax.adam(lr_schedule, eps=1e-5)
    elif kind == "rmsprop":
        opt = optax.rmsprop(lr_schedule, decay=0.99, eps=1e-5)
    else:
        raise ValueError(f"unknown optimizer {kind!r}; choose adam or rmsprop")
    return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), opt)


def init_state(config, env, env_params, net, optimizer, key) -> ACState:
    """``env`` must be the prepared env (see :func:`make_network`)."""
    k_net, k_env, k_state = jax.random.split(key, 3)
    obs_shape = env.observation_space(env_params).shape
    params = net.init(k_net, jnp.zeros((1,) + tuple(obs_shape), jnp.float32))
    return ACState(
        params=params,
        opt_state=optimizer.init(params),
        obs_stats=RunningStats.create(tuple(obs_shape)),
        reward_scaler=RewardScaler.create(config.num_envs),
        rollout=init_rollout(env, env_params, k_env, config.num_envs),
        key=k_state,
        update=jnp.zeros((), jnp.int32),
    )


def collect(config, env, env_params, net, policy, state: ACState, hp):
    """Act for ``num_steps`` through the engine and compute GAE targets.

    Returns ``(state, batch, episode_metrics)``; statistics are updated *after* the batch is
    built, so the loss sees the same normalisation the behaviour policy used.
    """
    pp = (state.params, state.obs_stats)
    carry, tr = rollout(env, env_params, policy, pp, state.rollout, config.num_steps)
    obs_n = normalize_obs(state.obs_stats if config.normalize_obs else None, tr.obs)
    next_n = normalize_obs(state.obs_stats if config.normalize_obs else None, tr.next_obs)
    _, next_value = net.apply(state.params, next_n)
    reward = tr.reward
    scaler = state.reward_scaler
    if config.normalize_reward:
        scaler = scaler.update(reward, tr.done, hp.gamma)
        reward = scaler.scale(reward)
    adv, target = gae(reward, tr.extras["value"], next_value, tr.terminated, tr.done, hp.gamma, hp.gae_lambda)
    batch = Batch(obs_n, tr.action, tr.extras["log_prob"], tr.extras["value"], adv, target)
    done = tr.done.astype(jnp.float32)
    ep = {
        "return_sum": (tr.episode_return * done).sum(),
        "length_sum": (tr.episode_length * done).sum(),
        "episodes": done.sum(),
    }
    obs_stats = state.obs_stats.update(tr.obs) if config.normalize_obs else state.obs_stats
    state = state.replace(rollout=carry, obs_stats=obs_stats, reward_scaler=scaler)
    return state, batch, ep


def make_segments(config, env, env_params, learn, optimizer_fn, updates_per_segment: int):
    """Build ``init_fn(key, hp) -> ACState`` and ``segment_fn(state, hp) -> (state, metrics)``.

    ``learn(state, batch, hp, net, discrete, optimizer) -> (params, opt_state, loss_metrics)``.
    ``metrics`` leaves have shape ``[updates_per_segment]``.
    """
    env, net, discrete = make_network(config, env, env_params)
    policy = make_policy_fn(net, discrete, config.normalize_obs)

    def init_fn(key, hp):
        return init_state(config, env, env_params, net, optimizer_fn(hp), key)

    def one_update(state: ACState, hp):
        state, batch, ep = collect(config, env, env_params, net, policy, state, hp)
        key, k_learn = jax.random.split(state.key)
        params, opt_state, loss_m = learn(state, batch, hp, net, discrete, optimizer_fn(hp), k_learn)
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        return state, {**ep, **loss_m}

    def segment_fn(state, hp):
        # Updates past config.num_updates (the tail of the last segment when the segment size
        # does not divide it) leave the state unchanged and are reported with valid = 0.
        def body(s, _):
            new, m = one_update(s, hp)
            valid = s.update < config.num_updates
            new = jax.tree.map(lambda a, b: jnp.where(valid, a, b), new, s)
            return new, {**m, "valid": valid.astype(jnp.float32)}

        return jax.lax.scan(body, state, None, length=updates_per_segment)

    return init_fn, segment_fn


def evaluate(config, env, env_params, policy_params, key, num_episodes: int = 16, horizon: int | None = None):
    """Mean undiscounted return of the deterministic policy over fresh episodes (episode mode)."""
    from rlsuite.core.rollout import rollout_episodes

    env, net, discrete = make_network(config, env, env_params)
    policy = make_policy_fn(net, discrete, config.normalize_obs, deterministic=True)
    if horizon is None:
        horizon = int(getattr(env_params, "max_steps_in_episode", 1000))
    traj = rollout_episodes(env, env_params, policy, policy_params, key, num_episodes, horizon)
    return traj.episode_return
