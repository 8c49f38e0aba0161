"""Bayesian policy gradient (BPG Models 1 and 2) and Bayesian actor-critic (BAC).

Ghavamzadeh, Engel, Valko, "Bayesian Policy Gradient and Actor-Critic Algorithms", JMLR 17(66),
2016 (NIPS 2006 / ICML 2007).  Spec: ``shared/papers/bayesian_pg.md`` (no official code; the
formulas are the standard Bayesian-quadrature and MC-GPTD results).  Linear algebra lives in
:mod:`rlsuite.agents.gp` (Cholesky solves only, ALD dictionary).

The file reads like the paper's algorithm boxes:

1. configs and hyper-parameters (:class:`BPGConfig`, :class:`BACConfig`, :class:`BayesHParams`);
2. policies (linear-Gaussian for the LQR, softmax over RBF features for mountain car) and the
   engine policy that records per-step scores ``u_t = grad log mu(a_t|x_t)``;
3. gradient estimators on one batch: MC (REINFORCE), BPG Model 1 (quadratic Fisher kernel),
   BPG Model 2 (Fisher kernel), each dense or ALD-sparsified, and BAC (MC-GPTD critic with
   ``k = k_x + c_F * Fisher``); each returns a :class:`Posterior` (mean, covariance, natural);
4. the agent protocol (:mod:`rlsuite.core.agent`): ``make(config, env, env_params) -> Agent``
   whose update samples M episodes with :func:`rlsuite.core.rollout.rollout_episodes`,
   estimates, and steps ``theta += beta_j * direction`` with
   ``beta_j = beta_0 beta_c / (beta_c + j)``; ``evaluate`` runs ``eval_episodes`` fresh episodes
   at ``theta`` (plus the exact expected return on the LQR); ``make_train`` is
   ``rlsuite.core.agent.make_train(make(...))``.

Choices where the sheet is unsure, and deviations (with reasons):

- Fisher estimate: per-step form ``G = (1/M) sum_i sum_t u_it u_it^T + eps I`` for BPG
  (sheet default; the trajectory form is ``fisher="trajectory"`` and reproduces the
  Model-2 collapse identity).  For BAC the sheet's table (port of the authors' code) uses the
  *sum* over all steps (``fisher="step_sum"``, BAC default).  ``eps`` is the ``fisher_reg``
  hyper-parameter (1e-6); every Cholesky also adds a relative jitter ``j (1 + mean diag)``
  with ``j`` the first of 1e-6, 1e-4, 1e-2 that factorises (float32), so a singular Fisher
  estimate gives finite output (see :func:`rlsuite.agents.gp.safe_cholesky`).
- Model 1's posterior variance ``b_0 - b^T C b`` can go slightly negative when ``G`` is an
  estimate (the closed forms of ``b`` assume the true ``G``); it is clamped at 0.
- BAC critic: the MC-GPTD batch posterior with *every* episode end treated as terminal
  (square ``H``), i.e. GP regression of the discounted returns-to-go on the state-action
  points (the sheet's "returns identity" fast path).  For the LQR this is exact for the
  finite-horizon objective ``J`` (nothing is earned after ``H``); for mountain car the
  time-limit cut is treated as the end of the task, as in fixed-horizon MC returns.  The
  ``T x (T+1)`` form for truncated episodes would need an action sampled at the final state,
  which the engine's episode mode does not record.  The general ``H``-matrix form is in
  :func:`rlsuite.agents.gp.gptd_posterior` and tested against the fast path.
- Sparse BAC uses the batch closed form over an ALD dictionary built online over the batch
  (Engel's per-step ``c, d, s`` recursion gives the same posterior); the gradient uses the
  dictionary scores (sheet: derived, not confirmed against the paper's text).
- The step-size constants ``beta_0, beta_c`` and the BPG noise ``sigma^2`` are not given in
  the sheet; defaults here are ours (see the experiments README).  ``max_step_norm`` clips the
  update norm for the unstable LQR regime (``|1+lambda|>1``); its default is 0.5, the value of
  every LQR experiment (unclipped, the default step size diverged on 6 of 16 seeds of the
  default LQR config, and on most seeds of the registry's smoke config; clipped, none did, with
  the same median return).
- ``gamma`` is a traced hyper-parameter (``hp.gamma``, so sweeps can vmap over it); the config
  field ``gamma`` is its default (``default_hparams``), as in PPO.  Hyper-parameters are checked
  eagerly where they are concrete (``init`` outside ``jit``): out-of-range values raise, NaN is
  let through so the runner's non-finite stop sees it in the first update's metrics.
- LQR policy ``a ~ N(lambda x, sigma^2)``, ``theta = (lambda, log sigma)``, initial
  ``theta = (-0.2, log 1.0)``, ``gamma = 0.95`` (sheet: unverified/unspecified).
- Mountain car: gymnax ``MountainCar-v0`` with the policy restricted to env actions ``{0, 2}``
  (the experiments raise the episode cap to 1000: no uniform-policy episode reaches the goal
  within gymnax's default 200 steps, so every return would be equal);
  the 4x4 RBF grid has centres ``(i + 0.5)/4`` on the ``[0, 1]^2``-normalised state and width
  ``1.3 * 0.25`` (the sheet's grid step 0.25).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.linalg import cho_solve, solve_triangular

from rlsuite.agents import gp
from rlsuite.core import agent as core_agent
from rlsuite.core import validate as V
from rlsuite.core.returns import reward_to_go
from rlsuite.core.rollout import rollout_episodes

ESTIMATORS = ("mc", "bpg1", "bpg2")
FISHER_FORMS = ("step", "trajectory", "step_sum")
POLICIES = ("auto", "linear_gaussian", "softmax_rbf")

# ============================================================================= 1. configs


@dataclasses.dataclass(frozen=True)
class BPGConfig:
    """Bayesian policy gradient (and its MC-PG baseline) on fixed-horizon episodes."""

    estimator: str = "bpg2"
    """Gradient estimator: "mc" (REINFORCE, U y / M), "bpg1" (Model 1), "bpg2" (Model 2)."""
    natural: bool = False
    """Step along the natural gradient G^-1 E[grad | D] instead of the posterior mean."""
    num_episodes: int = 10
    """M, trajectories per update."""
    horizon: int = 20
    """H, steps per episode (episodes that end earlier are masked)."""
    num_updates: int = 100
    """Number of policy updates."""
    gamma: float = 0.95
    """Discount of the trajectory return R = sum_t gamma^t r_t (default of the traced hp.gamma)."""
    fisher: str = "step"
    """Fisher estimate: "step" (1/M sum_i sum_t u u^T), "trajectory" (1/M sum_i u_i u_i^T), "step_sum"."""
    sparse: bool = False
    """Use the ALD-sparsified GP over trajectories (bpg1/bpg2 only)."""
    dictionary_size: int = 32
    """Static ALD dictionary capacity (used when sparse)."""
    policy: str = "auto"
    """"linear_gaussian" (Box actions), "softmax_rbf" (Discrete), or "auto" from the action space."""
    actions: tuple[int, ...] = (0, 2)
    """softmax_rbf: env actions the policy chooses among (mountain car: push left / right)."""
    rbf_grid: int = 4
    """softmax_rbf: RBF centres per state dimension."""
    init_theta: tuple[float, ...] | None = (-0.2, 0.0)
    """Initial policy parameters (None: zeros); the default (lambda, log sigma) is for the LQR's
    linear_gaussian policy and is ignored (zeros) when its length does not fit the policy."""
    eval_episodes: int = 10
    """Episodes (of `horizon` steps) that `evaluate` samples at the current theta."""


@dataclasses.dataclass(frozen=True)
class BACConfig:
    """Bayesian actor-critic: MC-GPTD critic over state-action pairs, gradient from the critic."""

    natural: bool = False
    """Step along c_F G^-1 U alpha (the critic's compatible weights) instead of c_F U alpha."""
    num_episodes: int = 5
    """M, episodes per update."""
    horizon: int = 20
    """H, steps per episode."""
    num_updates: int = 100
    """Number of actor updates."""
    gamma: float = 0.95
    """Discount of the critic's returns-to-go (default of the traced hp.gamma)."""
    fisher: str = "step_sum"
    """Fisher estimate for the Fisher kernel (sheet table: sum over all steps)."""
    sparse: bool = False
    """ALD-sparsified critic (bounded cost for long batches)."""
    dictionary_size: int = 64
    """Static ALD dictionary capacity (used when sparse)."""
    policy: str = "auto"
    """As in BPGConfig."""
    actions: tuple[int, ...] = (0, 2)
    """As in BPGConfig."""
    rbf_grid: int = 4
    """As in BPGConfig."""
    init_theta: tuple[float, ...] | None = (-0.2, 0.0)
    """As in BPGConfig."""
    eval_episodes: int = 10
    """As in BPGConfig."""


@struct.dataclass
class BayesHParams:
    """Numeric hyper-parameters (a pytree: vmap over it to sweep)."""

    step_size: jax.Array  # beta_0
    step_decay: jax.Array  # beta_c; beta_j = beta_0 beta_c / (beta_c + j)
    noise_var: jax.Array  # sigma^2 of the GP (BPG) / MC-GPTD noise (BAC)
    fisher_reg: jax.Array  # eps added to the Fisher estimate
    ald_threshold: jax.Array  # nu (sparse only)
    fisher_coef: jax.Array  # c_F (BAC)
    state_width: jax.Array  # width of the Gaussian state kernel (BAC)
    max_step_norm: jax.Array  # clip of ||beta_j direction|| (inf: none; default 0.5)
    gamma: jax.Array  # discount of returns / returns-to-go (default: config.gamma)


Config = BPGConfig
"""The registry's ``bpg`` entry uses :class:`BPGConfig`, ``bac`` uses :class:`BACConfig`;
:func:`make` dispatches on the config type."""
HParams = BayesHParams
HPARAM_RANGES = {  # documented valid ranges, checked by rlsuite.core.validate.check_ranges
    "step_size": V.POSITIVE, "step_decay": V.POSITIVE_OR_INF, "noise_var": V.POSITIVE, "fisher_reg": V.NONNEG,
    "ald_threshold": V.NONNEG, "fisher_coef": V.NONNEG, "state_width": V.POSITIVE,
    "max_step_norm": V.POSITIVE_OR_INF, "gamma": V.DISCOUNT,
}

INERT = {
    "eval_episodes": "evaluation only",
    "dictionary_size": "ALD capacity: used only with sparse=True",
    "hp.ald_threshold": "ALD threshold nu: used only with sparse=True (tested there)",
    "actions": "softmax_rbf policy only (Discrete envs; tested on mountain car)",
    "rbf_grid": "softmax_rbf policy only (Discrete envs; tested on mountain car)",
    "hp.fisher_coef": "c_F of the BAC kernel: unused by BPG (tested for BAC)",
    "hp.state_width": "state-kernel width: unused by BPG (tested for BAC)",
    "hp.max_step_norm": "acts only on steps longer than the clip (tested separately)",
    "policy": "'auto' picks the one policy valid for the env's action space; a name only checks it",
}
"""Knobs that change nothing in some modes (``tests/_knobs.py``); tests/test_bayes_pg.py checks
each of them in the mode where it acts."""


def default_hparams(config, **overrides) -> BayesHParams:
    """Defaults: BPG ``beta_0=0.01, sigma^2=1``; BAC ``beta_0=0.01, sigma^2=9`` (sigma=3),
    ``nu=0.1``, ``c_F=1``, state width ``1.3*0.25``; ``beta_c=inf`` (constant step); step clip
    ``max_step_norm=0.5``; ``gamma=config.gamma``."""
    bac = isinstance(config, BACConfig)
    hp = dict(
        step_size=0.01,
        step_decay=np.inf,
        noise_var=9.0 if bac else 1.0,
        fisher_reg=1e-6,
        ald_threshold=0.1 if bac else 0.0,
        fisher_coef=1.0,
        state_width=1.3 * 0.25,
        max_step_norm=0.5,
        gamma=config.gamma,
    )
    bad = [k for k in overrides if k not in hp]
    if bad:
        raise ValueError(f"unknown hyper-parameter {bad[0]!r}; choose from {sorted(hp)}")
    hp.update(overrides)
    return BayesHParams(**{k: jnp.asarray(v, jnp.float32) for k, v in hp.items()})


def _validate_hparams(hp: BayesHParams) -> None:
    """Check concrete hyper-parameters (skipped for traced values inside vmap/jit).

    Out-of-range values raise; NaN passes (the runner's non-finite stop catches it)."""
    leaves = {f.name: getattr(hp, f.name) for f in dataclasses.fields(hp)}
    if any(isinstance(v, jax.core.Tracer) for v in leaves.values()):
        return
    for name in ("step_size", "step_decay", "noise_var", "fisher_reg", "fisher_coef", "state_width", "max_step_norm"):
        v = np.asarray(leaves[name])
        if np.any(v <= 0):
            raise ValueError(f"hyper-parameter {name} must be > 0, got {v}")
    if np.any(np.asarray(leaves["ald_threshold"]) < 0):
        raise ValueError(f"hyper-parameter ald_threshold must be >= 0, got {leaves['ald_threshold']}")
    g = np.asarray(leaves["gamma"])
    if np.any((g <= 0) | (g > 1)):
        raise ValueError(f"hyper-parameter gamma must be in (0, 1], got {g}")


# ============================================================================= 2. policies


class PolicySpec(NamedTuple):
    """A parametric policy on single observations.

    ``sample(theta, obs, key) -> a`` (internal action), ``log_prob(theta, obs, a)``,
    ``to_env(a)`` (env action), ``features(obs)`` (normalised state for the state kernel),
    ``theta0`` (initial parameters ``[n]``).
    """

    sample: Callable
    log_prob: Callable
    to_env: Callable
    features: Callable
    theta0: jax.Array


def linear_gaussian_policy(obs_size: int, init_theta=None) -> PolicySpec:
    """``a ~ N(w . x, sigma^2)``, ``theta = (w, log sigma)`` (1-D action; LQR: ``w = lambda``)."""

    def mean_std(theta, obs):
        return jnp.dot(theta[:obs_size], obs), jnp.exp(theta[obs_size])

    def sample(theta, obs, key):
        m, s = mean_std(theta, obs)
        return m + s * jax.random.normal(key, ())

    def log_prob(theta, obs, a):
        m, s = mean_std(theta, obs)
        return -0.5 * ((a - m) / s) ** 2 - jnp.log(s) - 0.5 * jnp.log(2 * jnp.pi)

    theta0 = jnp.zeros(obs_size + 1) if init_theta is None else jnp.asarray(init_theta, jnp.float32)
    return PolicySpec(sample, log_prob, lambda a: jnp.reshape(a, (1,)), lambda obs: obs, theta0)


def rbf_features(obs01: jax.Array, grid: int) -> jax.Array:
    """Gaussian RBFs on a ``grid x grid`` lattice of ``[0,1]^2`` (centres ``(i+0.5)/grid``,
    width ``1.3/grid``); ``obs01: [2]`` -> ``[grid^2]``."""
    c = (jnp.arange(grid) + 0.5) / grid
    centres = jnp.stack(jnp.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    width = 1.3 / grid
    return jnp.exp(-jnp.sum((obs01 - centres) ** 2, -1) / (2 * width**2))


def softmax_rbf_policy(low, high, actions, grid: int, init_theta=None) -> PolicySpec:
    """Softmax over ``len(actions)`` actions with logits ``theta_a . phi(x)`` (RBF features)."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    acts = jnp.asarray(actions, jnp.int32)
    k, f = len(actions), grid * grid

    def features(obs):
        return (obs - low) / (high - low)

    def logits(theta, obs):
        return theta.reshape(k, f) @ rbf_features(features(obs), grid)

    def sample(theta, obs, key):
        return jax.random.categorical(key, logits(theta, obs))

    def log_prob(theta, obs, a):
        return jax.nn.log_softmax(logits(theta, obs))[a]

    theta0 = jnp.zeros(k * f) if init_theta is None else jnp.asarray(init_theta, jnp.float32)
    return PolicySpec(sample, log_prob, lambda a: acts[a], features, theta0)


def make_policy(config, env, env_params) -> PolicySpec:
    """Pick and build the policy for ``env`` (clear errors for unsupported spaces)."""
    from gymnax.environments import spaces  # imported when used: gymnax takes ~1.3 s to import

    a_space, o_space = env.action_space(env_params), env.observation_space(env_params)
    kind = config.policy
    if kind == "auto":
        kind = "softmax_rbf" if isinstance(a_space, spaces.Discrete) else "linear_gaussian"
    if kind == "linear_gaussian":
        if not isinstance(a_space, spaces.Box) or tuple(a_space.shape) != (1,):
            raise ValueError(f"linear_gaussian policy needs a Box action space of shape (1,), got {a_space}")
        d = int(np.prod(o_space.shape))
        init = config.init_theta
        if init is not None and len(init) != d + 1:
            raise ValueError(f"init_theta must have {d + 1} entries (w, log sigma), got {init!r}")
        return linear_gaussian_policy(d, init)
    if not isinstance(a_space, spaces.Discrete):
        raise ValueError(f"softmax_rbf policy needs a Discrete action space, got {a_space}")
    if tuple(o_space.shape) != (2,):
        raise ValueError(f"softmax_rbf policy needs 2-D observations, got shape {o_space.shape}")
    if not config.actions or any(not 0 <= a < a_space.n for a in config.actions):
        raise ValueError(f"actions {config.actions!r} must be in [0, {a_space.n})")
    n = len(config.actions) * config.rbf_grid**2
    init = config.init_theta
    if init is not None and len(init) != n:
        init = None  # the LQR default does not apply to this policy: start from zeros
    return softmax_rbf_policy(o_space.low, o_space.high, config.actions, config.rbf_grid, init)


def engine_policy(spec: PolicySpec):
    """The rollout engine's policy: ``(theta, obs[N, ...], key) -> (action[N, ...], extras)``;
    ``extras = {"a": internal action [N], "score": grad log mu [N, n]}``."""
    score_fn = jax.grad(spec.log_prob)

    def act(theta, obs, key):
        keys = jax.random.split(key, obs.shape[0])
        a = jax.vmap(spec.sample, (None, 0, 0))(theta, obs, keys)
        score = jax.vmap(score_fn, (None, 0, 0))(theta, obs, a)
        return jax.vmap(spec.to_env)(a), {"a": a, "score": score}

    return act


# ============================================================================= 3. estimators


@struct.dataclass
class Batch:
    """Per-batch statistics of M episodes.

    ``step_score [H, M, n]`` (masked), ``traj_score [M, n]`` (= sum_t u_t), ``ret [M]``
    (discounted return), ``rtg [H, M]`` (discounted returns-to-go from t), ``mask [H, M]``,
    ``features [H, M, d]`` (normalised states), ``undiscounted [M]``, ``length [M]``.
    """

    step_score: jax.Array
    traj_score: jax.Array
    ret: jax.Array
    rtg: jax.Array
    mask: jax.Array
    features: jax.Array
    undiscounted: jax.Array
    length: jax.Array


def summarize(traj, gamma, features_fn: Callable = lambda o: o) -> Batch:
    """Turn a ``Trajectory[H, M]`` (extras with ``score``) into a :class:`Batch`."""
    mask = traj.mask
    score = traj.extras["score"] * mask[..., None]
    rtg = reward_to_go(traj.reward, mask, gamma, discount_from="t")
    return Batch(
        step_score=score,
        traj_score=score.sum(0),
        ret=rtg[0],
        rtg=rtg * mask,
        mask=mask,
        features=jax.vmap(jax.vmap(features_fn))(traj.obs),
        undiscounted=traj.episode_return,
        length=traj.episode_length,
    )


def fisher_estimate(step_score: jax.Array, traj_score: jax.Array, form: str, reg) -> jax.Array:
    """Fisher estimate ``[n, n]`` from ``step_score [H, M, n]`` / ``traj_score [M, n]`` plus ``reg I``."""
    M, n = traj_score.shape
    if form == "trajectory":
        G = traj_score.T @ traj_score / M
    elif form == "step":
        G = jnp.einsum("tmi,tmj->ij", step_score, step_score) / M
    elif form == "step_sum":
        G = jnp.einsum("tmi,tmj->ij", step_score, step_score)
    else:
        raise ValueError(f"unknown Fisher form {form!r}; choose from {FISHER_FORMS}")
    return gp.sym(G) + reg * jnp.eye(n, dtype=G.dtype)


@struct.dataclass
class Posterior:
    """Posterior of the policy gradient: ``mean [n]``, ``cov [n, n]``, ``natural [n] = G^-1 mean``."""

    mean: jax.Array
    cov: jax.Array
    natural: jax.Array


def _natural(LG, mean):
    return cho_solve((LG, True), mean)


def mc_gradient(U: jax.Array, y: jax.Array, G: jax.Array | None = None) -> Posterior:
    """MC (REINFORCE) estimate ``U^T y / M`` with ``U: [M, n]``, ``y: [M]``; ``cov`` is the
    sample covariance of the mean; ``natural`` uses ``G`` if given."""
    M = U.shape[0]
    f = U * y[:, None]
    mean = f.mean(0)
    dev = f - mean
    cov = dev.T @ dev / (M * jnp.maximum(M - 1, 1))
    nat = mean if G is None else _natural(gp.safe_cholesky(G), mean)
    return Posterior(mean, cov, nat)


def bpg_model1(U: jax.Array, y: jax.Array, G: jax.Array, sigma2) -> Posterior:
    """BPG Model 1 (dense): ``k = (1 + u^T G^-1 u')^2``, ``E = Y C b``, ``Cov = (b_0 - b^T C b) I``.

    ``U: [M, n]`` trajectory scores, ``y: [M]`` returns, ``G: [n, n]`` Fisher estimate.
    """
    n = U.shape[1]
    LG = gp.safe_cholesky(G)
    V = solve_triangular(LG, U.T, lower=True).T  # whitened scores [M, n]
    S = V @ V.T
    K, b = (1.0 + S) ** 2, 1.0 + jnp.diagonal(S)
    L = gp.gp_factor(K, sigma2)
    mean = gp.gp_weights(L, U * y[:, None]).T @ b
    var = jnp.maximum(1.0 + n - gp.gp_quad(L, b), 0.0)
    return Posterior(mean, var * jnp.eye(n), _natural(LG, mean))


def bpg_model2(U: jax.Array, y: jax.Array, G: jax.Array, sigma2) -> Posterior:
    """BPG Model 2 (dense): ``k = u^T G^-1 u'``, ``E = U C y``, ``Cov = G - U C U^T``."""
    LG = gp.safe_cholesky(G)
    V = solve_triangular(LG, U.T, lower=True).T
    L = gp.gp_factor(V @ V.T, sigma2)
    mean = U.T @ gp.gp_weights(L, y)
    cov = gp.sym(G - gp.gp_quad(L, U))
    return Posterior(mean, cov, _natural(LG, mean))


def _kernel_model1(v, w):
    return (1.0 + jnp.dot(v, w)) ** 2


def bpg_model1_sparse(U, y, G, sigma2, nu, capacity: int) -> Posterior:
    """Model 1 over an ALD dictionary of trajectories (``K ~= A Kt A^T``)."""
    n = U.shape[1]
    LG = gp.safe_cholesky(G)
    V = solve_triangular(LG, U.T, lower=True).T
    d, A = gp.ald(_kernel_model1, V, jnp.ones(U.shape[0]), nu, capacity)
    F = gp.sparse_factor(d.chol, A, sigma2)
    bt = (1.0 + jnp.sum(d.points**2, -1)) * d.used
    alpha = gp.sparse_weights(F, U * y[:, None])  # [m, n]
    mean = alpha.T @ bt
    var = jnp.maximum(1.0 + n - gp.sparse_quad(F, bt), 0.0)
    return Posterior(mean, var * jnp.eye(n), _natural(LG, mean))


def bpg_model2_sparse(U, y, G, sigma2, nu, capacity: int) -> Posterior:
    """Model 2 over an ALD dictionary of trajectories: ``E = Ut^T alpha~``, ``Cov = G - Ut^T C~ Ut``."""
    LG = gp.safe_cholesky(G)
    V = solve_triangular(LG, U.T, lower=True).T
    d, A = gp.ald(jnp.dot, V, jnp.ones(U.shape[0]), nu, capacity)
    F = gp.sparse_factor(d.chol, A, sigma2)
    Ut = d.points @ LG.T  # dictionary scores [m, n] (zero rows in unused slots)
    mean = Ut.T @ gp.sparse_weights(F, y)
    cov = gp.sym(G - gp.sparse_quad(F, Ut))
    return Posterior(mean, cov, _natural(LG, mean))


def bac_kernel(width, coef):
    """BAC kernel on points ``(x, v)``: ``exp(-|x-x'|^2 / (2 width^2)) + c_F v.v'`` (``v = LG^-1 u``)."""

    def k(p, q):
        (x, v), (x2, v2) = p, q
        return jnp.exp(-jnp.sum((x - x2) ** 2) / (2 * width**2)) + coef * jnp.dot(v, v2)

    return k


def bac_gradient(
    X: jax.Array, U: jax.Array, y: jax.Array, mask: jax.Array, G: jax.Array, hp: BayesHParams,
    sparse: bool = False, capacity: int = 64,
) -> Posterior:
    """BAC gradient posterior from the MC-GPTD critic (all episode ends terminal).

    ``X: [N, d]`` state features, ``U: [N, n]`` per-step scores, ``y: [N]`` discounted
    returns-to-go, ``mask: [N]``.  ``E = c_F U^T alpha``, ``Cov = c_F G - c_F^2 U^T C U``,
    ``natural = c_F G^-1 U^T alpha`` with ``alpha = (K + sigma^2 I)^-1 y`` (dense) or over an ALD
    dictionary (sparse).
    """
    cF = hp.fisher_coef
    LG = gp.safe_cholesky(G)
    V = solve_triangular(LG, U.T, lower=True).T
    kern = bac_kernel(hp.state_width, cF)
    y = y * mask
    if sparse:
        d, A = gp.ald(kern, (X, V), mask, hp.ald_threshold, capacity)
        F = gp.sparse_factor(d.chol, A, hp.noise_var)
        Ut = d.points[1] @ LG.T
        alpha = gp.sparse_weights(F, y)
        quad = gp.sparse_quad(F, Ut)
    else:
        K = jax.vmap(jax.vmap(kern, (None, 0)), (0, None))((X, V), (X, V))
        K = K * mask[:, None] * mask[None, :]
        L = gp.gp_factor(K, hp.noise_var)
        Ut = U * mask[:, None]
        alpha = gp.gp_weights(L, y)
        quad = gp.gp_quad(L, Ut)
    mean = cF * (Ut.T @ alpha)
    cov = gp.sym(cF * G - cF**2 * quad)
    return Posterior(mean, cov, _natural(LG, mean))


def estimate(config, batch: Batch, hp: BayesHParams) -> Posterior:
    """Gradient posterior for one batch according to ``config`` (BPG or BAC)."""
    G = fisher_estimate(batch.step_score, batch.traj_score, config.fisher, hp.fisher_reg)
    if isinstance(config, BACConfig):
        flat = lambda a: a.reshape((-1,) + a.shape[2:])
        return bac_gradient(
            flat(batch.features), flat(batch.step_score), flat(batch.rtg), flat(batch.mask),
            G, hp, config.sparse, config.dictionary_size,
        )
    U, y = batch.traj_score, batch.ret
    if config.estimator == "mc":
        return mc_gradient(U, y, G)
    if config.sparse:
        fn = bpg_model1_sparse if config.estimator == "bpg1" else bpg_model2_sparse
        return fn(U, y, G, hp.noise_var, hp.ald_threshold, config.dictionary_size)
    fn = bpg_model1 if config.estimator == "bpg1" else bpg_model2
    return fn(U, y, G, hp.noise_var)


# ============================================================================= 4. the agent


@struct.dataclass
class TrainState:
    """``theta [n]`` policy parameters, ``key`` the training stream, ``step`` updates done."""

    theta: jax.Array
    key: jax.Array
    step: jax.Array


def validate_config(config) -> None:
    """One clear ValueError for a bad config (before any tracing)."""
    if not isinstance(config, (BPGConfig, BACConfig)):
        raise ValueError(f"config must be a BPGConfig or BACConfig, got {type(config).__name__}")
    V.positive_ints(config, "num_episodes", "horizon", "num_updates", "dictionary_size", "rbf_grid", "eval_episodes")
    if isinstance(config, BPGConfig):
        V.choice(config, "estimator", ESTIMATORS)
    V.choice(config, "fisher", FISHER_FORMS)
    V.choice(config, "policy", POLICIES)
    V.in_range(config, "gamma", 0.0, 1.0, lo_open=True)


def _any_nan(tree) -> jax.Array:
    return jnp.any(jnp.stack([jnp.isnan(x).any() for x in jax.tree.leaves(tree)]))


def make(config, env, env_params) -> core_agent.Agent:
    """The :class:`rlsuite.core.agent.Agent` of a :class:`BPGConfig` (MC-PG, BPG Models 1/2) or a
    :class:`BACConfig` (the estimator is chosen by the config type and fields).

    Per-update metrics (leading axis ``[n]``): ``env_steps`` (cumulative ``episodes x horizon``),
    ``episode_return`` (mean undiscounted return of the M episodes), ``episodes`` (M),
    ``disc_return`` (mean discounted return), ``episode_length``, ``grad_norm`` (norm of the step
    direction), ``cov_trace`` (trace of the gradient posterior covariance), ``step_size``
    (``beta_j``), ``step_norm`` (norm of the applied, clipped step; NaN when any hyper-parameter
    is NaN, even one this mode ignores, so the runner stops a NaN sweep point at its first
    update) and ``theta`` (``[n, dim]``, before the update).  ``evaluate`` gives ``eval_return`` (mean undiscounted return of
    ``eval_episodes`` fresh episodes at ``theta``) and, on the LQR, ``eval_exact_return`` (its
    closed-form expectation, :func:`rlsuite.envs.lqr.lqr_exact_return` with ``gamma = 1``).
    """
    from rlsuite.envs.lqr import LQR1D, lqr_exact_return  # gymnax-based: imported when used

    validate_config(config)
    spec = make_policy(config, env, env_params)
    act = engine_policy(spec)
    M, H, E = int(config.num_episodes), int(config.horizon), int(config.eval_episodes)
    lqr = isinstance(env, LQR1D)

    def direction(post: Posterior):
        return post.natural if config.natural else post.mean

    def init(key, hparams: BayesHParams) -> TrainState:
        _validate_hparams(hparams)
        return TrainState(spec.theta0, key, jnp.zeros((), jnp.float32))

    def update(state: TrainState, hp: BayesHParams):
        key, k_roll = jax.random.split(state.key)
        traj = rollout_episodes(env, env_params, act, state.theta, k_roll, M, H)
        batch = summarize(traj, hp.gamma, spec.features)
        post = estimate(config, batch, hp)
        d = direction(post)
        beta = hp.step_size * hp.step_decay / (hp.step_decay + state.step)
        beta = jnp.where(jnp.isinf(hp.step_decay), hp.step_size, beta)
        delta = beta * d
        norm = jnp.linalg.norm(delta)
        delta = delta * jnp.minimum(1.0, hp.max_step_norm / jnp.maximum(norm, 1e-12))
        metrics = {
            "env_steps": (state.step.astype(jnp.int32) + 1) * (M * H),
            "episode_return": batch.undiscounted.mean(),
            "episodes": jnp.asarray(M, jnp.int32),
            "disc_return": batch.ret.mean(),
            "episode_length": batch.length.mean(),
            "grad_norm": jnp.linalg.norm(d),
            "cov_trace": jnp.trace(post.cov),
            "step_size": beta,
            "step_norm": jnp.where(_any_nan(hp), jnp.nan, jnp.linalg.norm(delta)),
            "theta": state.theta,
        }
        return TrainState(state.theta + delta, key, state.step + 1), metrics

    def evaluate(state: TrainState, key) -> dict:
        traj = rollout_episodes(env, env_params, act, state.theta, key, E, H)
        out = {"eval_return": traj.episode_return.mean()}
        if lqr:
            out["eval_exact_return"] = lqr_exact_return(state.theta, env_params, 1.0, H)
        return out

    return core_agent.Agent(
        init=init,
        segment=core_agent.scan_segment(update),
        evaluate=evaluate,
        num_updates=int(config.num_updates),
        steps_per_update=M * H,
    )


def make_train(config, env, env_params):
    """``train(key, hparams) -> (TrainState, metrics)``: :func:`make` composed by
    :func:`rlsuite.core.agent.make_train` (metrics stacked over ``num_updates`` updates)."""
    return core_agent.make_train(make(config, env, env_params))


def make_estimator(config, env, env_params):
    """``estimate_at(key, theta, hparams) -> (Posterior, Batch)``: one gradient estimate from
    M fresh episodes at ``theta`` (for accuracy experiments and the cost benchmark)."""
    validate_config(config)
    spec = make_policy(config, env, env_params)
    act = engine_policy(spec)
    M, H = int(config.num_episodes), int(config.horizon)

    def estimate_at(key, theta, hparams: BayesHParams):
        traj = rollout_episodes(env, env_params, act, theta, key, M, H)
        batch = summarize(traj, hparams.gamma, spec.features)
        return estimate(config, batch, hparams), batch

    return estimate_at


validate = validate_config  # the env-free checks the runner runs before it builds the env
