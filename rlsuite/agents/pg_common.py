"""Shared machinery of the trajectory policy-gradient estimators (REINFORCE, N-PG-IGT, (N)-HARPG).

Fatkhullin, Barakat, Kireeva, He, "Stochastic Policy Gradient Methods: Improved Sample Complexity
for Fisher-non-degenerate Policies", ICML 2023 (arXiv 2302.01734); spec sheet
``shared/papers/pg_estimators.md``.  The agents are :mod:`rlsuite.agents.reinforce` and
:mod:`rlsuite.agents.npg`; this module holds what they share:

- the policy (softmax MLP for ``Discrete``, Gaussian MLP with a state-independent log-std for
  ``Box``), built from :mod:`rlsuite.core.networks`;
- the GPOMDP coefficients ``c_t = m_t (R_t - b_t)`` (sheet §2) with the optional linear feature
  baseline of the reference runner (garage's ``LinearFeatureBaseline``);
- the batch gradient ``g = mean_i g(tau_i)`` and the per-trajectory score-function
  Hessian-vector product ``v = mean_i B(tau_i, q) Delta`` (sheet §3.4), forward-over-reverse;
- the step-size / momentum schedules ``x_t = x_0 (2 / (t + 2))^p`` (sheet §3.1-3.3);
- :func:`make_agent`: the protocol bundle (:class:`rlsuite.core.agent.Agent`) around an agent's
  ``init`` and one-iteration ``update``: ``segment`` is :func:`rlsuite.core.agent.scan_segment`,
  ``evaluate`` runs ``eval_episodes`` separate episodes at ``theta_t``, and the modules'
  ``make_train`` is :func:`rlsuite.core.agent.make_train` with ``eval_every``.

Metrics of one iteration (shared keys of :mod:`rlsuite.core.agent`): ``env_steps`` (cumulative
``trajectories x horizon``: every sampled episode counts as ``horizon`` steps, including
(N-)HARPG's Hessian batch; evaluation episodes are not counted), ``trajectories`` (cumulative
episodes sampled), ``episode_return`` / ``episodes`` (mean undiscounted return of the gradient
batch and its size), ``grad_norm`` (``||g||``), ``update_norm`` (``||theta_{t+1} - theta_t||``,
non-finite as soon as a step size is); the agents add their own.  There is no loss.

Deviations / choices (all documented in the agents too):

- Batches are ``batch_episodes`` fixed-horizon episodes from the engine's episode mode, not a
  number of environment steps (sheet §4: ``N = ceil(steps / H)``).  The defaults map the
  reference runner's 1000 steps / 32 Hessian steps at ``H = 200`` to 5 / 1 episodes.
- The linear baseline is fitted (ridge, ``1e-5`` regulariser on the Gram matrix normalised by the
  power of two nearest its mean diagonal, an exact scaling) to the
  ``gamma^(h-t)`` returns of the *previous* batch and used for the current one, so it does not
  depend on the batch it is applied to; with the paper's ``gamma^h`` returns it is scaled by
  ``gamma^t`` (sheet §2).  The first iteration uses ``b = 0``.
- The HVP is computed per trajectory but *fused*: ``mean_i g_i <score_i, Delta>`` equals
  ``grad_theta mean_i s_i Phi_i(theta)`` with the scalars ``s_i = <score_i, Delta>`` held fixed,
  and ``mean_i Hess(Phi_i) Delta`` is one ``jax.jvp`` over ``jax.grad`` of the batch-mean
  ``Phi``.  This is exactly the mean of the per-trajectory products (not a product of means,
  pitfall §5.1) with O(P) memory instead of O(N P).  The sheet's literal per-trajectory
  ``vmap(hvp_one)`` recipe is :func:`batch_hvp_vmap`; both agree to float32 precision (tests).
  :func:`batch_hvp_mean` is the reference code's batch-mean product (an option of ``npg``,
  ``hvp_estimator="batch_mean"``; biased, see its docstring).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.core import networks
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.returns import reward_to_go
from rlsuite.core.rollout import rollout_episodes
from rlsuite.core.types import Trajectory

Params = Any

# --------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class PGCommonConfig:
    """Static (shape-setting) settings shared by every trajectory policy-gradient agent."""

    horizon: int = 200
    """H: length of the fixed-horizon episodes (sheet §4: CartPole capped at 200)."""
    batch_episodes: int = 5
    """N: episodes per gradient batch (reference runner: 1000 steps = ceil(1000 / 200) episodes)."""
    num_iterations: int = 1000
    """Number of parameter updates."""
    hidden: Sequence[int] = (32, 32)
    """Policy MLP hidden sizes (sheet: [32, 32] softmax for discrete, [64, 64] Gaussian for
    continuous); ``()`` is a linear (tabular for one-hot observations) policy."""
    activation: str = "tanh"
    """Hidden activation of the policy MLP."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions only)."""
    baseline: str = "linear"
    """'linear' (garage's linear feature baseline, reference runner) or 'none' (the paper's b_t = 0)."""
    discount_from: str = "zero"
    """'zero': R_t = sum_h gamma^h r_h (paper); 't': sum_h gamma^(h-t) r_h (garage)."""
    eval_every: int = 10
    """``make_train`` evaluates at theta_0 and after every this many iterations (must divide
    num_iterations; the runner evaluates after each of its segments instead)."""
    eval_episodes: int = 10
    """Episodes per evaluation at theta_t (stochastic policy, undiscounted return, separate
    episodes not counted in env_steps)."""


@struct.dataclass
class PGHParams:
    """Numeric hyper-parameters (traced; ``jax.vmap`` sweeps them).

    Schedules: ``gamma_t = gamma0 (2/(t+2))^gamma_power`` (step size) and
    ``eta_t = eta0 (2/(t+2))^eta_power`` (momentum), ``t = 0, 1, 2, ...``; ``eta`` is forced to 1
    at ``t = 0`` (sheet: ``d_0 = g(theta_0)``).
    """

    gamma0: jax.Array | float = 0.1
    gamma_power: jax.Array | float = 1.0
    eta0: jax.Array | float = 1.0
    eta_power: jax.Array | float = 1.0
    discount: jax.Array | float = 0.99


HPARAM_RANGES = {  # documented valid ranges of PGHParams, checked by rlsuite.core.validate.check_ranges
    "gamma0": V.POSITIVE, "gamma_power": V.NONNEG, "eta0": V.DISCOUNT, "eta_power": V.NONNEG, "discount": V.DISCOUNT,
}


def make_hparams(gamma0=0.1, gamma_power=1.0, eta0=1.0, eta_power=1.0, discount=0.99) -> PGHParams:
    """:class:`PGHParams` with float32 array leaves (one jit signature whatever the caller passes).

    ``gamma0``: initial step size (grid-search it, sheet §4); ``gamma_power``: step-size decay
    exponent; ``eta0`` / ``eta_power``: momentum weight and its decay exponent; ``discount``: the
    MDP discount of the returns ``R_t``.
    """
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return PGHParams(f(gamma0), f(gamma_power), f(eta0), f(eta_power), f(discount))


def schedule(x0, power, t) -> jax.Array:
    """``x0 * (2 / (t + 2)) ** power`` (reference-code schedules, sheet §3)."""
    return x0 * (2.0 / (jnp.asarray(t, jnp.float32) + 2.0)) ** power


ACTIVATIONS = ("tanh", "relu", "gelu", "elu")


def validate_common(config: PGCommonConfig, env, env_params) -> tuple[bool, int]:
    """Check the shared fields (one clear ``ValueError`` each); returns ``(discrete, action_dim)``."""
    validate_config(config)
    try:
        return networks.action_info(env.action_space(env_params))
    except ValueError as e:
        raise ValueError(
            f"policy-gradient agents need a Discrete or 1-D Box action space: {e}"
        ) from None


def validate_config(config: PGCommonConfig) -> None:
    """The shared field checks that need no env (the runner runs them before building it)."""
    V.positive_ints(config, "horizon", "batch_episodes", "num_iterations", "eval_every", "eval_episodes")
    if not (isinstance(config.hidden, (tuple, list)) and len(config.hidden) == 0):  # () = linear
        V.sizes(config, "hidden")
    V.choice(config, "baseline", ("linear", "none"))
    V.choice(config, "discount_from", ("zero", "t"))
    V.choice(config, "activation", ACTIVATIONS)


# --------------------------------------------------------------------------------- policy


class PGPolicyNet(nn.Module):
    """Softmax (logits) or Gaussian ``(mean, log_std)`` policy head on an MLP."""

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (32, 32)
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs):
        out = networks.MLP(
            tuple(self.hidden), self.action_dim, self.activation, out_scale=0.01, name="pi"
        )(obs)
        if self.discrete:
            return out
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
        )
        return out, jnp.broadcast_to(log_std, out.shape)


class Policy(NamedTuple):
    """Functions of one policy family.

    ``init(key) -> params``; ``act(params, obs[N, ...], key) -> (action[N, ...], ())`` (the engine's
    policy signature); ``log_prob(params, obs[..., obs_dim], action[...]) -> [...]``.
    """

    init: Callable[[jax.Array], Params]
    act: Callable[[Params, jax.Array, jax.Array], tuple[jax.Array, Any]]
    log_prob: Callable[[Params, jax.Array, jax.Array], jax.Array]
    discrete: bool


def make_policy(config: PGCommonConfig, env, env_params) -> Policy:
    discrete, action_dim = networks.action_info(env.action_space(env_params))
    net = PGPolicyNet(
        action_dim, discrete, tuple(config.hidden), config.activation, config.init_log_std
    )
    obs_shape = env.observation_space(env_params).shape

    def init(key):
        return net.init(key, jnp.zeros(obs_shape, jnp.float32))

    def act(params, obs, key):
        return networks.dist_sample(discrete, key, net.apply(params, obs)), ()

    def log_prob(params, obs, action):
        return networks.dist_log_prob(discrete, net.apply(params, obs), action)

    return Policy(init, act, log_prob, discrete)


# --------------------------------------------------------------------------------- baseline


def baseline_features(obs: jax.Array) -> jax.Array:
    """garage's linear-baseline features ``[o, o^2, t/100, (t/100)^2, (t/100)^3, 1]``.

    ``obs: [H, N, ...]`` -> ``[H, N, F]`` with ``F = 2 obs_dim + 4``.
    """
    h, n = obs.shape[:2]
    o = jnp.clip(obs.reshape(h, n, -1).astype(jnp.float32), -10.0, 10.0)
    al = jnp.broadcast_to((jnp.arange(h, dtype=jnp.float32) / 100.0)[:, None, None], (h, n, 1))
    return jnp.concatenate([o, o**2, al, al**2, al**3, jnp.ones_like(al)], -1)


def num_baseline_features(env, env_params) -> int:
    return 2 * networks.obs_dim(env.observation_space(env_params)) + 4


def fit_linear_baseline(
    obs: jax.Array, returns_t: jax.Array, mask: jax.Array, old_w: jax.Array
) -> jax.Array:
    """Ridge fit of ``returns_t [H, N]`` on :func:`baseline_features` over the valid steps.

    Keeps ``old_w`` if the solve is not finite.
    """
    f = baseline_features(obs) * mask[..., None]
    y = returns_t * mask
    gram = jnp.einsum("hnf,hng->fg", f, f)
    # Normalise by the power of two nearest trace / F: the scaling is then exact in float32, so
    # XLA's fused and unfused forms of the scale-and-add agree to the bit, and a vmapped run's
    # ridge solve equals a separate run's (with the exact ratio they differed by one ulp, which
    # the ill-conditioned solve amplified into different baselines and, a few iterations later,
    # different sampled actions).
    scale = jnp.exp2(jnp.round(jnp.log2(jnp.maximum(jnp.trace(gram) / gram.shape[0], 1e-8))))
    w = jnp.linalg.solve(
        gram / scale + 1e-5 * jnp.eye(gram.shape[0]), jnp.einsum("hnf,hn->f", f, y) / scale
    )
    return jnp.where(jnp.all(jnp.isfinite(w)), w, old_w)


def gpomdp_coefficients(
    traj: Trajectory, discount, discount_from: str, use_baseline: bool, baseline_w: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``c_t = m_t (R_t - b_t)`` of sheet §2 (held constant in ``Phi``) and the refitted baseline.

    Returns ``(coef [H, N], new_baseline_w [F])``.
    """
    ret = reward_to_go(traj.reward, traj.mask, discount, discount_from)
    if not use_baseline:
        return jax.lax.stop_gradient(traj.mask * ret), baseline_w
    ret_t = reward_to_go(traj.reward, traj.mask, discount, "t")  # the baseline predicts these
    b = baseline_features(traj.obs) @ baseline_w
    if discount_from == "zero":
        b = b * (discount ** jnp.arange(traj.reward.shape[0], dtype=jnp.float32))[:, None]
    coef = jax.lax.stop_gradient(traj.mask * (ret - b))
    return coef, fit_linear_baseline(traj.obs, ret_t, traj.mask, baseline_w)


# --------------------------------------------------------------------------------- estimators


def batch_gradient(log_prob, params: Params, traj: Trajectory, coef: jax.Array) -> Params:
    """``g = (1/N) sum_i sum_t c_it grad log pi(a_it | s_it)`` (GPOMDP, sheet §2)."""
    n = coef.shape[1]
    return jax.grad(lambda th: (coef * log_prob(th, traj.obs, traj.action)).sum() / n)(params)


def _hvp_parts(log_prob, params: Params, delta: Params, traj: Trajectory, coef: jax.Array):
    """``(logpi, s, g_bar, h_delta)`` shared by both batch HVP estimators.

    ``logpi(theta) -> [H, N]``; ``s [N] = <grad log p(tau_i), Delta>`` (one forward-mode pass,
    held constant); ``g_bar = grad Phi_bar`` and ``h_delta = Hess(Phi_bar) Delta`` from one
    ``jax.jvp`` of ``jax.grad`` of the batch-mean ``Phi_bar = (1/N) sum_i Phi_i``.
    """
    n = coef.shape[1]

    def logpi(th):
        return log_prob(th, traj.obs, traj.action)  # [H, N]

    _, logpi_dot = jax.jvp(logpi, (params,), (delta,))
    s = jax.lax.stop_gradient((traj.mask * logpi_dot).sum(0))  # [N] = <score_i, Delta>
    phi_bar = lambda th: (coef * logpi(th)).sum() / n  # noqa: E731
    g_bar, h_delta = jax.jvp(jax.grad(phi_bar), (params,), (delta,))
    return logpi, s, g_bar, h_delta


def batch_hvp(log_prob, params: Params, delta: Params, traj: Trajectory, coef: jax.Array) -> Params:
    """``v = (1/N) sum_i B(tau_i, theta) Delta`` (sheet §3.4), per trajectory, fused.

    ``B(tau, theta) Delta = g(tau) <grad log p(tau), Delta> + grad <g(tau), Delta>``.  The first
    term is ``grad_theta (1/N) sum_i s_i Phi_i(theta)`` with ``s_i = <grad log p(tau_i), Delta>``
    (one forward-mode pass, held constant); the second is ``jax.jvp`` of ``jax.grad`` of the
    batch-mean ``Phi`` (linear in the trajectories).  Memory O(P + H N), no Hessian materialised.
    """
    n = coef.shape[1]
    logpi, s, _, h_delta = _hvp_parts(log_prob, params, delta, traj, coef)
    cross = jax.grad(lambda th: (coef * s[None] * logpi(th)).sum() / n)(params)
    return jax.tree.map(jnp.add, cross, h_delta)


def batch_hvp_mean(
    log_prob, params: Params, delta: Params, traj: Trajectory, coef: jax.Array
) -> Params:
    """The reference code's *batch-mean* ("biased") correction: a product of batch means.

    ``v = g_bar <score_bar, Delta> + Hess(Phi_bar) Delta`` with ``g_bar = (1/N) sum_i g(tau_i)``
    and ``score_bar = (1/N) sum_i grad log p(tau_i)`` (sheet pitfall §5.1).  Since
    ``E[score] = 0``, the cross term's expectation is ``Cov(g, score) Delta / N``: it vanishes as
    the batch grows, so the estimator is biased for ``Hess J Delta`` but has a much smaller
    variance than :func:`batch_hvp`.  Unlike the reference code (garage's
    ``loss = -mean_t(log pi A)``) the cross term keeps the right sign and the per-trajectory scale
    (the reference's cross term is negated and scaled by ``1 / (N H)^2``); only the
    product-of-means structure is reproduced.
    """
    _, s, g_bar, h_delta = _hvp_parts(log_prob, params, delta, traj, coef)
    s_bar = s.mean()
    return jax.tree.map(lambda g, h: g * s_bar + h, g_bar, h_delta)


def hvp_one(log_prob, params: Params, delta: Params, obs, action, coef, mask) -> Params:
    """The sheet's literal per-trajectory ``B(tau, theta) Delta`` (one episode, ``[H, ...]``)."""

    def phi(th):
        return (coef * log_prob(th, obs, action)).sum()

    def logp(th):
        return (mask * log_prob(th, obs, action)).sum()

    g, hphi_delta = jax.jvp(jax.grad(phi), (params,), (delta,))
    _, score_dot_delta = jax.jvp(logp, (params,), (delta,))
    return jax.tree.map(lambda a, b: a * score_dot_delta + b, g, hphi_delta)


def batch_hvp_vmap(
    log_prob, params: Params, delta: Params, traj: Trajectory, coef: jax.Array
) -> Params:
    """``vmap(hvp_one)`` over the ``N`` episodes then mean (sheet §3.4 recipe; O(N P) memory)."""
    per = jax.vmap(lambda o, a, c, m: hvp_one(log_prob, params, delta, o, a, c, m), in_axes=1)(
        traj.obs, traj.action, coef, traj.mask
    )
    return jax.tree.map(lambda x: x.mean(0), per)


# --------------------------------------------------------------------------------- pytree algebra


def tree_axpy(a, x: Params, y: Params) -> Params:
    """``a x + y`` leaf-wise."""
    return jax.tree.map(lambda xi, yi: a * xi + yi, x, y)


def tree_lerp(w, x: Params, y: Params) -> Params:
    """``(1 - w) x + w y`` leaf-wise."""
    return jax.tree.map(lambda xi, yi: (1.0 - w) * xi + w * yi, x, y)


def normalized(d: Params) -> Params:
    """``d / max(||d||, 1e-12)`` with the global L2 norm over all leaves (sheet §3.5)."""
    norm = jnp.maximum(optax.global_norm(d), 1e-12)
    return jax.tree.map(lambda x: x / norm, d)


# --------------------------------------------------------------------------------- sampling + loop


def sample(
    config: PGCommonConfig, env, env_params, policy: Policy, params, key, num_episodes: int
) -> Trajectory:
    """``num_episodes`` fixed-horizon episodes at ``params`` from the shared engine."""
    return rollout_episodes(env, env_params, policy.act, params, key, num_episodes, config.horizon)


def check_eval_every(config: PGCommonConfig) -> int:
    """``eval_every`` must divide ``num_iterations`` (``make_train`` only; the runner and
    :func:`make_agent` do not use it)."""
    V.divides(config, "eval_every", config.num_iterations, "num_iterations")
    return config.eval_every


def counters(t_after, trajectories_per_iteration: int, horizon: int) -> dict:
    """Cumulative ``env_steps`` and ``trajectories`` after ``t_after`` iterations."""
    traj = t_after * trajectories_per_iteration
    return {"env_steps": traj * horizon, "trajectories": traj}


def make_agent(
    config: PGCommonConfig,
    env,
    env_params,
    policy: Policy,
    init: Callable[[jax.Array, PGHParams], Any],
    update: Callable[[Any, PGHParams], tuple[Any, dict]],
    trajectories_per_iteration: int,
) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` of one trajectory PG agent.

    ``init(key, hparams) -> state`` and ``update(state, hparams) -> (state, metrics)`` (one
    iteration) come from the agent; ``state.params`` is ``theta_t``.  ``evaluate(state, key)``
    returns ``eval_return``, the mean undiscounted return of ``config.eval_episodes``
    stochastic-policy episodes at ``theta_t`` (never at IGT's ``theta~_t`` or HARPG's ``q_t``,
    pitfall §5.4).  One update consumes ``trajectories_per_iteration x horizon`` env steps.
    """

    def evaluate(state, key):
        traj = sample(config, env, env_params, policy, state.params, key, config.eval_episodes)
        return {"eval_return": traj.episode_return.mean()}

    return Agent(
        init,
        scan_segment(update),
        evaluate,
        num_updates=config.num_iterations,
        steps_per_update=trajectories_per_iteration * config.horizon,
    )
