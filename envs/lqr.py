"""1-D linear-quadratic regulator and its one-step bandit variant (Bayesian PG experiments).

Ghavamzadeh, Engel, Valko, "Bayesian Policy Gradient and Actor-Critic Algorithms", JMLR 2016,
Sec. 6 (sheet ``shared/papers/bayesian_pg.md`` Sec. 7).  The sheet recalls the task from
memory; every constant below is marked "unverified" there and is a parameter here:

- ``x_0 ~ N(0.3, 0.001)``; ``x_{t+1} = x_t + a_t + n_t``, ``n_t ~ N(0, 0.01)`` (both read as
  *variances*, as the sheet does);
- ``r_t = -(x_t^2 + 0.1 a_t^2)``;
- episodes of ``max_steps_in_episode = 20`` steps (time limit = truncation; the task never
  terminates).

``lqr:bandit`` is the same system with one step (``H = 1``), the sheet's stand-in for the
paper's continuous-action bandit.

:func:`lqr_exact_return` is the closed-form expected discounted return ``J(theta)`` of the
linear-Gaussian policy ``a ~ N(lambda x, sigma^2)``, ``theta = (lambda, log sigma)``; its
``jax.grad`` is the exact policy gradient used by the BPG accuracy tests and experiments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.envs.registry import register


@struct.dataclass
class LQRState(environment.EnvState):
    x: jax.Array
    time: int


@struct.dataclass
class LQRParams(environment.EnvParams):
    x0_mean: float = 0.3
    x0_var: float = 0.001
    noise_var: float = 0.01
    action_cost: float = 0.1
    max_steps_in_episode: int = 20


class LQR1D(environment.Environment[LQRState, LQRParams]):
    """``x' = x + a + n``, reward ``-(x^2 + c a^2)``; observation ``[x]``, action ``[a]`` (unbounded)."""

    def __init__(self, horizon: int = 20):
        super().__init__()
        self.horizon = int(horizon)

    @property
    def default_params(self) -> LQRParams:
        return LQRParams(max_steps_in_episode=self.horizon)

    def reset_env(self, key, params: LQRParams):
        x = params.x0_mean + jnp.sqrt(params.x0_var) * jax.random.normal(key, ())
        state = LQRState(x=x, time=0)
        return self.get_obs(state), state

    def step_env(self, key, state: LQRState, action, params: LQRParams):
        a = jnp.reshape(jnp.asarray(action, jnp.float32), ())
        reward = -(state.x**2 + params.action_cost * a**2)
        x = state.x + a + jnp.sqrt(params.noise_var) * jax.random.normal(key, ())
        state = LQRState(x=x, time=state.time + 1)
        return self.get_obs(state), state, reward, jnp.array(False), {}

    def get_obs(self, state: LQRState, params=None, key=None):
        return jnp.reshape(state.x, (1,)).astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return jnp.array(False)

    @property
    def name(self) -> str:
        return "lqr-1d" if self.horizon != 1 else "lqr-bandit"

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)

    def observation_space(self, params) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)


def lqr_exact_return(theta: jax.Array, params: LQRParams, gamma: float = 1.0, horizon: int | None = None) -> jax.Array:
    """Closed-form ``J(theta) = E[sum_{t<H} gamma^t r_t]`` for ``a ~ N(lambda x, sigma^2)``.

    ``theta = (lambda, log sigma)``.  With ``m_t = E[x_t^2]``: ``m_0 = mu_0^2 + v_0``,
    ``m_{t+1} = (1 + lambda)^2 m_t + sigma^2 + sigma_n^2`` and
    ``J = -sum_t gamma^t [(1 + c lambda^2) m_t + c sigma^2]``.  ``horizon`` defaults to
    ``params.max_steps_in_episode`` (must be a Python int).
    """
    H = int(params.max_steps_in_episode if horizon is None else horizon)
    lam, sigma2 = theta[0], jnp.exp(2.0 * theta[1])
    c = params.action_cost

    def body(m, t):
        cost = (1.0 + c * lam**2) * m + c * sigma2
        return (1.0 + lam) ** 2 * m + sigma2 + params.noise_var, gamma**t * cost

    m0 = params.x0_mean**2 + params.x0_var
    _, costs = jax.lax.scan(body, jnp.asarray(m0, jnp.float32), jnp.arange(H, dtype=jnp.float32))
    return -costs.sum()


def lqr_exact_gradient(theta: jax.Array, params: LQRParams, gamma: float = 1.0, horizon: int | None = None) -> jax.Array:
    """``jax.grad`` of :func:`lqr_exact_return` w.r.t. ``theta``: the true policy gradient ``[2]``."""
    return jax.grad(lqr_exact_return)(jnp.asarray(theta, jnp.float32), params, gamma, horizon)


def lqr_exact_fisher(theta: jax.Array, params: LQRParams, horizon: int | None = None) -> jax.Array:
    """Exact per-step Fisher ``G = E[sum_{t<H} u_t u_t^T]`` of the linear-Gaussian policy, ``[2, 2]``.

    With ``u_t = (eps_t x_t / sigma, eps_t^2 - 1)``, ``eps_t ~ N(0, 1)``:
    ``G = diag(sum_t m_t / sigma^2, 2 H)`` (``m_t = E[x_t^2]`` as in :func:`lqr_exact_return`).
    This is also ``E[u(xi) u(xi)^T]`` of the trajectory score (cross-time terms vanish).
    """
    H = int(params.max_steps_in_episode if horizon is None else horizon)
    lam, sigma2 = theta[0], jnp.exp(2.0 * theta[1])

    def body(m, _):
        return (1.0 + lam) ** 2 * m + sigma2 + params.noise_var, m

    m0 = params.x0_mean**2 + params.x0_var
    _, ms = jax.lax.scan(body, jnp.asarray(m0, jnp.float32), None, length=H)
    return jnp.diag(jnp.stack([ms.sum() / sigma2, 2.0 * H]))


def make_lqr(horizon: int = 20, **overrides):
    """``(env, params)`` for the 1-D LQR; ``overrides`` replace :class:`LQRParams` fields."""
    if int(horizon) != horizon or int(horizon) <= 0:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    env = LQR1D(int(horizon))
    params = env.default_params
    bad = [k for k in overrides if k not in LQRParams.__dataclass_fields__]
    if bad:
        raise ValueError(f"lqr has no parameter {bad[0]!r}; its parameters are {sorted(LQRParams.__dataclass_fields__)}")
    if "max_steps_in_episode" in overrides and overrides["max_steps_in_episode"] != horizon:
        raise ValueError("set the episode length with horizon=..., not max_steps_in_episode")
    return env, params.replace(**overrides)


def make_bandit(**overrides):
    """The one-step (``H = 1``) LQR used as the continuous-action bandit."""
    return make_lqr(horizon=1, **overrides)


register("lqr:lqr-1d", make_lqr, "1-D LQR, x'=x+a+n, r=-(x^2+0.1a^2), 20 steps (Bayesian PG, Ghavamzadeh et al. 2016)")
register("lqr:bandit", make_bandit, "one-step 1-D LQR: continuous-action bandit (Bayesian PG gradient-accuracy task)")
