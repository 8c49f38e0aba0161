"""Proximal Policy Optimization (Schulman et al., 2017, arXiv:1707.06347).

Clipped surrogate objective, clipped value loss, entropy bonus, GAE(lambda) advantages
normalised per minibatch, ``update_epochs`` passes of shuffled minibatches per rollout.
Defaults are PureJaxRL's (``PPOConfig.preset("cartpole" | "minatar" | "brax")``).

Differences from PureJaxRL, all deliberate:
- time-outs bootstrap from ``V(next_obs)`` of the pre-reset observation (PureJaxRL treats a
  time-out as a terminal state), terminations do not;
- observation / reward normalisation statistics live in the learner state (Brax style) instead
  of an env wrapper, so they are checkpointed and vmapped per seed; the loss uses the same
  statistics the behaviour policy used, and they are updated after each rollout.

Cost notes (issue 17, ``benchmarks/ppo_profile.py`` on a quiet machine, source trees side by side,
``results/benchmarks/ppo_profile.md``): clip + Adam run on one flattened parameter vector
(``optax.flatten`` in :func:`~rlsuite.agents.actor_critic.make_optimizer`), compile 0.91-0.92x.
Reusing the behaviour values for the time-out bootstrap and gathering minibatches by index were
tried and reverted: their run-time effect (0.97x-1.02x) was inside the run-to-run spread.

Usage::

    env, env_params = rlsuite.envs.make("gymnax:CartPole-v1")
    config = PPOConfig()
    agent = make(config, env, env_params)                 # the protocol (rlsuite.core.agent)
    train = jax.jit(make_train(config, env, env_params))  # = core.agent.make_train(agent)
    state, metrics = train(jax.random.PRNGKey(0), default_hparams(config))

or from the command line: ``rlsuite train ppo --env gymnax:CartPole-v1 --seeds 8``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents import actor_critic as ac
from rlsuite.core import networks as nets
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent
from rlsuite.core.agent import make_train as make_train_of


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO configuration (shape-setting fields; numeric hyper-parameters are in ``PPOHParams``)."""

    total_timesteps: int = 500_000
    """Environment steps over all envs."""
    num_envs: int = 4
    """Parallel environments (vmapped)."""
    num_steps: int = 128
    """Steps per env per rollout."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (must divide num_envs * num_steps)."""
    hidden: Sequence[int] = (64, 64)
    """Hidden layer sizes of the actor and of the critic."""
    activation: str = "tanh"
    """tanh, relu, gelu or elu."""
    anneal_lr: bool = True
    """Linearly decay the learning rate to 0 over training."""
    normalize_obs: bool = False
    """Standardise observations with running statistics kept in the learner state."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    lr: float = 2.5e-4
    """Default Adam learning rate (hparams.lr)."""
    gamma: float = 0.99
    """Default discount (hparams.gamma)."""
    gae_lambda: float = 0.95
    """Default GAE lambda (hparams.gae_lambda)."""
    clip_eps: float = 0.2
    """Default policy / value clipping range (hparams.clip_eps)."""
    ent_coef: float = 0.01
    """Default entropy-bonus coefficient (hparams.ent_coef)."""
    vf_coef: float = 0.5
    """Default value-loss coefficient (hparams.vf_coef)."""
    max_grad_norm: float = 0.5
    """Default global gradient-norm clip (hparams.max_grad_norm)."""
    eval_episodes: int = 16
    """Deterministic evaluation episodes per seed after each segment (evaluation only)."""

    @staticmethod
    def preset(name: str, **overrides) -> "PPOConfig":
        """PureJaxRL's configs: ``cartpole`` (classic control), ``minatar``, ``brax``."""
        presets = {
            "cartpole": {},
            "minatar": dict(
                total_timesteps=10_000_000, num_envs=64, num_steps=128, num_minibatches=8,
                lr=5e-4, activation="relu",
            ),
            "brax": dict(
                total_timesteps=50_000_000, num_envs=2048, num_steps=10, num_minibatches=32,
                lr=3e-4, ent_coef=0.0, hidden=(256, 256), anneal_lr=False,
                normalize_obs=True, normalize_reward=True,
            ),
        }
        if name not in presets:
            raise ValueError(f"unknown PPO preset {name!r}; choose one of {sorted(presets)}")
        return dataclasses.replace(PPOConfig(), **{**presets[name], **overrides})

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


@struct.dataclass
class PPOHParams:
    """Numeric hyper-parameters: a pytree, so ``vmap`` sweeps them."""

    lr: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array


def default_hparams(config: PPOConfig) -> PPOHParams:
    f = lambda x: jnp.asarray(x, jnp.float32)
    return PPOHParams(
        f(config.lr), f(config.gamma), f(config.gae_lambda), f(config.clip_eps),
        f(config.ent_coef), f(config.vf_coef), f(config.max_grad_norm),
    )


def validate(config: PPOConfig) -> None:
    ac.check_common(config)
    V.positive_ints(config, "update_epochs", "num_minibatches")
    V.divides(config, "num_minibatches", config.num_envs * config.num_steps, "num_envs * num_steps")


Config, HParams = PPOConfig, PPOHParams
HPARAM_RANGES = {  # documented valid ranges, checked by rlsuite.core.validate.check_ranges
    "lr": V.POSITIVE, "gamma": V.DISCOUNT, "gae_lambda": V.UNIT, "clip_eps": V.POSITIVE,
    "ent_coef": V.NONNEG, "vf_coef": V.NONNEG, "max_grad_norm": V.POSITIVE_OR_INF,
}
INERT = {"eval_episodes": "evaluation only"}


# ----------------------------------------------------------------------------- loss


def clipped_objective(log_ratio, adv, hp):
    """PPO's per-sample surrogate ``min(r A, clip(r, 1 - eps, 1 + eps) A)``, ``r = exp(log_ratio)``."""
    ratio = jnp.exp(log_ratio)
    return jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps) * adv)


def ppo_loss(params, net, discrete, mb: ac.Batch, hp: PPOHParams, objective=clipped_objective):
    """Clipped surrogate + clipped value loss - entropy bonus for one minibatch.

    ``objective(log_ratio, adv, hp) -> [B]`` is the per-sample policy objective (maximised; ``adv``
    normalised per minibatch): the override point of LPO / DPO (:mod:`rlsuite.agents.lpo`).
    """
    dist, value = net.apply(params, mb.obs)
    log_prob = nets.dist_log_prob(discrete, dist, mb.action)
    v_clipped = mb.value + jnp.clip(value - mb.value, -hp.clip_eps, hp.clip_eps)
    value_loss = 0.5 * jnp.maximum((value - mb.target) ** 2, (v_clipped - mb.target) ** 2).mean()
    adv = (mb.advantage - mb.advantage.mean()) / (mb.advantage.std() + 1e-8)
    actor_loss = -objective(log_prob - mb.log_prob, adv, hp).mean()
    entropy = nets.dist_entropy(discrete, dist).mean()
    total = actor_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy
    return total, {"loss/actor": actor_loss, "loss/value": value_loss, "entropy": entropy}


# ----------------------------------------------------------------------------- update


def _make_learn(config: PPOConfig, loss_fn=ppo_loss):
    """``learn`` of :func:`~rlsuite.agents.actor_critic.make_agent`: ``update_epochs`` epochs of
    shuffled minibatch steps on ``loss_fn(params, net, discrete, mb, hp) -> (loss, metrics)``
    (the override point: LPO / DPO pass their drift objective, :mod:`rlsuite.agents.lpo`)."""
    n_mb = config.num_minibatches

    def learn(state: ac.ACState, batch: ac.Batch, hp, net, discrete, optimizer, key):
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)  # [T*N, ...]
        size = flat.advantage.shape[0]

        def epoch(carry, k):
            params, opt_state = carry
            perm = jax.random.permutation(k, size)
            mbs = jax.tree.map(lambda x: x[perm].reshape((n_mb, size // n_mb) + x.shape[1:]), flat)

            def minibatch(carry, mb):
                params, opt_state = carry
                grads, m = jax.grad(loss_fn, has_aux=True)(params, net, discrete, mb, hp)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), m

            return jax.lax.scan(minibatch, (params, opt_state), mbs)

        keys = jax.random.split(key, config.update_epochs)
        (params, opt_state), m = jax.lax.scan(epoch, (state.params, state.opt_state), keys)
        return params, opt_state, jax.tree.map(jnp.mean, m)

    return learn


def _optimizer_fn(config: PPOConfig):
    steps_per_update = config.num_minibatches * config.update_epochs

    def optimizer_fn(hp: PPOHParams):
        if config.anneal_lr:
            sched = lambda count: hp.lr * (1.0 - (count // steps_per_update) / config.num_updates)
        else:
            sched = lambda count: hp.lr
        return ac.make_optimizer(hp, sched, "adam")

    return optimizer_fn


def make(config: PPOConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`: one update = one rollout + ``update_epochs``
    epochs of minibatch steps; metrics ``env_steps``, ``episode_return``/``episodes``,
    ``loss/actor``, ``loss/value``, ``entropy``."""
    validate(config)
    return ac.make_agent(config, env, env_params, _make_learn(config), _optimizer_fn(config))


def make_train(config: PPOConfig, env, env_params):
    """``train(key, hparams) -> (ACState, metrics)`` running all ``config.num_updates`` updates.

    Pure and jittable; ``vmap`` over ``key`` trains seeds in parallel, over ``hparams`` sweeps.
    ``metrics`` leaves are ``[num_updates]`` (see :func:`make`).
    """
    return make_train_of(make(config, env, env_params))


def make_policy(config: PPOConfig, env, env_params, deterministic: bool = False):
    """``policy(policy_params, obs, key) -> (action, {"log_prob", "value"})`` for the engine."""
    _, net, discrete = ac.make_network(config, env, env_params)
    return ac.make_policy_fn(net, discrete, config.normalize_obs, deterministic)


def policy_params(state: ac.ACState):
    """What :func:`make_policy`'s policy takes: ``(network params, observation statistics)``."""
    return (state.params, state.obs_stats)
