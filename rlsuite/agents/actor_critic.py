"""Machinery shared by the on-policy actor-critic agents (PPO, A2C).

Nothing here knows a loss: it builds the network and optimiser, acts through the rollout
engine, computes GAE targets (bootstrapping time-outs from ``V(next_obs)``), keeps the
normalisation statistics in the learner state, and builds the protocol
:class:`~rlsuite.core.agent.Agent` (:func:`make_agent`).  An agent supplies its
``learn(state, batch, hp, net, discrete, optimizer, key) -> (params, opt_state, loss_metrics)``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.core import networks as nets
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.normalize import RewardScaler, RunningStats, normalize_obs
from rlsuite.core.returns import gae
from rlsuite.core.rollout import init_rollout, rollout, rollout_episodes
from rlsuite.core.types import RolloutState


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


def check_common(config) -> None:
    """Validate the fields shared by the actor-critic configs (one clear message each)."""
    V.positive_ints(config, "total_timesteps", "num_envs", "num_steps", "eval_episodes")
    V.sizes(config, "hidden")
    V.choice(config, "activation", sorted(nets.ACTIVATIONS))
    if config.num_updates < 1:
        raise ValueError(
            f"{type(config).__name__}.total_timesteps={config.total_timesteps} is less than one rollout "
            f"(num_envs * num_steps = {config.num_envs * config.num_steps})"
        )


def prepare_env(env, env_params):
    """Validate the action space, clip continuous actions into their bounds and flatten
    image-like observations (MinAtar) for the MLP."""
    from rlsuite.envs.wrappers import ClipAction, FlattenObservation  # gymnax: imported when used

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
    return optax.flatten(optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), opt))


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
    stats = state.obs_stats if config.normalize_obs else None
    obs_n = normalize_obs(stats, tr.obs)
    _, next_value = net.apply(state.params, normalize_obs(stats, tr.next_obs))
    reward = tr.reward
    scaler = state.reward_scaler
    if config.normalize_reward:
        scaler = scaler.update(reward, tr.done, hp.gamma)
        reward = scaler.scale(reward)
    adv, target = gae(reward, tr.extras["value"], next_value, tr.terminated, tr.done, hp.gamma, hp.gae_lambda)
    batch = Batch(obs_n, tr.action, tr.extras["log_prob"], tr.extras["value"], adv, target)
    done = tr.done.astype(jnp.float32)
    episodes = done.sum()
    ep = {
        "episode_return": (tr.episode_return * done).sum() / jnp.maximum(episodes, 1.0),
        "episode_length": (tr.episode_length * done).sum() / jnp.maximum(episodes, 1.0),
        "episodes": episodes,
    }
    obs_stats = state.obs_stats.update(tr.obs) if config.normalize_obs else state.obs_stats
    state = state.replace(rollout=carry, obs_stats=obs_stats, reward_scaler=scaler)
    return state, batch, ep


def make_agent(config, env, env_params, learn, optimizer_fn) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` of an actor-critic config.

    ``learn(state, batch, hp, net, discrete, optimizer, key) -> (params, opt_state, loss_metrics)``
    supplies the loss; ``optimizer_fn(hp)`` the optimiser.  One update = one rollout of
    ``num_envs x num_steps`` steps + ``learn``; ``evaluate`` runs ``config.eval_episodes``
    deterministic episodes from fresh resets.
    """
    env, net, discrete = make_network(config, env, env_params)
    policy = make_policy_fn(net, discrete, config.normalize_obs)
    greedy = make_policy_fn(net, discrete, config.normalize_obs, deterministic=True)
    steps_per_update = config.num_envs * config.num_steps
    horizon = int(getattr(env_params, "max_steps_in_episode", 1000))

    def init(key, hp):
        return init_state(config, env, env_params, net, optimizer_fn(hp), key)

    def update(state: ACState, hp):
        state, batch, ep = collect(config, env, env_params, net, policy, state, hp)
        key, k_learn = jax.random.split(state.key)
        params, opt_state, loss_m = learn(state, batch, hp, net, discrete, optimizer_fn(hp), k_learn)
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        return state, {"env_steps": state.update * steps_per_update, **ep, **loss_m}

    def evaluate(state: ACState, key):
        traj = rollout_episodes(env, env_params, greedy, (state.params, state.obs_stats), key,
                                config.eval_episodes, horizon)
        return {"eval_return": traj.episode_return.mean()}

    return Agent(init, scan_segment(update), evaluate, config.num_updates, steps_per_update)
