"""Offline baselines for O-DICE: behaviour cloning (BC) and Implicit Q-Learning (IQL).

- BC: maximum likelihood of the dataset actions under the same Gaussian policy as O-DICE.
- IQL: Kostrikov, Nair, Levine, "Offline Reinforcement Learning with Implicit Q-Learning",
  ICLR 2022.  Expectile regression of V on twin-Q targets (``tau = 0.7``), Q regression on
  ``r + gamma (1 - done) V(s')``, EMA target Q (min of the two heads), advantage-weighted
  regression for the policy with ``w = min(exp(beta (Q - V)), 100)``, ``beta = 3``
  (the IQL locomotion settings).

Both share O-DICE's data pipeline (:func:`rlsuite.agents.odice.prepare_data`: D4RL ``qlearning``
semantics, locomotion reward scaling, actions in ``[-1, 1]``), policy network, Adam(W) step and
engine-based evaluation, and the same API: ``make_train(config, dataset, env, env_params) ->
train(key, hparams) -> (state, metrics)``, the update loop fused in ``lax.scan``, vmappable over
seeds and hparams.

Deviations: IQL's policy uses O-DICE's Gaussian policy (configurable sizes; the IQL paper uses
2x256 with a cosine learning-rate schedule for the actor, which we do not apply, and a
state-independent log-std as here); the learning rates are the IQL paper's 3e-4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents.odice import (
    REWARD_SCALES,
    GaussianPolicy,
    OfflineData,
    TwinV,
    adam_step,
    check_positive,
    check_sizes,
    ema,
    gaussian_log_prob,
    make_eval,
    normalize,
    prepare_data,
    sample_batch,
)

# ============================================================================ configs


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning (static settings)."""

    gradient_steps: int = 1_000_000
    """Total gradient steps."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations; must divide ``gradient_steps``."""
    eval_episodes: int = 10
    """Episodes per evaluation (mean action)."""
    eval_horizon: int = 0
    """0 = the env's ``max_steps_in_episode``."""
    policy_hidden: tuple[int, ...] = (1024, 1024)
    """Hidden sizes of the policy mean MLP (same as O-DICE)."""
    tanh_mean: bool = False
    """tanh on the policy mean."""
    log_std_min: float = -5.0
    """Lower clamp of the log-std."""
    log_std_max: float = 2.0
    """Upper clamp of the log-std."""
    drop_timeouts: bool = True
    """D4RL qlearning semantics (drop time-out transitions)."""
    normalize_states: bool = False
    """Standardise observations with dataset statistics."""
    reward_scale: str = "none"
    """Unused by BC's loss; kept so the data pipeline is shared."""
    max_episode_steps: int = 1000
    """Episode cut for reward scaling (unused by BC)."""


@dataclass(frozen=True)
class IQLConfig:
    """Implicit Q-Learning (static settings)."""

    gradient_steps: int = 1_000_000
    """Total gradient steps."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations; must divide ``gradient_steps``."""
    eval_episodes: int = 10
    """Episodes per evaluation (mean action)."""
    eval_horizon: int = 0
    """0 = the env's ``max_steps_in_episode``."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden sizes of each Q head and of V."""
    policy_hidden: tuple[int, ...] = (1024, 1024)
    """Hidden sizes of the policy mean MLP (O-DICE's, for a like-for-like comparison)."""
    tanh_mean: bool = False
    """tanh on the policy mean."""
    log_std_min: float = -5.0
    """Lower clamp of the log-std."""
    log_std_max: float = 2.0
    """Upper clamp of the log-std."""
    drop_timeouts: bool = True
    """D4RL qlearning semantics (drop time-out transitions)."""
    normalize_states: bool = False
    """Standardise observations with dataset statistics."""
    reward_scale: str = "locomotion"
    """``locomotion`` (r * 1000 / return range, as IQL) or ``none``."""
    max_episode_steps: int = 1000
    """Episode cut for the locomotion reward scaling."""


@struct.dataclass
class BCHParams:
    pi_lr: jax.Array
    pi_weight_decay: jax.Array


@struct.dataclass
class IQLHParams:
    expectile: jax.Array
    beta: jax.Array  # inverse temperature of the advantage weights
    gamma: jax.Array
    tau: jax.Array  # EMA rate of the target Q
    lr: jax.Array  # Q, V and policy learning rate
    pi_weight_decay: jax.Array
    weight_clip: jax.Array


def bc_default_hparams(config: BCConfig | None = None, **kw) -> BCHParams:
    hp = dict(pi_lr=2e-4, pi_weight_decay=1e-4)
    hp.update(kw)
    return BCHParams(**{k: jnp.asarray(v, jnp.float32) for k, v in hp.items()})


def iql_default_hparams(config: IQLConfig | None = None, **kw) -> IQLHParams:
    hp = dict(expectile=0.7, beta=3.0, gamma=0.99, tau=0.005, lr=3e-4, pi_weight_decay=0.0, weight_clip=100.0)
    hp.update(kw)
    return IQLHParams(**{k: jnp.asarray(v, jnp.float32) for k, v in hp.items()})


def _check(config, sizes: tuple[str, ...]) -> None:
    check_positive(config, "gradient_steps", "batch_size", "eval_every", "eval_episodes", "max_episode_steps")
    check_sizes(config, *sizes)
    if config.gradient_steps % config.eval_every:
        raise ValueError(
            f"{type(config).__name__}.eval_every={config.eval_every} must divide gradient_steps={config.gradient_steps}"
        )
    if config.reward_scale not in REWARD_SCALES:
        raise ValueError(f"{type(config).__name__}.reward_scale={config.reward_scale!r}; choose one of {REWARD_SCALES}")


def _policy_net(config, action_dim: int) -> GaussianPolicy:
    return GaussianPolicy(action_dim, tuple(config.policy_hidden), config.tanh_mean, config.log_std_min, config.log_std_max)


def _scan_train(config, data: OfflineData, init_fn, update_fn, evaluate, pi_of) -> Callable:
    """Shared driver: ``train_with_data(key, hp, data)`` = init, then ``gradient_steps // eval_every``
    segments of ``lax.scan(update)`` each followed by an evaluation."""
    num_evals = config.gradient_steps // config.eval_every

    def train_with_data(key, hp, data):
        k_init, k_eval = jax.random.split(key)
        state = init_fn(k_init, hp)

        def segment(state, k):
            state, info = jax.lax.scan(lambda s, _: update_fn(s, data, hp), state, None, length=config.eval_every)
            ret = evaluate(pi_of(state), data, k)
            return state, {"eval_return": ret, **jax.tree.map(lambda x: x[-1], info)}

        return jax.lax.scan(segment, state, jax.random.split(k_eval, num_evals))

    return train_with_data


# ============================================================================ BC


@struct.dataclass
class BCState:
    pi_params: Any
    pi_opt: Any
    key: jax.Array


def make_train_bc(config: BCConfig, dataset, env, env_params) -> Callable:
    """``train(key, hparams) -> (BCState, metrics)``; metrics ``eval_return``, ``pi_loss`` ``[num_evals]``."""
    _check(config, ("policy_hidden",))
    data = prepare_data(config, dataset, env, env_params)
    pi_net = _policy_net(config, data.actions.shape[1])
    evaluate = make_eval(config, env, env_params, pi_net)

    def init(key, hp):
        k_pi, k = jax.random.split(key)
        p = pi_net.init(k_pi, jnp.zeros((1, data.observations.shape[1])))
        return BCState(p, optax.scale_by_adam().init(p), k)

    def update(state: BCState, data: OfflineData, hp: BCHParams):
        key, k = jax.random.split(state.key)
        batch = sample_batch(data, k, config.batch_size)

        def loss_fn(p):
            mean, log_std = pi_net.apply(p, normalize(batch, batch.observations))
            return -gaussian_log_prob(mean, log_std, batch.actions).mean()

        loss, g = jax.value_and_grad(loss_fn)(state.pi_params)
        p, opt = adam_step(state.pi_params, g, state.pi_opt, hp.pi_lr, hp.pi_weight_decay)
        return BCState(p, opt, key), {"pi_loss": loss}

    train_with_data = _scan_train(config, data, init, update, evaluate, lambda s: s.pi_params)

    def train(key, hparams: BCHParams | None = None):
        return train_with_data(key, bc_default_hparams(config) if hparams is None else hparams, data)

    train.with_data, train.data, train.evaluate = train_with_data, data, evaluate
    return train


# ============================================================================ IQL


class TwinQ(TwinV):
    """Two Q heads on ``concat(s, a)`` (the TwinV module on a joint input)."""


def expectile_loss(diff: jax.Array, expectile) -> jax.Array:
    """``|tau - 1(diff < 0)| diff^2`` with ``diff = Q - V``."""
    w = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return w * diff**2


@struct.dataclass
class IQLState:
    q_params: Any
    qt_params: Any
    q_opt: Any
    v_params: Any
    v_opt: Any
    pi_params: Any
    pi_opt: Any
    key: jax.Array


def make_train_iql(config: IQLConfig, dataset, env, env_params) -> Callable:
    """``train(key, hparams) -> (IQLState, metrics)``; metrics ``eval_return``, ``q_loss``,
    ``v_loss``, ``pi_loss``, ``weight_mean`` ``[num_evals]``."""
    _check(config, ("hidden", "policy_hidden"))
    data = prepare_data(config, dataset, env, env_params)
    obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
    q_net = TwinQ(tuple(config.hidden), False, heads=2)
    v_net = TwinV(tuple(config.hidden), False, heads=1)
    pi_net = _policy_net(config, act_dim)
    evaluate = make_eval(config, env, env_params, pi_net)

    def init(key, hp):
        kq, kv, kp, k = jax.random.split(key, 4)
        q = q_net.init(kq, jnp.zeros((1, obs_dim + act_dim)))
        v = v_net.init(kv, jnp.zeros((1, obs_dim)))
        p = pi_net.init(kp, jnp.zeros((1, obs_dim)))
        adam = optax.scale_by_adam()
        return IQLState(q, q, adam.init(q), v, adam.init(v), p, adam.init(p), k)

    def update(state: IQLState, data: OfflineData, hp: IQLHParams):
        key, k = jax.random.split(state.key)
        batch = sample_batch(data, k, config.batch_size)
        s, s2 = normalize(batch, batch.observations), normalize(batch, batch.next_observations)
        sa = jnp.concatenate([s, batch.actions], -1)
        q_t = q_net.apply(state.qt_params, sa)[0].min(0)  # [B]

        def v_loss_fn(vp):
            return expectile_loss(q_t - v_net.apply(vp, s)[0][0], hp.expectile).mean()

        v_loss, gv = jax.value_and_grad(v_loss_fn)(state.v_params)
        v_params, v_opt = adam_step(state.v_params, gv, state.v_opt, hp.lr)
        target = batch.rewards + hp.gamma * (1.0 - batch.dones) * v_net.apply(v_params, s2)[0][0]

        def q_loss_fn(qp):
            return ((q_net.apply(qp, sa)[0] - target) ** 2).mean()

        q_loss, gq = jax.value_and_grad(q_loss_fn)(state.q_params)
        q_params, q_opt = adam_step(state.q_params, gq, state.q_opt, hp.lr)
        adv = q_t - v_net.apply(v_params, s)[0][0]
        w = jax.lax.stop_gradient(jnp.minimum(jnp.exp(hp.beta * adv), hp.weight_clip))

        def pi_loss_fn(pp):
            mean, log_std = pi_net.apply(pp, s)
            return -(w * gaussian_log_prob(mean, log_std, batch.actions)).mean()

        pi_loss, gp = jax.value_and_grad(pi_loss_fn)(state.pi_params)
        pi_params, pi_opt = adam_step(state.pi_params, gp, state.pi_opt, hp.lr, hp.pi_weight_decay)
        qt = ema(state.qt_params, q_params, hp.tau)
        new = IQLState(q_params, qt, q_opt, v_params, v_opt, pi_params, pi_opt, key)
        return new, {"q_loss": q_loss, "v_loss": v_loss, "pi_loss": pi_loss, "weight_mean": w.mean()}

    train_with_data = _scan_train(config, data, init, update, evaluate, lambda s: s.pi_params)

    def train(key, hparams: IQLHParams | None = None):
        return train_with_data(key, iql_default_hparams(config) if hparams is None else hparams, data)

    train.with_data, train.data, train.evaluate = train_with_data, data, evaluate
    return train
