"""N-PG-IGT, HARPG and N-HARPG (Fatkhullin, Barakat, Kireeva, He, ICML 2023).

Paper: "Stochastic Policy Gradient Methods: Improved Sample Complexity for Fisher-non-degenerate
Policies", ICML 2023 (arXiv 2302.01734); spec sheet ``shared/papers/pg_estimators.md`` §3.2-3.5.
All methods consume fixed-horizon episodes from the shared engine (``rollout_episodes``); the
policy, GPOMDP coefficients, estimators and the protocol bundle are in
:mod:`rlsuite.agents.pg_common`.  Protocol (:mod:`rlsuite.core.agent`): ``make`` -> ``Agent``
(one update = one iteration); registry names ``npg-igt``, ``harpg``, ``nharpg``
(``rlsuite train nharpg --env gymnax:CartPole-v1 --seeds 4``).

N-PG-IGT (normalised PG with implicit gradient transport), ``method='igt'``::

    t = 0 : d_0 = g(theta_0);  theta_1 = theta_0 + gamma_0 d_0 / ||d_0||
    t >= 1: theta~_t = theta_t + ((1 - eta_t) / eta_t) (theta_t - theta_{t-1})   # sample here
            d_t = (1 - eta_t) d_{t-1} + eta_t g(theta~_t)
            theta_{t+1} = theta_t + gamma_t d_t / ||d_t||
    gamma_t = gamma0 2/(t+2),  eta_t = eta0 (2/(t+2))^(4/5)

HARPG / N-HARPG (Hessian-aided recursive momentum), ``method='harpg'`` / ``'nharpg'``::

    t = 0 : d_0 = g(theta_0) on batches A and B together (both sampled at theta_0 = q_0)
    t >= 1: Delta_t = theta_t - theta_{t-1};  u ~ U[0,1];  q_t = u theta_t + (1-u) theta_{t-1}
            batch A at theta_t (N episodes), batch B at q_t (N_B episodes), independent
            v_t = mean_{tau in B} B(tau, q_t) Delta_t                       # per trajectory, HVP
            d_t = (1 - eta_t)(d_{t-1} + v_t) + eta_t g_A(theta_t)
            N-HARPG: theta_{t+1} = theta_t + gamma_t d_t / ||d_t||      HARPG: theta_t + gamma_t d_t
    eta_t = eta0 2/(t+2);  gamma_t = gamma0 2/(t+2) (N-HARPG), gamma0 (2/(t+2))^(1/2) (HARPG)

Choices and deviations (sheet §5 pitfalls are all followed):
- IGT extrapolates with ``eta_t`` (paper); ``igt_eta_lag=True`` uses ``eta_{t-1}`` for the
  extrapolation as the reference code does.
- The HVP is the sheet's per-trajectory score-function estimator (§3.4), computed with
  ``jax.jvp`` over ``jax.grad``; ``hvp_impl='fused'`` (default) evaluates
  ``mean_i g_i <score_i, Delta>`` as one gradient of ``mean_i s_i Phi_i`` (same value, O(P)
  memory); ``'vmap'`` is the literal ``vmap(hvp_one)`` recipe.  This unbiased estimator is the
  default (``hvp_estimator='per_trajectory'``); ``hvp_estimator='batch_mean'`` is the reference
  code's product of batch means ``g_bar <score_bar, Delta> + Hess(Phi_bar) Delta`` (pitfall §5.1:
  biased, the cross term vanishes as the batch grows; kept for comparison, with the right sign
  and per-trajectory scale, see :func:`pg_common.batch_hvp_mean`).
- Batches are counted in episodes: ``batch_episodes`` for the gradient, ``hessian_episodes`` for
  batch B (reference runner: 1000 and 32 steps -> 5 and 1 episodes at H = 200).  An iteration of
  (N-)HARPG samples ``batch_episodes + hessian_episodes`` episodes, IGT ``batch_episodes``.
- At ``t = 0`` (``Delta_0 = 0``, ``q_0 = theta_0``) the correction is zero, so batch B is a second
  gradient sample at ``theta_0`` and is *spent on the gradient*: ``d_0`` is the GPOMDP gradient of
  all ``batch_episodes + hessian_episodes`` episodes (the paper's ``d_0 = g(theta_0)`` with a
  larger batch; the linear baseline is refitted on batch A only).  Every iteration therefore
  samples, and uses, the same number of episodes, and ``trajectories`` counts exactly the episodes
  sampled.
- ``eta`` is forced to 1 at ``t = 0`` (so ``d_0`` is the plain gradient whatever ``eta0``).
- Returns are reported from separate evaluation episodes at ``theta_t``, never at ``theta~_t``
  or ``q_t`` (pitfall §5.4); the training metric ``episode_return`` is the mean return of the
  gradient batch (for IGT it was sampled at ``theta~_t``); ``env_steps`` counts both batches.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents import pg_common as pg
from rlsuite.agents.pg_common import PGHParams
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent
from rlsuite.core.agent import make_train as make_train_of

METHODS = ("igt", "harpg", "nharpg")
HVP_ESTIMATORS = ("per_trajectory", "batch_mean")

# --------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class NPGConfig(pg.PGCommonConfig):
    """N-PG-IGT / (N)-HARPG; shared fields documented in :class:`pg_common.PGCommonConfig`."""

    method: str = "nharpg"
    """'igt' (N-PG-IGT), 'harpg' (HARPG, unnormalised) or 'nharpg' (N-HARPG)."""
    hessian_episodes: int = 1
    """N_B: episodes of batch B for the HVP correction ((N-)HARPG only; paper: one trajectory)."""
    igt_eta_lag: bool = False
    """IGT only: extrapolate with eta_{t-1} (reference code) instead of eta_t (paper)."""
    hvp_impl: str = "fused"
    """(N-)HARPG only: 'fused' (O(P) memory) or 'vmap' (the sheet's literal per-trajectory vmap)."""
    hvp_estimator: str = "per_trajectory"
    """(N-)HARPG only: 'per_trajectory' (unbiased, sheet §3.4) or 'batch_mean' (the reference
    code's biased product of batch means, sheet pitfall §5.1); the two coincide when
    ``hessian_episodes == 1`` (a mean over one trajectory is that trajectory)."""


def default_hparams(config: NPGConfig, **overrides) -> PGHParams:
    """The reference code's schedules for ``config.method`` (sheet §3.2, §3.3), gamma0 = 0.1.

    ``overrides`` replace fields (``default_hparams(cfg, gamma0=0.3)``); leaves are float32.
    """
    V.choice(config, "method", METHODS)
    gp, ep = {"igt": (1.0, 0.8), "nharpg": (1.0, 1.0), "harpg": (0.5, 1.0)}[config.method]
    base = dict(gamma0=0.1, gamma_power=gp, eta0=1.0, eta_power=ep, discount=0.99)
    return pg.make_hparams(**{**base, **overrides})


Config, HParams = NPGConfig, PGHParams
HPARAM_RANGES = pg.HPARAM_RANGES
INERT = {
    "eval_every": "evaluation only (make_train's evaluation schedule)",
    "eval_episodes": "evaluation only",
    "init_log_std": "Gaussian policies only (Box actions); inert for Discrete actions",
    "hessian_episodes": "(N-)HARPG only; inert for method='igt'",
    "igt_eta_lag": "method='igt' only; inert for (N-)HARPG",
    "hvp_impl": "(N-)HARPG only, and the same estimator either way (equal to float32 rounding); "
    "inert with hvp_estimator='batch_mean'",
    "hvp_estimator": "(N-)HARPG only; inert for method='igt' and when hessian_episodes == 1",
}


@struct.dataclass
class NPGState:
    params: pg.Params  # theta_t
    prev_params: pg.Params  # theta_{t-1} (theta_0 at t = 0)
    direction: pg.Params  # d_{t-1}
    baseline: jax.Array  # linear-baseline weights [F]
    key: jax.Array
    t: jax.Array


# --------------------------------------------------------------------------------- update rules


def igt_point(theta: pg.Params, theta_prev: pg.Params, eta) -> pg.Params:
    """Transported point ``theta + ((1 - eta) / eta) (theta - theta_prev)`` (sheet §3.2)."""
    c = (1.0 - eta) / eta
    return jax.tree.map(lambda a, b: a + c * (a - b), theta, theta_prev)


def igt_momentum(d_prev: pg.Params, g: pg.Params, eta) -> pg.Params:
    """``(1 - eta) d_prev + eta g``."""
    return pg.tree_lerp(eta, d_prev, g)


def harpg_point(theta: pg.Params, theta_prev: pg.Params, u) -> pg.Params:
    """``q = u theta + (1 - u) theta_prev`` (sheet §3.3)."""
    return pg.tree_lerp(u, theta_prev, theta)


def harpg_momentum(d_prev: pg.Params, v: pg.Params, g: pg.Params, eta) -> pg.Params:
    """``(1 - eta)(d_prev + v) + eta g`` (STORM-type recursive momentum)."""
    return pg.tree_lerp(eta, jax.tree.map(jnp.add, d_prev, v), g)


# --------------------------------------------------------------------------------- make


def make(config: NPGConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`; one update = one iteration of
    ``config.method``.

    Metrics per iteration: ``env_steps`` / ``trajectories`` (IGT samples ``batch_episodes``
    episodes per iteration, (N-)HARPG ``batch_episodes + hessian_episodes``, all of them used:
    at ``t = 0`` batch B joins the gradient batch), ``episode_return`` / ``episodes`` (the
    gradient batch: ``batch_episodes``, or ``batch_episodes + hessian_episodes`` at ``t = 0`` of
    (N-)HARPG), ``grad_norm``, ``direction_norm`` (``||d_t||``),
    ``correction_norm`` ((N-)HARPG: ``||v_t||``; 0 for IGT), ``update_norm``; ``evaluate`` gives
    ``eval_return`` at ``theta_t``.
    """
    V.choice(config, "method", METHODS)
    pg.validate_common(config, env, env_params)
    V.positive_ints(config, "hessian_episodes")
    V.choice(config, "hvp_impl", ("fused", "vmap"))
    V.choice(config, "hvp_estimator", HVP_ESTIMATORS)
    policy = pg.make_policy(config, env, env_params)
    n_feat = pg.num_baseline_features(env, env_params)
    n, n_b = config.batch_episodes, config.hessian_episodes
    use_baseline = config.baseline == "linear"
    if config.hvp_estimator == "batch_mean":
        hvp = pg.batch_hvp_mean
    else:
        hvp = pg.batch_hvp if config.hvp_impl == "fused" else pg.batch_hvp_vmap
    normalize = config.method in ("igt", "nharpg")
    per_iteration = n if config.method == "igt" else n + n_b

    def grad_at(params, key, baseline, hp):
        traj = pg.sample(config, env, env_params, policy, params, key, n)
        coef, new_baseline = pg.gpomdp_coefficients(
            traj, hp.discount, config.discount_from, use_baseline, baseline
        )
        return (
            pg.batch_gradient(policy.log_prob, params, traj, coef),
            new_baseline,
            traj.episode_return.mean(),
        )

    def igt_iteration(state: NPGState, hp: PGHParams, k_a, eta_t):
        eta_x = eta_t
        if config.igt_eta_lag:
            eta_x = jnp.where(state.t <= 1, 1.0, pg.schedule(hp.eta0, hp.eta_power, state.t - 1))
        theta_tilde = igt_point(state.params, state.prev_params, eta_x)
        g, baseline, ret = grad_at(theta_tilde, k_a, state.baseline, hp)
        return igt_momentum(state.direction, g, eta_t), g, baseline, ret, 0.0

    def harpg_iteration(state: NPGState, hp: PGHParams, k_a, k_b, k_u, eta_t):
        g_a, baseline, ret_a = grad_at(state.params, k_a, state.baseline, hp)
        delta = jax.tree.map(jnp.subtract, state.params, state.prev_params)
        q = harpg_point(state.params, state.prev_params, jax.random.uniform(k_u))
        traj_b = pg.sample(config, env, env_params, policy, q, k_b, n_b)
        coef_b, _ = pg.gpomdp_coefficients(
            traj_b, hp.discount, config.discount_from, use_baseline, state.baseline
        )
        v = hvp(policy.log_prob, q, delta, traj_b, coef_b)
        # t = 0: Delta = 0 and q = theta_0, so v = 0 and batch B is spent on the gradient:
        # g = gradient of the n + n_b episodes together (a weighted mean of the two batch means).
        w_b = jnp.where(state.t == 0, n_b / (n + n_b), 0.0)
        g_b = pg.batch_gradient(policy.log_prob, q, traj_b, coef_b)
        g = pg.tree_lerp(w_b, g_a, g_b)
        ret = (1.0 - w_b) * ret_a + w_b * traj_b.episode_return.mean()
        d = harpg_momentum(state.direction, v, g, eta_t)
        return d, g, baseline, ret, optax.global_norm(v)

    def init(key: jax.Array, hp: PGHParams) -> NPGState:
        k_init, k_train, _ = jax.random.split(key, 3)  # third key: the old evaluation stream
        params = policy.init(k_init)
        zeros = jax.tree.map(jnp.zeros_like, params)
        return NPGState(params, params, zeros, jnp.zeros((n_feat,)), k_train, jnp.zeros((), jnp.int32))

    def update(state: NPGState, hp: PGHParams):
        key, k_a, k_b, k_u = jax.random.split(state.key, 4)  # k_a: same stream as reinforce.py
        eta_t = jnp.where(state.t == 0, 1.0, pg.schedule(hp.eta0, hp.eta_power, state.t))
        gamma_t = pg.schedule(hp.gamma0, hp.gamma_power, state.t)
        if config.method == "igt":
            d, g, baseline, ret, v_norm = igt_iteration(state, hp, k_a, eta_t)
        else:
            d, g, baseline, ret, v_norm = harpg_iteration(state, hp, k_a, k_b, k_u, eta_t)
        step = pg.normalized(d) if normalize else d
        params = pg.tree_axpy(gamma_t, step, state.params)
        new = NPGState(params, state.params, d, baseline, key, state.t + 1)
        metrics = {
            **pg.counters(new.t, per_iteration, config.horizon),
            "episode_return": ret,
            "episodes": jnp.where(
                (state.t == 0) & (config.method != "igt"), per_iteration, n
            ).astype(jnp.int32),
            "grad_norm": optax.global_norm(g),
            "direction_norm": optax.global_norm(d),
            "correction_norm": jnp.asarray(v_norm, jnp.float32),
            "update_norm": jnp.abs(gamma_t) * optax.global_norm(step),
        }
        return new, metrics

    return pg.make_agent(config, env, env_params, policy, init, update, per_iteration)


def make_train(config: NPGConfig, env, env_params):
    """``train(key, hparams) -> (NPGState, metrics)``; jittable, vmappable over keys and hparams.

    :func:`rlsuite.core.agent.make_train` of :func:`make` with ``eval_every=config.eval_every``:
    per-iteration metrics ``[num_iterations]`` plus ``eval_return`` and ``eval_update``
    ``[num_iterations / eval_every + 1]`` (at theta_0, theta_eval_every, ...).
    """
    agent = make(config, env, env_params)
    return make_train_of(agent, eval_every=pg.check_eval_every(config))


validate = pg.validate_config  # the env-free checks the runner runs before it builds the env
