"""Offline baselines for O-DICE: behaviour cloning (BC) and Implicit Q-Learning (IQL).

- BC: maximum likelihood of the dataset actions under the same Gaussian policy as O-DICE.
- IQL: Kostrikov, Nair, Levine, "Offline Reinforcement Learning with Implicit Q-Learning",
  ICLR 2022.  Expectile regression of V on twin-Q targets (``tau = 0.7``), Q regression on
  ``r + gamma (1 - done) V(s')``, EMA target Q (min of the two heads), advantage-weighted
  regression for the policy with ``w = min(exp(beta (Q - V)), 100)``, ``beta = 3``
  (the IQL locomotion settings).

Both share O-DICE's data pipeline (:func:`rlsuite.data.offline.prepare_data`: D4RL ``qlearning``
semantics, locomotion reward scaling, actions in ``[-1, 1]``), policy network, Adam(W) step and
engine-based evaluation, and the agent protocol (:mod:`rlsuite.core.agent`):
``make(config, env, env_params, data) -> Agent`` dispatches on the config type (:class:`BCConfig`
or :class:`IQLConfig`; registry names ``bc`` and ``iql``), one update = one gradient step on
``batch_size`` transitions, metrics ``samples``, ``loss/pi`` (BC), ``loss/q``, ``loss/v``,
``loss/pi``, ``weight_mean`` (IQL), ``pi_log_std``; ``evaluate`` as O-DICE's (``eval_return``,
``eval_normalized_score`` with the dataset's references).  ``make_from_prepared(config, env,
env_params, prepared, refs)`` takes an :class:`~rlsuite.data.offline.OfflineData` (possibly
traced: pass large datasets into ``jit`` as arguments, vmap over datasets), as in O-DICE.

Deviations: IQL's policy uses O-DICE's Gaussian policy (configurable sizes; the IQL paper uses
2x256 with a cosine learning-rate schedule for the actor, which we do not apply, and a
state-independent log-std as here); the learning rates are the IQL paper's 3e-4.
- **No tanh on IQL's policy mean by default** (``IQLConfig.tanh_mean=False``).  The IQL reference
  implementation's Gaussian actor applies ``tanh`` to its mean; we keep the mean unsquashed so
  that BC, IQL and O-DICE's offline-RL policy (sheet §3: no tanh for RL) are the same network, and
  rely on the action clip to ``[-1, 1]`` at acting time instead.  ``tanh_mean=True``
  follows the reference; the published tables (``results/odice``) use the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents.odice import (
    GaussianPolicy,
    TwinV,
    adam_step,
    check_counter,
    ema,
    gaussian_log_prob,
    make_eval,
)
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.data import offline
from rlsuite.data.dataset import Dataset
from rlsuite.data.offline import REWARD_SCALES, OfflineData, sample_batch

# ============================================================================ configs


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning (static settings)."""

    gradient_steps: int = 1_000_000
    """Total gradient steps = updates of a full run."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations in ``make_train``; must divide ``gradient_steps``."""
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


@dataclass(frozen=True)
class IQLConfig:
    """Implicit Q-Learning (static settings)."""

    gradient_steps: int = 1_000_000
    """Total gradient steps = updates of a full run."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations in ``make_train``; must divide ``gradient_steps``."""
    eval_episodes: int = 10
    """Episodes per evaluation (mean action)."""
    eval_horizon: int = 0
    """0 = the env's ``max_steps_in_episode``."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden sizes of each Q head and of V."""
    policy_hidden: tuple[int, ...] = (1024, 1024)
    """Hidden sizes of the policy mean MLP (O-DICE's, for a like-for-like comparison)."""
    tanh_mean: bool = False
    """tanh on the policy mean (the IQL reference: on; default off, a documented deviation)."""
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


Config, HParams = BCConfig, BCHParams  # the registry names the classes: bc -> BCConfig, iql -> IQLConfig
HPARAM_RANGES = {  # BC and IQL fields; documented valid ranges, checked by rlsuite.core.validate.check_ranges
    "pi_lr": V.POSITIVE, "pi_weight_decay": V.NONNEG, "expectile": V.UNIT_OPEN, "beta": V.NONNEG,
    "gamma": V.DISCOUNT, "tau": V.RATE, "lr": V.POSITIVE, "weight_clip": V.POSITIVE_OR_INF,
}

INERT = {
    "eval_every": "evaluation only (make_train's evaluation cadence; the agent's updates ignore it)",
    "eval_episodes": "evaluation only",
    "eval_horizon": "evaluation only",
}


def _hparams(cls, defaults: dict, overrides: dict):
    bad = set(overrides) - set(defaults)
    if bad:
        raise ValueError(f"unknown {cls.__name__} field(s) {sorted(bad)}; known: {sorted(defaults)}")
    return cls(**{k: jnp.asarray(v, jnp.float32) for k, v in {**defaults, **overrides}.items()})


def bc_default_hparams(config: BCConfig | None = None, **overrides) -> BCHParams:
    return _hparams(BCHParams, dict(pi_lr=2e-4, pi_weight_decay=1e-4), overrides)


def iql_default_hparams(config: IQLConfig | None = None, **overrides) -> IQLHParams:
    defaults = dict(expectile=0.7, beta=3.0, gamma=0.99, tau=0.005, lr=3e-4, pi_weight_decay=0.0, weight_clip=100.0)
    return _hparams(IQLHParams, defaults, overrides)


def default_hparams(config: BCConfig | IQLConfig, **overrides):
    """The defaults of ``config``'s algorithm (BC or IQL)."""
    if isinstance(config, IQLConfig):
        return iql_default_hparams(config, **overrides)
    if isinstance(config, BCConfig):
        return bc_default_hparams(config, **overrides)
    raise ValueError(f"expected a BCConfig or IQLConfig, got {type(config).__name__}")


def validate(config: BCConfig | IQLConfig) -> None:
    V.positive_ints(config, "gradient_steps", "batch_size", "eval_every", "eval_episodes")
    V.require_nonneg_int(f"{type(config).__name__}.eval_horizon", config.eval_horizon)
    V.sizes(config, "policy_hidden")
    check_counter(config)
    if isinstance(config, IQLConfig):
        V.sizes(config, "hidden")
        V.positive_ints(config, "max_episode_steps")
        V.choice(config, "reward_scale", REWARD_SCALES)
    elif not isinstance(config, BCConfig):
        raise ValueError(f"expected a BCConfig or IQLConfig, got {type(config).__name__}")


def prepare(config: BCConfig | IQLConfig, data: Dataset, env, env_params) -> OfflineData:
    """The prepared :class:`OfflineData` of ``data`` for ``config`` (host side)."""
    validate(config)
    iql = isinstance(config, IQLConfig)
    return offline.prepare_data(
        data, env, env_params, reward_scale=config.reward_scale if iql else "none",
        max_episode_steps=config.max_episode_steps if iql else 1000,
        drop_timeouts=config.drop_timeouts, normalize_states=config.normalize_states,
    )


def _policy_net(config, action_dim: int) -> GaussianPolicy:
    return GaussianPolicy(action_dim, tuple(config.policy_hidden), config.tanh_mean, config.log_std_min, config.log_std_max)


def _log_std(config, pi_params):
    return jnp.clip(pi_params["params"]["log_std"], config.log_std_min, config.log_std_max).mean()


# ============================================================================ BC


@struct.dataclass
class BCState:
    pi_params: Any
    pi_opt: Any
    key: jax.Array
    step: jax.Array


def _make_bc(config: BCConfig, env, env_params, data: OfflineData, refs) -> Agent:
    pi_net = _policy_net(config, data.actions.shape[1])
    eval_fn = make_eval(config, env, env_params, pi_net, refs)

    def init(key, hp):
        k_init, _ = jax.random.split(key)  # the pre-protocol layout (2nd: evaluation)
        k_pi, k = jax.random.split(k_init)
        p = pi_net.init(k_pi, jnp.zeros((1, data.observations.shape[1])))
        return BCState(p, optax.scale_by_adam().init(p), k, jnp.zeros((), jnp.int32))

    def update(state: BCState, hp: BCHParams):
        key, k = jax.random.split(state.key)
        batch = sample_batch(data, k, config.batch_size)

        def loss_fn(p):
            mean, log_std = pi_net.apply(p, batch.normalize(batch.observations))
            return -gaussian_log_prob(mean, log_std, batch.actions).mean()

        loss, g = jax.value_and_grad(loss_fn)(state.pi_params)
        p, opt = adam_step(state.pi_params, g, state.pi_opt, hp.pi_lr, hp.pi_weight_decay)
        new = BCState(p, opt, key, state.step + 1)
        return new, {"samples": new.step * config.batch_size, "loss/pi": loss, "pi_log_std": _log_std(config, p)}

    def evaluate(state: BCState, key):
        return eval_fn(state.pi_params, data, key)

    return Agent(init, scan_segment(update), evaluate, config.gradient_steps, config.batch_size, counter="samples")


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
    step: jax.Array


def _make_iql(config: IQLConfig, env, env_params, data: OfflineData, refs) -> Agent:
    obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
    q_net = TwinQ(tuple(config.hidden), False, heads=2)
    v_net = TwinV(tuple(config.hidden), False, heads=1)
    pi_net = _policy_net(config, act_dim)
    eval_fn = make_eval(config, env, env_params, pi_net, refs)

    def init(key, hp):
        k_init, _ = jax.random.split(key)  # the pre-protocol layout (2nd: evaluation)
        kq, kv, kp, k = jax.random.split(k_init, 4)
        q = q_net.init(kq, jnp.zeros((1, obs_dim + act_dim)))
        v = v_net.init(kv, jnp.zeros((1, obs_dim)))
        p = pi_net.init(kp, jnp.zeros((1, obs_dim)))
        adam = optax.scale_by_adam()
        return IQLState(q, q, adam.init(q), v, adam.init(v), p, adam.init(p), k, jnp.zeros((), jnp.int32))

    def update(state: IQLState, hp: IQLHParams):
        key, k = jax.random.split(state.key)
        batch = sample_batch(data, k, config.batch_size)
        s, s2 = batch.normalize(batch.observations), batch.normalize(batch.next_observations)
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
        new = IQLState(q_params, qt, q_opt, v_params, v_opt, pi_params, pi_opt, key, state.step + 1)
        return new, {
            "samples": new.step * config.batch_size, "loss/q": q_loss, "loss/v": v_loss, "loss/pi": pi_loss,
            "weight_mean": w.mean(), "pi_log_std": _log_std(config, pi_params),
        }

    def evaluate(state: IQLState, key):
        return eval_fn(state.pi_params, data, key)

    return Agent(init, scan_segment(update), evaluate, config.gradient_steps, config.batch_size, counter="samples")


# ============================================================================ protocol


def make_from_prepared(config: BCConfig | IQLConfig, env, env_params, prepared: OfflineData,
                       refs: tuple[float, float] | None = None) -> Agent:
    """The Agent around already prepared (possibly traced) data; see the module docstring."""
    validate(config)
    if isinstance(config, IQLConfig):
        return _make_iql(config, env, env_params, prepared, refs)
    return _make_bc(config, env, env_params, prepared, refs)


def make(config: BCConfig | IQLConfig, env, env_params, data: Dataset) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` of BC or IQL (by config type) on ``data``."""
    return make_from_prepared(config, env, env_params, prepare(config, data, env, env_params), offline.references(data))


def make_train(config: BCConfig | IQLConfig, env, env_params, data: Dataset) -> Callable:
    """``train(key, hparams) -> (state, metrics)``: :func:`rlsuite.core.agent.make_train` of
    :func:`make` with ``eval_every=config.eval_every``."""
    return make_train_of(make(config, env, env_params, data), eval_every=config.eval_every)
