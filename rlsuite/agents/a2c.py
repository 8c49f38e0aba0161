"""Advantage actor-critic, synchronous (A2C; Mnih et al., 2016, arXiv:1602.01783).

One gradient step per rollout on ``-log pi(a|s) A - ent_coef H + vf_coef (V - target)^2 / 2``
with GAE(lambda) advantages (lambda = 1 gives the n-step return of the paper).  Defaults follow
Stable-Baselines3's A2C (RMSprop, lr 7e-4, 5 steps, lambda 1, no entropy bonus for CartPole),
run here with 8 envs.  Shares the rollout / GAE / normalisation machinery with PPO
(:mod:`rlsuite.agents.actor_critic`); time-outs bootstrap from ``V(next_obs)``.
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
class A2CConfig:
    """A2C configuration (shape-setting fields; numeric hyper-parameters are in ``A2CHParams``)."""

    total_timesteps: int = 500_000
    """Environment steps over all envs."""
    num_envs: int = 8
    """Parallel environments (vmapped)."""
    num_steps: int = 5
    """Steps per env per update (the n of the n-step return)."""
    hidden: Sequence[int] = (64, 64)
    """Hidden layer sizes of the actor and of the critic."""
    activation: str = "tanh"
    """tanh, relu, gelu or elu."""
    optimizer: str = "rmsprop"
    """rmsprop (the paper's and SB3's choice) or adam."""
    anneal_lr: bool = False
    """Linearly decay the learning rate to 0 over training."""
    normalize_obs: bool = False
    """Standardise observations with running statistics kept in the learner state."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    lr: float = 7e-4
    """Default learning rate (hparams.lr)."""
    gamma: float = 0.99
    """Default discount."""
    gae_lambda: float = 1.0
    """Default GAE lambda (1.0 = n-step returns)."""
    ent_coef: float = 0.0
    """Default entropy-bonus coefficient."""
    vf_coef: float = 0.5
    """Default value-loss coefficient."""
    max_grad_norm: float = 0.5
    """Default global gradient-norm clip."""
    eval_episodes: int = 16
    """Deterministic evaluation episodes per seed after each segment (evaluation only)."""

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


@struct.dataclass
class A2CHParams:
    lr: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array


def default_hparams(config: A2CConfig) -> A2CHParams:
    f = lambda x: jnp.asarray(x, jnp.float32)
    return A2CHParams(f(config.lr), f(config.gamma), f(config.gae_lambda), f(config.ent_coef),
                      f(config.vf_coef), f(config.max_grad_norm))


def validate(config: A2CConfig) -> None:
    ac.check_common(config)
    V.choice(config, "optimizer", ("rmsprop", "adam"))


Config, HParams = A2CConfig, A2CHParams
HPARAM_RANGES = {  # documented valid ranges, checked by rlsuite.core.validate.check_ranges
    "lr": V.POSITIVE, "gamma": V.DISCOUNT, "gae_lambda": V.UNIT,
    "ent_coef": V.NONNEG, "vf_coef": V.NONNEG, "max_grad_norm": V.POSITIVE_OR_INF,
}
INERT = {"eval_episodes": "evaluation only"}


def a2c_loss(params, net, discrete, batch: ac.Batch, hp: A2CHParams):
    dist, value = net.apply(params, batch.obs)
    log_prob = nets.dist_log_prob(discrete, dist, batch.action)
    actor_loss = -(log_prob * jax.lax.stop_gradient(batch.advantage)).mean()
    value_loss = 0.5 * ((value - batch.target) ** 2).mean()
    entropy = nets.dist_entropy(discrete, dist).mean()
    total = actor_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy
    return total, {"loss/actor": actor_loss, "loss/value": value_loss, "entropy": entropy}


def _learn(state: ac.ACState, batch: ac.Batch, hp, net, discrete, optimizer, key):
    grads, m = jax.grad(a2c_loss, has_aux=True)(state.params, net, discrete, batch, hp)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return optax.apply_updates(state.params, updates), opt_state, m


def _optimizer_fn(config: A2CConfig):
    def optimizer_fn(hp: A2CHParams):
        if config.anneal_lr:
            sched = lambda count: hp.lr * (1.0 - count / config.num_updates)
        else:
            sched = lambda count: hp.lr
        return ac.make_optimizer(hp, sched, config.optimizer)

    return optimizer_fn


def make(config: A2CConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` (one gradient step per rollout)."""
    validate(config)
    return ac.make_agent(config, env, env_params, _learn, _optimizer_fn(config))


def make_train(config: A2CConfig, env, env_params):
    """``train(key, hparams) -> (ACState, metrics)``; see :func:`rlsuite.agents.ppo.make_train`."""
    return make_train_of(make(config, env, env_params))


def make_policy(config: A2CConfig, env, env_params, deterministic: bool = False):
    _, net, discrete = ac.make_network(config, env, env_params)
    return ac.make_policy_fn(net, discrete, config.normalize_obs, deterministic)


def policy_params(state: ac.ACState):
    return (state.params, state.obs_stats)
