"""Martingale policy evaluation in continuous time: ML, MOC -> TD(0)/TD(lambda), LSTD, GTD, MSTDE.

Jia & Zhou, "Policy Evaluation and Temporal-Difference Learning in Continuous Time and Space: A
Martingale Approach", JMLR 23(154), 2022 (arXiv 2108.06655); sheet ``shared/papers/martingale.md``.

The value ``J(t, x)`` of a fixed policy is characterised by ``M_t = e^{-beta t} J(t, X_t) +
int_0^t e^{-beta s} r_s ds`` being a martingale.  Paths are sampled on the grid ``t_k = k dt`` by the
engine's :func:`rlsuite.core.rollout.rollout_episodes` (the policy is fixed, so learning "online"
means scanning the learner along already-sampled paths: the result is identical).  The env
convention of :mod:`rlsuite.envs.diffusion` is assumed: reward ``R_k = r_k dt`` (+ ``e^{-beta dt}
h(X_K)`` on the terminal step), observation ``[x, t, T - t]``, per-step discount ``gamma = e^{-beta dt}``.
With it the local martingale increment (sheet §2) is the classical TD error

    delta_k = R_k + gamma (1 - terminated_k) J(X_{k+1}) - J(X_k).

Methods (``config.method``), each written as a discretisation of a continuous-time quantity so that
a per-path step size means the same for every ``dt`` (sheet §6):

- ``"ml"``  martingale loss ``1/2 sum_k e^{-2 beta t_k} (G_k - J_k)^2 dt`` (offline; closed form
  for linear values, or SGD on whole paths);
- ``"td0"`` MOC with test function ``xi = dJ/dtheta``: ``theta += lr sum_k xi_k delta_k`` (online:
  one update per time step; offline: one update per batch of whole paths);
- ``"tdlambda"`` trace ``e_k = lambda^dt e_{k-1} + xi_k dt``, ``theta += lr e_k delta_k``;
- ``"lstd"`` the MOC with ``xi = phi`` solved in closed form (linear values only);
- ``"gtd"`` minimise ``1/2 g^T A g``, ``g = E sum_k xi_k delta_k``, with a fast estimate ``w`` of
  ``A g`` (GTD2 form of sheet §5); ``A = (E int xi xi^T dt)^{-1}`` or ``A = I``;
- ``"mstde"`` the baseline the paper warns against: minimise ``sum_k e^{-2 beta t_k} delta_k^2 / dt``.

Value parameterisations (``config.value``): ``"linear"`` (``theta^T phi`` with the env's
``features``), ``"parametric"`` (the env's small parametric family, e.g. ``x^p e^{theta (T-t)}`` for
GBM) and ``"mlp"`` (a flax MLP on the observation).  Parameters are kept as one flat vector, so
every update is matrix-free: ``sum_k xi_k c_k`` is one ``vjp`` of ``J`` and ``xi_k^T w`` one ``jvp``.

The agent protocol (:mod:`rlsuite.core.agent`; ``rlsuite train martingale --env diffusion:ou``):
:func:`make` returns an ``Agent`` whose one update samples one batch of ``num_paths`` paths
(``num_updates = num_iterations``).  Iterative methods take one SGD step (offline) or one online
pass (online) per batch; the closed-form methods (LSTD, ML / MSTDE with ``solver="closed_form"``)
add the batch's statistics to running sums ``G, c`` kept in the state and re-solve ``theta``, so a
run can be checkpointed between batches and resumed, and ``theta`` after all ``num_iterations``
batches is the one-shot solution of the pooled statistics.  Metrics per update: ``env_steps``
(``num_paths x T/dt`` per update), ``mean_sq_td`` (``mean_n sum_k delta_k^2 / dt`` on the batch at
the updated parameters), ``theta_norm``, ``residual`` (closed form: relative residual of the solved
system), ``loss/ml`` / ``loss/mstde`` (the objective of those methods on the batch).  There is no
return to maximise: ``evaluate`` reports ``eval_value_error``, the relative L2 error of the
reported (Polyak-averaged) value against the env's closed-form ``value`` on its state grid
(``Agent.score``, lower is better).  A task without a closed form gets ``eval_mean_sq_td`` on a
fresh batch of ``num_paths`` paths at the env's ``dt`` instead.

``make_train(config, env, env_params) -> train(key, hparams)`` (= ``core.agent.make_train(make(...))``)
is jittable and vmappable over keys and over ``hparams`` (``lr``, ``lr_w``, ``lr_decay``, ``lam``,
``dt``).  ``dt`` is an hparam: every run scans ``config.num_steps`` (default ``T / env_params.dt``)
steps and the env ends each path at its own ``K = T / dt``, so a ``vmap`` over ``dt`` works as long as
every ``dt >= T / num_steps``.  ``dt = 0`` (what ``default_hparams(config)`` gives when it is not told
the env) means "the env's own ``env_params.dt``", so the protocol's ``default_hparams(config)`` works
for any diffusion task.  A dt finer than the grid, a non-positive dt or any non-finite hparam gives
NaN parameters (so non-finite metrics from the first update); :func:`default_hparams` and eager
``init`` calls check a concrete dt.

Deviations / choices (the sheet leaves them open):
- TD(0)/TD(lambda)/GTD use the local error ``delta_k = e^{beta t_k} Delta M_k`` (test function
  ``e^{beta t} dJ/dtheta``, still adapted), as the sheet recommends against underflow; ML and
  MSTDE keep the sheet's global weights ``e^{-2 beta t_k}``.
- Online learners average each step's update over the ``num_paths`` parallel paths.
- Step sizes follow ``lr_j = lr / (1 + j)^lr_decay`` over iterations ``j``; the reported
  parameters are Polyak averages over the last ``average_tail`` fraction of iterations.
- GTD with ``A = I`` is offline only; the paper's exact GTD variant is not in the sheet.
- LSTD uses ``lstsq`` (the MOC matrix is not symmetric); ML/MSTDE closed forms solve their
  normal equations by Cholesky with a tiny ``ridge``.  Their float32 statistics are reduced over
  paths first, then over time (checked against float64 numpy to ~1e-5 with 6e5 terms), and summed
  over batches in the state.
- The reward is the env's left-point ``r(X_k) dt``: together with the scheme, all methods carry an
  O(dt) discretisation bias (measured rate ~1, see ``results/martingale``); the sheet does not
  state the paper's rate.
- ML's ``e^{-2 beta t}`` weight makes late times nearly free in the objective; for a flexible (MLP)
  value this leaves ``J`` poorly fit near ``T`` when ``beta T`` is large.
- The paper's portfolio / ergodic LQ examples (policy optimisation follow-ups) are not implemented.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.core.networks import MLP
from rlsuite.core.returns import discounted_returns
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs.timegrid import check_dt, zero_policy

METHODS = ("ml", "td0", "tdlambda", "lstd", "gtd", "mstde")
VALUES = ("linear", "parametric", "mlp")

# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class MartingaleConfig:
    """Static configuration (shapes, method choices)."""

    method: str = "lstd"
    """ml | td0 | tdlambda | lstd | gtd | mstde."""
    value: str = "linear"
    """linear (env features) | parametric (env's parametric family) | mlp (flax MLP on obs)."""
    mode: str = "offline"
    """td0 / tdlambda / gtd: online (one update per time step) or offline (per batch of paths)."""
    solver: str = "closed_form"
    """ml / mstde with a linear value: closed_form (normal equations) or sgd."""
    num_paths: int = 1000
    """Paths per batch (sampled in parallel through rollout_episodes)."""
    num_iterations: int = 1
    """Batches of ``num_paths`` paths (= the agent's updates). Closed form: statistics summed over all
    batches (total paths = num_paths x num_iterations; batches bound memory); SGD: one update
    (offline) or one online pass per batch, so SGD methods need many (e.g. 60-400)."""
    num_steps: int | None = None
    """Scan length (max K); None: T / env_params.dt. Every dt used must satisfy T/dt <= num_steps."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden sizes (value='mlp')."""
    optimizer: str = "sgd"
    """sgd | adam (update direction scaled by lr_j)."""
    average_tail: float = 0.5
    """Fraction of final iterations over which parameters are Polyak-averaged (0: last iterate)."""
    gtd_metric: str = "inverse"
    """GTD quadratic form: inverse (A = (E int xi xi^T dt)^-1, GTD2) or identity (A = I, offline)."""
    ridge: float = 1e-6
    """Tikhonov term (relative to the trace) for closed-form solves."""
    beta: float | None = None
    """Discount rate; None: env_params.beta."""


@struct.dataclass
class MartingaleHParams:
    """Numeric hyper-parameters (a pytree: vmap over them)."""

    lr: jax.Array  # per-path step size
    lr_w: jax.Array  # GTD fast step size
    lr_decay: jax.Array  # exponent p in lr / (1 + j)^p
    lam: jax.Array  # TD(lambda) decay per unit time
    dt: jax.Array  # time step; 0: the env's own env_params.dt


Config, HParams = MartingaleConfig, MartingaleHParams
HPARAM_RANGES = {  # documented valid ranges (dt = 0: the env's own dt), checked by validate.check_ranges
    "lr": V.NONNEG, "lr_w": V.NONNEG, "lr_decay": V.NONNEG, "lam": V.NONNEG, "dt": V.NONNEG,
}

_CLOSED = "the closed-form methods (lstd; ml / mstde with solver='closed_form' and value='linear')"
INERT = {
    # each of these acts only for some methods (tests/test_martingale.py checks each one there)
    "num_steps": "scan capacity only: steps past a path's K = T/dt are masked (and use no keys), so "
    "any num_steps >= T/dt gives the same result, except online + adam (masked steps still move "
    "adam's moments); it bounds the finest dt of a vmap over dt",
    "solver": "only ml / mstde with value='linear' (closed_form vs sgd)",
    "hidden": "only value='mlp'",
    "optimizer": f"only the iterative methods, not {_CLOSED}",
    "average_tail": f"only the iterative methods, not {_CLOSED}",
    "gtd_metric": "only method='gtd'",
    "ridge": f"only {_CLOSED}",
    "hp.lr": f"only the iterative methods, not {_CLOSED}",
    "hp.lr_decay": f"only the iterative methods, not {_CLOSED}",
    "hp.lr_w": "only method='gtd'",
    "hp.lam": "only method='tdlambda'",
}
"""Knobs that act only for some methods: ``{field or 'hp.name': when it acts}``."""


def default_hparams(
    config: MartingaleConfig, env_params=None, dt: float | None = None, **overrides
) -> MartingaleHParams:
    """Per-path step sizes that work on the diffusion tasks for dt in [0.001, 0.1] (per-method:
    ML's objective carries a ``dt`` factor, MSTDE's a ``1/dt`` one).

    ``dt``: the time step (an hparam, so a ``vmap`` over it is one program).  Without ``dt``:
    ``env_params.dt`` when ``env_params`` is given, else ``0.0``, which the agent reads as "the
    env's own ``env_params.dt``" (so the protocol's ``default_hparams(config)`` fits any task).
    A given ``dt`` is validated (positive; with ``env_params``: divides ``T`` and fits the
    ``num_steps`` grid).  Raises ``ValueError`` for an invalid ``dt`` or an unknown override."""
    if dt is None:
        dt = 0.0 if env_params is None else float(env_params.dt)
    elif env_params is None:
        V.require_positive("dt", dt)
    if env_params is not None:
        k = check_dt(dt, env_params.horizon)
        k_max = _num_steps(config, env_params)
        if k > k_max:
            raise ValueError(f"dt={dt} needs {k} steps but config.num_steps={k_max}; raise num_steps")
    lr = (
        {"ml": 0.5, "mstde": 0.002, "td0": 0.2, "gtd": 0.2, "tdlambda": 0.2}[config.method]
        if config.method != "lstd"
        else 0.0
    )
    if config.value == "mlp" and config.optimizer == "adam":
        lr = 0.03 if config.method == "ml" else 0.01
    base = dict(lr=lr, lr_w=0.1, lr_decay=0.5, lam=0.5, dt=dt)
    bad = [k for k in overrides if k not in base]
    if bad:
        raise ValueError(f"unknown hparam {bad[0]!r}; hparams are {sorted(base)}")
    base.update(overrides)
    return MartingaleHParams(**{k: jnp.float32(v) for k, v in base.items()})


def _num_steps(config, env_params) -> int:
    if config.num_steps is not None:
        return int(config.num_steps)
    return int(round(float(env_params.horizon) / float(env_params.dt)))


def validate_config(config: MartingaleConfig, env) -> None:
    """One clear ``ValueError`` for a bad configuration (before any tracing)."""
    V.choice(config, "method", METHODS)
    V.choice(config, "value", VALUES)
    V.choice(config, "mode", ("online", "offline"))
    V.choice(config, "solver", ("closed_form", "sgd"))
    V.choice(config, "optimizer", ("sgd", "adam"))
    V.choice(config, "gtd_metric", ("inverse", "identity"))
    V.positive_ints(config, "num_paths", "num_iterations")
    if config.num_steps is not None:
        V.positive_ints(config, "num_steps")
    V.in_range(config, "average_tail", 0.0, 1.0)
    V.in_range(config, "ridge", 0.0, math.inf)
    if config.beta is not None:
        V.in_range(config, "beta", 0.0, math.inf)
    V.sizes(config, "hidden")
    if config.method == "lstd" and config.value != "linear":
        raise ValueError(f"method='lstd' needs value='linear', got value={config.value!r}")
    if config.method == "ml" and config.mode == "online":
        raise ValueError("method='ml' is offline only (it needs whole paths); use mode='offline'")
    if config.mode == "online" and config.method not in ("td0", "tdlambda", "gtd"):
        raise ValueError(
            f"mode='online' applies to td0, tdlambda and gtd; method={config.method!r} is a batch method"
        )
    if config.method == "gtd" and config.gtd_metric == "identity" and config.mode == "online":
        raise ValueError("gtd_metric='identity' is offline only; use gtd_metric='inverse' online")
    if config.value == "linear" and not hasattr(env, "features"):
        raise ValueError(
            f"value='linear' needs env.features(obs, params); {type(env).__name__} has none"
        )
    if config.value == "parametric" and getattr(env, "num_parametric", 0) <= 0:
        raise ValueError(
            f"value='parametric' needs a parametric family; {type(env).__name__} has none"
        )


def uses_closed_form(config: MartingaleConfig) -> bool:
    return config.method == "lstd" or (
        config.method in ("ml", "mstde")
        and config.value == "linear"
        and config.solver == "closed_form"
    )


# ----------------------------------------------------------------------------- value functions

ValueFn = Callable[[jax.Array, jax.Array], jax.Array]  # (theta[P], obs[..., o]) -> J[...]


def make_value(
    config: MartingaleConfig, env, env_params
) -> tuple[Callable[[jax.Array], jax.Array], Callable]:
    """``(init(key) -> theta[P], value(theta[P], obs[..., o], env_params) -> J[...])``."""
    if config.value == "linear":
        dim = env.features(jnp.zeros((3,), jnp.float32), env_params).shape[-1]
        return (lambda key: jnp.zeros((dim,), jnp.float32)), (
            lambda th, obs, p: env.features(obs, p) @ th
        )
    if config.value == "parametric":
        return (lambda key: env.parametric_init(env_params)), (
            lambda th, obs, p: env.parametric_value(th, obs, p)
        )
    net = MLP(tuple(config.hidden), 1, "tanh")
    obs_dim = env.observation_space(env_params).shape[-1]
    _, unravel = ravel_pytree(net.init(jax.random.PRNGKey(0), jnp.zeros((obs_dim,))))

    def init(key):
        return ravel_pytree(net.init(key, jnp.zeros((obs_dim,))))[0]

    def value(th, obs, p):
        return net.apply(unravel(th), obs)[..., 0]

    return init, value


# ----------------------------------------------------------------------------- losses (one batch of paths)


def _check_paths(obs, next_obs, reward, terminated, mask):
    if obs.ndim < 3 or obs.shape != next_obs.shape:
        raise ValueError(
            f"obs and next_obs must both be [K, N, obs_dim], got {obs.shape} and {next_obs.shape}"
        )
    for name, a in (("reward", reward), ("terminated", terminated), ("mask", mask)):
        if a.shape != obs.shape[:2]:
            raise ValueError(f"{name} must be [K, N] = {obs.shape[:2]}, got {a.shape}")


def td_errors(value, theta, obs, next_obs, reward, terminated, mask, gamma) -> jax.Array:
    """Local martingale increments ``delta_k = R_k + gamma (1-term_k) J(X_{k+1}) - J(X_k)``, masked: ``[K, N]``."""
    _check_paths(obs, next_obs, reward, terminated, mask)
    cont = gamma * (1.0 - terminated.astype(jnp.float32))
    return (reward + cont * value(theta, next_obs) - value(theta, obs)) * mask


def returns_to_go(reward, mask, gamma) -> jax.Array:
    """``G_k = sum_{j>=k} gamma^{j-k} R_j`` (includes the discounted terminal payoff): ``[K, N]``."""
    return discounted_returns(reward * mask, gamma * jnp.ones_like(reward), 0.0)


def time_weights(num_steps: int, dt, beta) -> jax.Array:
    """``e^{-2 beta t_k}``, ``t_k = k dt``: ``[K, 1]``."""
    t = jnp.arange(num_steps, dtype=jnp.float32) * dt
    return jnp.exp(-2.0 * beta * t)[:, None]


def martingale_loss(value, theta, obs, reward, mask, gamma, dt, beta) -> jax.Array:
    """ML objective ``1/2 mean_n sum_k e^{-2 beta t_k} (G_k - J_k)^2 dt`` (sheet §3)."""
    if reward.shape != obs.shape[:2] or mask.shape != reward.shape:
        raise ValueError(
            f"reward and mask must be [K, N] = {obs.shape[:2]}, got {reward.shape} and {mask.shape}"
        )
    g = returns_to_go(reward, mask, gamma)
    w = time_weights(reward.shape[0], dt, beta)
    err = (jax.lax.stop_gradient(g) - value(theta, obs)) * mask
    return 0.5 * jnp.mean(jnp.sum(w * err**2, 0)) * dt


def mstde_loss(value, theta, obs, next_obs, reward, terminated, mask, gamma, dt, beta) -> jax.Array:
    """Mean-square TD error ``mean_n sum_k e^{-2 beta t_k} delta_k^2 / dt`` (sheet §7; a biased baseline)."""
    d = td_errors(value, theta, obs, next_obs, reward, terminated, mask, gamma)
    return jnp.mean(jnp.sum(time_weights(reward.shape[0], dt, beta) * d**2, 0)) / dt


def _outer_sum(u: jax.Array, v: jax.Array) -> jax.Array:
    """``sum_{k,n} u_kn v_kn^T`` for ``[K, N, d]`` inputs, reduced over ``N`` then ``K`` (two short
    float32 sums instead of one of length ``K N``: less round-off for 10^6+ terms)."""
    return jnp.einsum("kni,knj->kij", u, v).sum(0)


def _vec_sum(u: jax.Array, c: jax.Array) -> jax.Array:
    """``sum_{k,n} u_kn c_kn`` (``[K, N, d]``, ``[K, N]``), reduced over ``N`` then ``K``."""
    return jnp.einsum("kni,kn->ki", u, c).sum(0)


def lstd_statistics(phi, next_phi, reward, terminated, mask, gamma) -> tuple[jax.Array, jax.Array]:
    """MOC with ``xi = phi`` as ``A theta = b``: ``A = sum phi (phi - gamma(1-term) phi')^T``,
    ``b = sum phi R`` (sums over ``[K, N]``; divide by ``N`` for per-path scale)."""
    if phi.ndim != 3 or phi.shape != next_phi.shape:
        raise ValueError(
            f"phi and next_phi must both be [K, N, d], got {phi.shape} and {next_phi.shape}"
        )
    for name, a in (("reward", reward), ("terminated", terminated), ("mask", mask)):
        if a.shape != phi.shape[:2]:
            raise ValueError(f"{name} must be [K, N] = {phi.shape[:2]}, got {a.shape}")
    m = mask[..., None]
    cont = (gamma * (1.0 - terminated.astype(jnp.float32)))[..., None]
    A = _outer_sum(phi * m, phi - cont * next_phi)
    b = _vec_sum(phi * m, reward)
    return A, b


def lstd_solve(A: jax.Array, b: jax.Array, ridge: float = 0.0) -> jax.Array:
    """``theta = lstsq(A + ridge tr(A)/d I, b)``."""
    if A.ndim != 2 or A.shape[0] != A.shape[1] or b.shape != A.shape[:1]:
        raise ValueError(f"A must be [d, d] and b [d], got {A.shape} and {b.shape}")
    d = A.shape[0]
    A = A + ridge * jnp.abs(jnp.trace(A)) / d * jnp.eye(d)
    return jnp.linalg.lstsq(A, b)[0]


def cholesky_solve(G: jax.Array, c: jax.Array, ridge: float) -> jax.Array:
    """Solve the symmetric PSD normal equations ``G theta = c`` by Cholesky (relative ridge)."""
    d = G.shape[0]
    G = G + (ridge * jnp.trace(G) / d + 1e-30) * jnp.eye(d)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(G), c)


# ----------------------------------------------------------------------------- update directions


def _vjp(value, theta, obs, cot):
    """``sum_{...} cot * dJ(theta, obs)/dtheta``: ``[P]``."""
    return jax.vjp(lambda th: value(th, obs), theta)[1](cot)[0]


def _jvp(value, theta, obs, w):
    """``dJ(theta, obs)/dtheta . w``: ``[...]``."""
    return jax.jvp(lambda th: value(th, obs), (theta,), (w,))[1]


def offline_direction(config, value, theta, w, batch, hp, gamma, beta):
    """Ascent direction (and new GTD ``w``) from a batch of whole paths at fixed ``theta``."""
    obs, nobs, r, term, m = batch
    n = obs.shape[1]
    dt = hp.dt
    delta_fn = lambda th: td_errors(value, th, obs, nobs, r, term, m, gamma)
    if config.method == "ml":
        g = jax.grad(lambda th: -martingale_loss(value, th, obs, r, m, gamma, dt, beta))(theta)
        return g, w
    if config.method == "mstde":
        return jax.grad(lambda th: -mstde_loss(value, th, obs, nobs, r, term, m, gamma, dt, beta))(
            theta
        ), w
    delta = delta_fn(theta)
    if config.method == "td0":
        return _vjp(value, theta, obs, delta) / n, w
    if config.method == "tdlambda":
        # sum_k e_k delta_k = sum_j xi_j dt D_j,  D_j = sum_{k>=j} lam^{(k-j)dt} delta_k
        D = discounted_returns(delta, hp.lam**dt * jnp.ones_like(delta), 0.0) * m
        return _vjp(value, theta, obs, D * dt) / n, w
    # gtd: w tracks A g;  theta <- theta - lr sum_k d(delta_k)/dtheta (xi_k^T w)
    xi_w = _jvp(value, theta, obs, w) * m
    if config.gtd_metric == "inverse":
        w = w + hp.lr_w * (_vjp(value, theta, obs, delta - xi_w * dt) / n)
    else:
        w = w + hp.lr_w * (_vjp(value, theta, obs, delta) / n - w)
    xi_w = _jvp(value, theta, obs, w) * m
    _, dvjp = jax.vjp(delta_fn, theta)
    return -dvjp(xi_w)[0] / n, w


# ----------------------------------------------------------------------------- the agent


@struct.dataclass
class MartingaleState:
    theta: jax.Array  # [P] last iterate (closed form: the current solution)
    theta_avg: jax.Array  # [P] Polyak average over the tail (closed form: the current solution)
    w: jax.Array  # [P] GTD auxiliary estimate
    opt_state: Any
    key: jax.Array  # iterative: the running key; closed form: the key the batch keys split from
    G: jax.Array  # [d, d] closed form: running sum of per-path system matrices ([0, 0] otherwise)
    c: jax.Array  # [d] closed form: running sum of per-path right-hand sides ([0] otherwise)
    step: jax.Array  # int32: updates (batches) done


def make(
    config: MartingaleConfig,
    env,
    env_params,
    policy: Callable = zero_policy,
    policy_params: Any = None,
) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` evaluating the fixed ``policy`` on ``env``.

    ``policy(policy_params, obs[N, o], key) -> (action[N, ...], extras)`` (engine signature); the
    uncontrolled diffusion tasks ignore the action, so the default is :func:`zero_policy`.  One
    update = one batch of ``num_paths`` paths (see the module docstring for the metrics);
    ``Agent.steps_per_update = num_paths x T / env_params.dt`` (the ``env_steps`` metric counts the
    steps of the run's own ``dt``).
    """
    validate_config(config, env)
    if not hasattr(env_params, "dt") or not hasattr(env_params, "horizon"):
        raise ValueError(
            "env_params must carry dt and horizon (a diffusion:* task from rlsuite.envs.diffusion)"
        )
    if config.beta is None and not hasattr(env_params, "beta"):
        raise ValueError("set MartingaleConfig.beta: env_params has no beta")
    k_max = _num_steps(config, env_params)
    k_env = int(round(float(env_params.horizon) / float(env_params.dt)))
    init_value, value_p = make_value(config, env, env_params)
    tx = optax.adam(1.0) if config.optimizer == "adam" else optax.sgd(1.0)
    n_iter, n = config.num_iterations, config.num_paths
    n_avg_start = min(int(round((1.0 - config.average_tail) * n_iter)), n_iter - 1)
    closed = uses_closed_form(config)
    beta = env_params.beta if config.beta is None else config.beta
    has_value = hasattr(env, "value") and hasattr(env, "state_grid")

    def resolve(hp):
        """``(dt, gamma, K, bad)``: the run's dt (0 -> the env's), its discount and steps, and
        whether the run is invalid (dt off the grid, non-positive, or a non-finite hparam)."""
        dt = jnp.where(hp.dt == 0, env_params.dt, hp.dt)
        k = jnp.round(env_params.horizon / dt).astype(jnp.int32)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(hp)]))
        bad = (jnp.round(env_params.horizon / dt) > k_max) | ~(dt > 0) | ~finite
        return dt, jnp.exp(-beta * dt), k, bad

    def sample(key, dt, k):
        p = env_params.replace(dt=dt, max_steps_in_episode=k)
        tr = rollout_episodes(env, p, policy, policy_params, key, n, k_max)
        return p, (tr.obs, tr.next_obs, tr.reward, tr.terminated, tr.mask)

    def init(key, hp: MartingaleHParams) -> MartingaleState:
        _check_concrete_dt(hp.dt, env_params, k_max)
        key, k_init = jax.random.split(key)
        theta0 = init_value(k_init)
        d = theta0.shape[0] if closed else 0
        return MartingaleState(
            theta0, theta0, jnp.zeros_like(theta0), tx.init(theta0), key,
            jnp.zeros((d, d), jnp.float32), jnp.zeros((d,), jnp.float32), jnp.int32(0),
        )

    def batch_metrics(value, theta, batch, gamma, dt, k, step):
        obs, nobs, r, term, m = batch
        msq = jnp.mean(jnp.sum(td_errors(value, theta, obs, nobs, r, term, m, gamma) ** 2, 0)) / dt
        out = {"env_steps": (step + 1) * n * k, "mean_sq_td": msq, "theta_norm": jnp.linalg.norm(theta)}
        if config.method == "ml":
            out["loss/ml"] = martingale_loss(value, theta, obs, r, m, gamma, dt, beta)
        elif config.method == "mstde":
            out["loss/mstde"] = mstde_loss(value, theta, obs, nobs, r, term, m, gamma, dt, beta)
        return out

    def closed_form_update(st: MartingaleState, hp: MartingaleHParams):
        """Add one batch's statistics to ``G, c`` and re-solve ``theta`` from their mean."""
        dt, gamma, k, bad = resolve(hp)
        key_j = jax.random.split(st.key, n_iter + 1)[st.step + 1]  # batch j: today's key layout
        p, batch = sample(key_j, dt, k)
        obs, nobs, r, term, m = batch
        phi, nphi = env.features(obs, p), env.features(nobs, p)
        if config.method == "lstd":
            A, b = lstd_statistics(phi, nphi, r, term, m, gamma)
        elif config.method == "ml":
            wgt = (time_weights(k_max, dt, beta) * m)[..., None]
            gret = returns_to_go(r, m, gamma)
            A = _outer_sum(phi * wgt, phi) * dt
            b = _vec_sum(phi * wgt, gret) * dt
        else:  # mstde: min sum w (R + dphi^T theta)^2 / dt
            cont = (gamma * (1.0 - term.astype(jnp.float32)))[..., None]
            dphi = (cont * nphi - phi) * m[..., None]
            wgt = time_weights(k_max, dt, beta)[..., None]
            A = _outer_sum(dphi * wgt, dphi) / dt
            b = -_vec_sum(dphi * wgt, r) / dt
        G, c = st.G + A / n, st.c + b / n
        count = (st.step + 1).astype(jnp.float32)
        Gm, cm = G / count, c / count
        theta = lstd_solve(Gm, cm, config.ridge) if config.method == "lstd" else cholesky_solve(Gm, cm, config.ridge)
        theta = jnp.where(bad, jnp.nan, theta)
        metrics = batch_metrics(lambda th, o: value_p(th, o, p), theta, batch, gamma, dt, k, st.step)
        metrics["residual"] = jnp.linalg.norm(Gm @ theta - cm) / (jnp.linalg.norm(cm) + 1e-30)
        return st.replace(theta=theta, theta_avg=theta, G=G, c=c, step=st.step + 1), metrics

    def iterative_update(st: MartingaleState, hp: MartingaleHParams):
        """One SGD step (offline) or one online pass (online) on a fresh batch of paths."""
        dt, gamma, k, bad = resolve(hp)
        key, k_s = jax.random.split(st.key)
        p, batch = sample(k_s, dt, k)
        value = lambda th, o: value_p(th, o, p)
        hp_dt = hp.replace(dt=dt)
        lr_j = hp.lr / (1.0 + st.step.astype(jnp.float32)) ** hp.lr_decay
        if config.mode == "online":
            theta, w, opt_state = online_pass(config, value, st, batch, hp_dt, gamma, lr_j, tx)
        else:
            direction, w = offline_direction(config, value, st.theta, st.w, batch, hp_dt, gamma, beta)
            upd, opt_state = tx.update(-direction, st.opt_state, st.theta)
            theta = st.theta + lr_j * upd
        theta = jnp.where(bad, jnp.nan, theta)
        n_avg = jnp.maximum(st.step - n_avg_start + 1, 0)
        avg = jnp.where(
            st.step >= n_avg_start, st.theta_avg + (theta - st.theta_avg) / jnp.maximum(n_avg, 1), st.theta_avg
        )
        metrics = batch_metrics(value, theta, batch, gamma, dt, k, st.step)
        new = st.replace(theta=theta, theta_avg=avg, w=w, opt_state=opt_state, key=key, step=st.step + 1)
        return new, metrics

    scan = scan_segment(closed_form_update if closed else iterative_update)

    def segment(state: MartingaleState, hp: MartingaleHParams, num_updates: int):
        _check_concrete_dt(hp.dt, env_params, k_max)
        return scan(state, hp, num_updates)

    def evaluate(state: MartingaleState, key: jax.Array) -> dict:
        """``eval_value_error``: relative L2 error of ``J_{theta_avg}`` vs the env's closed form
        (no closed form: ``eval_mean_sq_td`` on ``num_paths`` fresh paths at the env's dt)."""
        if has_value:
            return {"eval_value_error": relative_l2_error(config, env, env_params, state.theta_avg)}
        dt = jnp.asarray(env_params.dt, jnp.float32)
        k = jnp.int32(k_env)
        p, (obs, nobs, r, term, m) = sample(key, dt, k)
        d = td_errors(lambda th, o: value_p(th, o, p), state.theta_avg, obs, nobs, r, term, m, jnp.exp(-beta * dt))
        return {"eval_mean_sq_td": jnp.mean(jnp.sum(d**2, 0)) / dt}

    return Agent(
        init=init,
        segment=segment,
        evaluate=evaluate,
        num_updates=n_iter,
        steps_per_update=n * k_env,
        counter="env_steps",
        score="eval_value_error" if has_value else "eval_mean_sq_td",
        higher_is_better=False,
    )


def make_train(
    config: MartingaleConfig,
    env,
    env_params,
    policy: Callable = zero_policy,
    policy_params: Any = None,
) -> Callable[[jax.Array, MartingaleHParams], tuple]:
    """``train(key, hparams) -> (MartingaleState, metrics)``: all ``num_iterations`` updates of
    :func:`make`'s agent in one call (``core.agent.make_train``); metric leaves ``[num_iterations]``."""
    return make_train_of(make(config, env, env_params, policy, policy_params))


def online_pass(config, value, st: MartingaleState, batch, hp, gamma, lr, tx):
    """One online pass along a batch of paths: an update after every time step ``k``
    (averaged over the ``N`` parallel paths).  Returns ``(theta, w, opt_state)``."""
    obs, nobs, r, term, m = batch
    n = obs.shape[1]
    dt = hp.dt
    cont = gamma * (1.0 - term.astype(jnp.float32))
    decay = hp.lam**dt

    def delta_k(th, o, no, rk, ck, mk):
        return (rk + ck * value(th, no) - value(th, o)) * mk

    def step(carry, x):
        theta, w, opt_state, trace = carry
        o, no, rk, ck, mk = x
        d = delta_k(theta, o, no, rk, ck, mk)  # [N]
        if config.method == "td0":
            direction = _vjp(value, theta, o, d) / n
        elif config.method == "tdlambda":
            grads = jax.vmap(jax.grad(lambda th, oi: value(th, oi)), in_axes=(None, 0))(
                theta, o
            )  # [N, P]
            trace = decay * trace + grads * dt * mk[:, None]
            direction = (trace * d[:, None]).sum(0) / n
        else:  # gtd (inverse metric): w += lr_w xi (delta - xi^T w dt);  theta -= lr d(delta)/dtheta xi^T w
            xi_w = _jvp(value, theta, o, w) * mk
            w = w + hp.lr_w * _vjp(value, theta, o, d - xi_w * dt) / n
            xi_w = _jvp(value, theta, o, w) * mk
            _, dvjp = jax.vjp(lambda th: delta_k(th, o, no, rk, ck, mk), theta)
            direction = -dvjp(xi_w)[0] / n
        upd, opt_state = tx.update(-direction, opt_state, theta)
        return (theta + lr * upd, w, opt_state, trace), None

    trace0 = jnp.zeros((n, st.theta.shape[0]) if config.method == "tdlambda" else (0,), jnp.float32)
    (theta, w, opt_state, _), _ = jax.lax.scan(
        step, (st.theta, st.w, st.opt_state, trace0), (obs, nobs, r, cont, m)
    )
    return theta, w, opt_state


def _check_concrete_dt(dt, env_params, k_max: int) -> None:
    """Eager validation of ``dt`` when it is a concrete number (traced dt under vmap: NaN guard);
    ``dt = 0`` stands for the env's own dt."""
    try:
        val = float(dt)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return
    if val == 0.0:
        return
    k = check_dt(val, env_params.horizon)
    if k > k_max:
        raise ValueError(f"dt={val} needs {k} steps but config.num_steps={k_max}; raise num_steps")


# ----------------------------------------------------------------------------- evaluation


def value_function(
    config: MartingaleConfig, env, env_params
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``J(theta, obs[..., o]) -> [...]`` for a trained ``theta`` (e.g. ``state.theta_avg``)."""
    _, value_p = make_value(config, env, env_params)
    return lambda theta, obs: value_p(theta, obs, env_params)


def relative_l2_error(
    config: MartingaleConfig, env, env_params, theta: jax.Array, num_x: int = 41, num_t: int = 4
) -> jax.Array:
    """``||J_theta - J||_2 / ||J||_2`` on the env's state grid (``num_t`` times x ``num_x`` states)."""
    grid = env.state_grid(env_params, num_x, num_t)
    approx = value_function(config, env, env_params)(theta, grid)
    true = env.value(grid, env_params)
    return jnp.linalg.norm(approx - true) / jnp.linalg.norm(true)


def replace(config: MartingaleConfig, **kw) -> MartingaleConfig:
    return dataclasses.replace(config, **kw)


__all__ = [
    "Config",
    "HParams",
    "INERT",
    "MartingaleConfig",
    "MartingaleHParams",
    "MartingaleState",
    "default_hparams",
    "make",
    "make_train",
    "td_errors",
    "returns_to_go",
    "martingale_loss",
    "mstde_loss",
    "lstd_statistics",
    "lstd_solve",
    "relative_l2_error",
    "value_function",
    "make_value",
    "zero_policy",
]
