"""Continuous-time SDE tasks with closed-form value functions (gymnax functional API).

For martingale policy evaluation (Jia & Zhou, JMLR 2022; sheet ``shared/papers/martingale.md`` §8).
Each task is an *uncontrolled* 1-D diffusion on ``[0, T]`` observed on the grid ``t_k = k dt``,
``k = 0..K``, ``K = T / dt``; the 1-D action is a dummy that is ignored, so any fixed policy (e.g.
:func:`zero_policy`) evaluates the same value function.

Conventions (shared by every task, relied on by :mod:`rlsuite.agents.martingale`):

- observation ``[x, t, T - t]`` (state, time, time to go), so value features can see time;
- reward of step ``k`` = ``r(X_k) dt`` (left-point rule of the running reward), plus on the last
  step (``k = K - 1``) the discounted terminal payoff ``exp(-beta dt) h(X_K)``; that step is
  ``terminated`` (the horizon is a true terminal: ``J(T, .) = h``), so the discrete problem is an
  ordinary episodic one with per-step discount ``gamma = exp(-beta dt)``;
- ``params.dt`` and ``params.max_steps_in_episode = K`` are traced values: a batch of params with
  different ``dt`` (see :func:`dt_grid_params`) can be ``vmap``-ped through the engine's
  ``rollout_episodes`` with ``horizon = max K``; steps past an episode's own ``K`` are masked;
- ``scheme="exact"`` (default) samples the exact transition law (OU, GBM, BM); ``"euler"`` uses
  Euler-Maruyama (the sheet's §9 table was made with Euler steps);
- ``env.value(obs, params)`` is the closed-form value ``J(t, x)``; ``env.features(obs, params)``
  are linear features (``J = theta^T phi`` exactly where ``env.true_weights`` is finite);
  ``env.parametric_value(theta, obs, params)`` is the sheet's small parametric family with true
  parameter ``env.true_parameter(params)``.

Tasks (registered ids):

- ``diffusion:ou``  dX = -kappa X dt + sigma dW, r = x^2, discount beta > 0.  ``terminal="stationary"``
  (default) uses h = V (the infinite-horizon value) so ``J(t, x) = V(x) = x^2/(beta+2 kappa) +
  sigma^2/(beta(beta+2 kappa))`` on the finite horizon, exactly linear in ``[x^2, 1]``;
  ``terminal="zero"`` uses h = 0 and ``J = a(T-t) x^2 + c(T-t)``.
- ``diffusion:gbm`` dX = mu X dt + sigma X dW, h = x^p, r = 0 (or r = x^p with
  ``running_reward=True``): ``J = x^p exp(c_p (T-t))``, ``c_p = p mu + p(p-1) sigma^2/2 - beta``;
  parametric family ``x^p exp(theta (T-t))`` with true ``theta = c_p`` (r = 0 only).
- ``diffusion:bm-terminal`` dX = m dt + sigma dW, h = x^2, r = 0:
  ``J = exp(-beta (T-t)) ((x + m (T-t))^2 + sigma^2 (T-t))``; features ``[x^2, T-t]``, exact with
  weights ``(1, sigma^2)`` when ``m = beta = 0`` (NaN weights otherwise).

Deviations from the sheet: none in the dynamics or closed forms.  The initial state is drawn
uniformly from ``[x0_low, x0_high]`` (the sheet's §9 uses U[-2, 2] for OU; U[0.5, 1.5] for GBM is
our choice).  The reward is the left-point quadrature ``r(X_k) dt``, which contributes an O(dt)
bias on top of the scheme's bias (none for exact sampling).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.envs.registry import register
from rlsuite.envs.timegrid import check_dt, dt_grid_params, with_dt, zero_policy  # noqa: F401 (re-exported)

SCHEMES = ("exact", "euler")


# ----------------------------------------------------------------------------- base class


@struct.dataclass
class DiffusionState(environment.EnvState):
    x: jax.Array  # [1]
    time: jax.Array  # int step counter k


class Diffusion(environment.Environment):
    """Shared machinery: time grid, observation ``[x, t, T-t]``, terminal payoff, dummy action.

    Subclasses implement ``_drift_diffusion(x, p)`` (Euler), ``_exact_step(x, eps, p)``,
    ``running_reward(x, p)``, ``terminal_payoff(x, p)`` and ``value(obs, p)``.
    """

    def __init__(self, scheme: str = "exact"):
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme = scheme

    # -- observation helpers -------------------------------------------------------------
    @staticmethod
    def split_obs(obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``obs[..., 3] -> (x, t, tau)`` each ``[...]``."""
        return obs[..., 0], obs[..., 1], obs[..., 2]

    def _obs(self, x, time, params) -> jax.Array:
        t = time.astype(jnp.float32) * params.dt
        return jnp.concatenate([x, jnp.stack([t, params.horizon - t])]).astype(jnp.float32)

    # -- gymnax API ----------------------------------------------------------------------
    def reset_env(self, key, params):
        x = jax.random.uniform(key, (1,), jnp.float32, params.x0_low, params.x0_high)
        state = DiffusionState(x=x, time=jnp.int32(0))
        return self._obs(x, state.time, params), state

    def step_env(self, key, state, action, params):
        dt = params.dt
        eps = jax.random.normal(key, (1,), jnp.float32)
        if self.scheme == "exact":
            x_next = self._exact_step(state.x, eps, params)
        else:
            b, s = self._drift_diffusion(state.x, params)
            x_next = state.x + b * dt + s * jnp.sqrt(dt) * eps
        time = state.time + 1
        terminated = time >= params.max_steps_in_episode
        gamma = jnp.exp(-params.beta * dt)
        reward = self.running_reward(state.x, params)[0] * dt
        reward = reward + jnp.where(
            terminated, gamma * self.terminal_payoff(x_next, params)[0], 0.0
        )
        new = DiffusionState(x=x_next, time=time)
        return self._obs(x_next, time, params), new, reward, terminated, {}

    def is_truncated(self, state, params):
        return state.time >= params.max_steps_in_episode

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (3,), jnp.float32)

    def action_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    @property
    def num_actions(self) -> int:
        return 1

    # -- evaluation helpers ----------------------------------------------------------------
    def state_grid(self, params, num_x: int = 41, num_t: int = 4) -> jax.Array:
        """Observations on a grid of ``num_x`` states in ``[x0_low, x0_high]`` times ``num_t``
        times in ``[0, T)``: ``[num_t * num_x, 3]``."""
        xs = jnp.linspace(params.x0_low, params.x0_high, num_x)
        ts = jnp.linspace(0.0, params.horizon, num_t + 1)[:-1]
        X, Tm = jnp.meshgrid(xs, ts)
        return jnp.stack([X.ravel(), Tm.ravel(), params.horizon - Tm.ravel()], -1).astype(
            jnp.float32
        )

    def parametric_init(self, params) -> jax.Array:
        return jnp.zeros((self.num_parametric,), jnp.float32)

    num_parametric = 0

    def parametric_value(self, theta, obs, params):
        raise ValueError(f"{self.name} has no parametric value family; use value='linear' or 'mlp'")

    def true_parameter(self, params):
        raise ValueError(f"{self.name} has no parametric value family")


# ----------------------------------------------------------------------------- (A) OU


@struct.dataclass
class OUParams:
    dt: float = 0.01
    horizon: float = 3.0
    max_steps_in_episode: int = 300
    kappa: float = 1.0
    sigma: float = 1.0
    beta: float = 1.0
    x0_low: float = -2.0
    x0_high: float = 2.0


class OrnsteinUhlenbeck(Diffusion):
    """dX = -kappa X dt + sigma dW, running reward x^2, discount beta (sheet §8 A)."""

    def __init__(self, scheme: str = "exact", terminal: str = "stationary"):
        super().__init__(scheme)
        if terminal not in ("stationary", "zero"):
            raise ValueError(
                f"terminal must be 'stationary' (h = V) or 'zero' (h = 0), got {terminal!r}"
            )
        self.terminal = terminal

    @property
    def default_params(self) -> OUParams:
        return OUParams()

    def _drift_diffusion(self, x, p):
        return -p.kappa * x, p.sigma * jnp.ones_like(x)

    def _exact_step(self, x, eps, p):
        decay = jnp.exp(-p.kappa * p.dt)
        std = p.sigma * jnp.sqrt(-jnp.expm1(-2.0 * p.kappa * p.dt) / (2.0 * p.kappa))
        return x * decay + std * eps

    def running_reward(self, x, p):
        return x**2

    def stationary_value(self, x, p):
        """Infinite-horizon value ``V(x) = x^2/(beta+2kappa) + sigma^2/(beta(beta+2kappa))``."""
        k2 = p.beta + 2.0 * p.kappa
        return x**2 / k2 + p.sigma**2 / (p.beta * k2)

    def terminal_payoff(self, x, p):
        return self.stationary_value(x, p) if self.terminal == "stationary" else jnp.zeros_like(x)

    def value(self, obs, p):
        """Closed-form ``J(t, x)`` for observations ``[..., 3]`` -> ``[...]``."""
        x, _, tau = self.split_obs(obs)
        if self.terminal == "stationary":
            return self.stationary_value(x, p)
        k2 = p.beta + 2.0 * p.kappa
        a = -jnp.expm1(-k2 * tau) / k2
        one_minus = -jnp.expm1(-p.beta * tau) / p.beta
        c = (
            p.sigma**2
            / k2
            * (
                one_minus
                - jnp.exp(-p.beta * tau) * (-jnp.expm1(-2.0 * p.kappa * tau)) / (2.0 * p.kappa)
            )
        )
        return a * x**2 + c

    def features(self, obs, p):
        """``[x^2, 1]``: exact for ``terminal="stationary"``."""
        x = obs[..., 0]
        return jnp.stack([x**2, jnp.ones_like(x)], -1)

    def true_weights(self, p):
        k2 = p.beta + 2.0 * p.kappa
        w = jnp.stack([1.0 / k2, p.sigma**2 / (p.beta * k2)])
        return w if self.terminal == "stationary" else jnp.full((2,), jnp.nan)


# ----------------------------------------------------------------------------- (B) GBM


@struct.dataclass
class GBMParams:
    dt: float = 0.01
    horizon: float = 1.0
    max_steps_in_episode: int = 100
    mu: float = 0.2
    sigma: float = 0.3
    p: float = 2.0
    beta: float = 0.0
    x0_low: float = 0.5
    x0_high: float = 1.5


class GeometricBrownianMotion(Diffusion):
    """dX = mu X dt + sigma X dW, terminal payoff x^p, optional running reward x^p (sheet §8 B)."""

    num_parametric = 1

    def __init__(self, scheme: str = "exact", running_reward: bool = False):
        super().__init__(scheme)
        self.has_running_reward = bool(running_reward)

    @property
    def default_params(self) -> GBMParams:
        return GBMParams()

    def _drift_diffusion(self, x, p):
        return p.mu * x, p.sigma * x

    def _exact_step(self, x, eps, p):
        return x * jnp.exp((p.mu - 0.5 * p.sigma**2) * p.dt + p.sigma * jnp.sqrt(p.dt) * eps)

    def running_reward(self, x, p):
        return jnp.abs(x) ** p.p if self.has_running_reward else jnp.zeros_like(x)

    def terminal_payoff(self, x, p):
        return jnp.abs(x) ** p.p

    def c_p(self, p):
        return p.p * p.mu + 0.5 * p.p * (p.p - 1.0) * p.sigma**2 - p.beta

    def value(self, obs, p):
        x, _, tau = self.split_obs(obs)
        c = self.c_p(p)
        g = jnp.exp(c * tau)
        if self.has_running_reward:
            g = g + jnp.expm1(c * tau) / c
        return jnp.abs(x) ** p.p * g

    def features(self, obs, p):
        """``[x^p, x^p tau, x^p tau^2/2]``: a Taylor basis in ``tau`` (exact only as c_p tau -> 0)."""
        x, _, tau = self.split_obs(obs)
        xp = jnp.abs(x) ** p.p
        return jnp.stack([xp, xp * tau, 0.5 * xp * tau**2], -1)

    def true_weights(self, p):
        return jnp.full((3,), jnp.nan)

    def parametric_value(self, theta, obs, p):
        """The sheet's test family ``x^p exp(theta (T - t))``; ``theta: [1]``."""
        x, _, tau = self.split_obs(obs)
        return jnp.abs(x) ** p.p * jnp.exp(theta[0] * tau)

    def true_parameter(self, p):
        c = self.c_p(p)
        return jnp.reshape(jnp.where(self.has_running_reward, jnp.nan, c), (1,))


# ----------------------------------------------------------------------------- (C) BM terminal


@struct.dataclass
class BMParams:
    dt: float = 0.01
    horizon: float = 1.0
    max_steps_in_episode: int = 100
    m: float = 0.0
    sigma: float = 1.0
    beta: float = 0.0
    x0_low: float = -2.0
    x0_high: float = 2.0


class BrownianTerminal(Diffusion):
    """dX = m dt + sigma dW, terminal payoff x^2, no running reward (sheet §8 C)."""

    @property
    def default_params(self) -> BMParams:
        return BMParams()

    def _drift_diffusion(self, x, p):
        return p.m * jnp.ones_like(x), p.sigma * jnp.ones_like(x)

    def _exact_step(self, x, eps, p):
        return x + p.m * p.dt + p.sigma * jnp.sqrt(p.dt) * eps

    def running_reward(self, x, p):
        return jnp.zeros_like(x)

    def terminal_payoff(self, x, p):
        return x**2

    def value(self, obs, p):
        x, _, tau = self.split_obs(obs)
        return jnp.exp(-p.beta * tau) * ((x + p.m * tau) ** 2 + p.sigma**2 * tau)

    def features(self, obs, p):
        """``[x^2, T - t]``: exact when ``m = beta = 0``."""
        x, _, tau = self.split_obs(obs)
        return jnp.stack([x**2, tau], -1)

    def true_weights(self, p):
        ok = (p.m == 0) & (p.beta == 0)
        return jnp.where(ok, jnp.stack([jnp.ones_like(p.sigma), p.sigma**2]), jnp.nan)


# ----------------------------------------------------------------------------- registry


def _factory(cls, params_cls, ctor_keys):
    def make(dt: float | None = None, **kwargs):
        ctor = {k: kwargs.pop(k) for k in list(kwargs) if k in ctor_keys}
        env = cls(**ctor)
        fields = set(params_cls.__dataclass_fields__)
        bad = [k for k in kwargs if k not in fields]
        if bad:
            raise ValueError(
                f"{cls.__name__} has no parameter {bad[0]!r}; parameters: {sorted(fields - {'max_steps_in_episode'})}, "
                f"constructor options: {sorted(ctor_keys)}"
            )
        if "max_steps_in_episode" in kwargs:
            raise ValueError("set dt (and horizon), not max_steps_in_episode: K = horizon / dt")
        params = env.default_params.replace(**{k: float(v) for k, v in kwargs.items()})
        params = with_dt(params, params.dt if dt is None else dt)
        if (
            isinstance(env, OrnsteinUhlenbeck)
            and float(params.beta) <= 0
            and env.terminal == "stationary"
        ):
            raise ValueError(
                f"diffusion:ou with terminal='stationary' needs beta > 0, got beta={params.beta}"
            )
        return env, params

    return make


register(
    "diffusion:ou",
    _factory(OrnsteinUhlenbeck, OUParams, {"scheme", "terminal"}),
    "Ornstein-Uhlenbeck, reward x^2, discounted, closed-form value (martingale PE, sheet §8A)",
)
register(
    "diffusion:gbm",
    _factory(GeometricBrownianMotion, GBMParams, {"scheme", "running_reward"}),
    "Geometric Brownian motion, power payoff x^p, closed-form value (martingale PE, sheet §8B)",
)
register(
    "diffusion:bm-terminal",
    _factory(BrownianTerminal, BMParams, {"scheme"}),
    "Brownian motion with terminal reward x^2, closed-form value (martingale PE, sheet §8C)",
)
