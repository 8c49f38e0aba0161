"""Vanilla policy gradient (REINFORCE / GPOMDP), the baseline of Fatkhullin et al. (ICML 2023).

Paper: Fatkhullin, Barakat, Kireeva, He, "Stochastic Policy Gradient Methods: Improved Sample
Complexity for Fisher-non-degenerate Policies", ICML 2023; spec sheet
``shared/papers/pg_estimators.md`` §3.1.

Algorithm (one batch of ``N`` fixed-horizon episodes per iteration, at ``theta_t``)::

    g_t = (1/N) sum_i sum_t m_t (R_t - b_t) grad log pi(a_t | s_t)     R_t = sum_{h>=t} gamma^h r_h
    'sgd'   : theta_{t+1} = theta_t + gamma_t g_t                         gamma_t = gamma0 (2/(t+2))^(2/3)
    'nsgdm' : d_t = (1 - eta_t) d_{t-1} + eta_t g_t;  theta_{t+1} = theta_t + gamma_t d_t / ||d_t||

``normalized=True`` is the reference code's ``nsgdm`` variant (d_0 = g_0); with ``eta = 1`` it is
normalised PG, to which N-PG-IGT reduces (tests).  **Default: no momentum.**
:func:`default_hparams` sets ``eta0 = 1, eta_power = 0`` (``eta_t = 1`` for every ``t``, the sheet
gives no ``nsgdm`` momentum schedule), so ``normalized=True`` with default hparams is plain
normalised PG, ``d_t = g_t``; pass e.g. ``eta0=0.5`` or ``eta_power=0.8`` (IGT's schedule shape) to
switch the momentum on.  Shared pieces (policy, baseline, estimators,
the protocol bundle) are in :mod:`rlsuite.agents.pg_common`.

Protocol (:mod:`rlsuite.core.agent`): ``make(config, env, env_params)`` -> ``Agent`` (one update =
one iteration, ``num_updates = num_iterations``); ``make_train`` adds the evaluations every
``eval_every`` iterations.  ``rlsuite train reinforce --env gymnax:CartPole-v1 --seeds 4``.

Deviations from the sheet:
- batch size in episodes, not steps (``N = ceil(steps / H)``, sheet §4);
- the linear baseline is fitted on the previous batch (see ``pg_common``); ``baseline='none'``
  gives the paper's ``b_t = 0``;
- evaluation uses separate episodes at ``theta_t`` (not counted as samples).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents import pg_common as pg
from rlsuite.agents.pg_common import PGHParams
from rlsuite.core.agent import Agent
from rlsuite.core.agent import make_train as make_train_of

# --------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class ReinforceConfig(pg.PGCommonConfig):
    """Vanilla PG; shared fields documented in :class:`rlsuite.agents.pg_common.PGCommonConfig`."""

    normalized: bool = False
    """False: plain SGD step (paper's Vanilla-PG); True: normalised step with momentum ('nsgdm');
    the default hparams have eta = 1, i.e. no momentum (set eta0 < 1 or eta_power > 0)."""


def default_hparams(config: ReinforceConfig, **overrides) -> PGHParams:
    """Reference-code schedules: 'sgd' gamma_t = 0.1 (2/(t+2))^(2/3); 'nsgdm' gamma ~ 1/t, eta = 1
    (eta = 1 means no momentum: ``d_t = g_t``; override ``eta0`` / ``eta_power`` for momentum).

    ``overrides`` replace fields (``default_hparams(cfg, gamma0=0.01)``); leaves are float32.
    """
    gamma_power = 1.0 if config.normalized else 2.0 / 3.0
    base = dict(gamma0=0.1, gamma_power=gamma_power, eta0=1.0, eta_power=0.0, discount=0.99)
    return pg.make_hparams(**{**base, **overrides})


Config, HParams = ReinforceConfig, PGHParams
HPARAM_RANGES = pg.HPARAM_RANGES
INERT = {
    "eval_every": "evaluation only (make_train's evaluation schedule)",
    "eval_episodes": "evaluation only",
    "init_log_std": "Gaussian policies only (Box actions); inert for Discrete actions",
    "hp.eta0": "momentum weight: normalized=True only (the 'sgd' step has no momentum)",
    "hp.eta_power": "momentum schedule: normalized=True only",
}


@struct.dataclass
class ReinforceState:
    params: pg.Params
    direction: pg.Params  # momentum d_t ('nsgdm'; equals the last gradient for 'sgd')
    baseline: jax.Array  # linear-baseline weights [F]
    key: jax.Array
    t: jax.Array


# --------------------------------------------------------------------------------- update


def make(config: ReinforceConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`; one update = one iteration on a batch of
    ``batch_episodes`` episodes at ``theta_t``.

    Metrics per iteration: ``env_steps``, ``trajectories``, ``episode_return`` / ``episodes`` (the
    gradient batch), ``grad_norm``, ``update_norm``; ``evaluate`` gives ``eval_return`` at
    ``theta_t`` (see :func:`pg_common.make_agent`).
    """
    pg.validate_common(config, env, env_params)
    policy = pg.make_policy(config, env, env_params)
    n_feat = pg.num_baseline_features(env, env_params)
    n = config.batch_episodes

    def init(key: jax.Array, hp: PGHParams) -> ReinforceState:
        k_init, k_train, _ = jax.random.split(key, 3)  # third key: the old evaluation stream
        params = policy.init(k_init)
        zeros = jax.tree.map(jnp.zeros_like, params)
        return ReinforceState(params, zeros, jnp.zeros((n_feat,)), k_train, jnp.zeros((), jnp.int32))

    def update(state: ReinforceState, hp: PGHParams):
        key, k_a, _, _ = jax.random.split(state.key, 4)  # same key layout as npg.py
        traj = pg.sample(config, env, env_params, policy, state.params, k_a, n)
        coef, baseline = pg.gpomdp_coefficients(
            traj, hp.discount, config.discount_from, config.baseline == "linear", state.baseline
        )
        g = pg.batch_gradient(policy.log_prob, state.params, traj, coef)
        gamma_t = pg.schedule(hp.gamma0, hp.gamma_power, state.t)
        if config.normalized:
            eta_t = jnp.where(state.t == 0, 1.0, pg.schedule(hp.eta0, hp.eta_power, state.t))
            d = pg.tree_lerp(eta_t, state.direction, g)
            step = pg.normalized(d)
        else:
            d = step = g
        params = pg.tree_axpy(gamma_t, step, state.params)
        new = ReinforceState(params, d, baseline, key, state.t + 1)
        metrics = {
            **pg.counters(new.t, n, config.horizon),
            "episode_return": traj.episode_return.mean(),
            "episodes": jnp.asarray(n, jnp.int32),
            "grad_norm": optax.global_norm(g),
            "update_norm": jnp.abs(gamma_t) * optax.global_norm(step),
        }
        return new, metrics

    return pg.make_agent(config, env, env_params, policy, init, update, n)


def make_train(config: ReinforceConfig, env, env_params):
    """``train(key, hparams) -> (ReinforceState, metrics)``; jittable, vmappable over keys and hparams.

    :func:`rlsuite.core.agent.make_train` of :func:`make` with ``eval_every=config.eval_every``:
    per-iteration metrics ``[num_iterations]`` plus ``eval_return`` and ``eval_update``
    ``[num_iterations / eval_every + 1]`` (at theta_0, theta_eval_every, ...).
    """
    agent = make(config, env, env_params)
    return make_train_of(agent, eval_every=pg.check_eval_every(config))


validate = pg.validate_config  # the env-free checks the runner runs before it builds the env
