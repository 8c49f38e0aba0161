"""Returns, GAE and TD(lambda) targets, written for one time-major stream.

Every function takes arrays with time as the leading axis (``[T]`` or ``[T, N, ...]``; trailing
axes broadcast) and uses the rlax naming: ``x_t`` is indexed like the transition ``t``.
Termination and truncation are separate: ``terminated_t`` cuts the bootstrap (no value after a
true terminal state), ``done_t = terminated_t | truncated_t`` cuts the recursion between
episodes, and on a truncated step the target bootstraps from ``next_value_t = V(next_obs_t)``,
the value of the pre-reset final observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _f(x):
    return jnp.asarray(x, jnp.float32)


def gae(reward_t, value_t, next_value_t, terminated_t, done_t, gamma, lam):
    """Generalised advantage estimation.

    ``delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t)`` and
    ``A_t = delta_t + gamma lam (1 - done_t) A_{t+1}`` with ``A_T = 0``.

    Returns ``(advantages_t, value_targets_t)`` where ``targets = A + V``.
    """
    reward_t, value_t, next_value_t = _f(reward_t), _f(value_t), _f(next_value_t)
    not_term = 1.0 - _f(terminated_t)
    not_done = 1.0 - _f(done_t)
    delta_t = reward_t + gamma * not_term * next_value_t - value_t

    def body(a_next, x):
        delta, nd = x
        a = delta + gamma * lam * nd * a_next
        return a, a

    _, adv = jax.lax.scan(body, jnp.zeros_like(delta_t[0]), (delta_t, not_done), reverse=True)
    return adv, adv + value_t


def td_lambda(reward_t, next_value_t, terminated_t, done_t, gamma, lam):
    """TD(lambda) value targets (the lambda-return), bootstrapping from ``V(next_obs_t)``.

    ``G_t = r_t + gamma (1 - terminated_t) [(1 - lam) V(s'_t) + lam * (done_t ? V(s'_t) : G_{t+1})]``
    and at the last step ``G_{T-1}`` bootstraps fully from ``V(s'_{T-1})``.
    """
    reward_t, next_value_t = _f(reward_t), _f(next_value_t)
    not_term = 1.0 - _f(terminated_t)
    done_t = _f(done_t)

    def body(g_next, x):
        r, v_next, nt, d = x
        cont = d * v_next + (1.0 - d) * g_next
        g = r + gamma * nt * ((1.0 - lam) * v_next + lam * cont)
        return g, g

    _, g = jax.lax.scan(body, next_value_t[-1], (reward_t, next_value_t, not_term, done_t), reverse=True)
    return g


def discounted_returns(reward_t, discount_t, bootstrap):
    """``G_t = r_t + discount_t G_{t+1}``, ``G_T = bootstrap`` (``discount_t`` already includes
    gamma and any episode cut)."""
    reward_t, discount_t = _f(reward_t), _f(discount_t)

    def body(g_next, x):
        r, d = x
        g = r + d * g_next
        return g, g

    _, g = jax.lax.scan(body, _f(bootstrap) * jnp.ones_like(reward_t[0]), (reward_t, discount_t), reverse=True)
    return g


def reward_to_go(reward_t, mask_t, gamma, discount_from: str = "zero"):
    """Reward-to-go of fixed-horizon episodes (episode mode; ``mask_t`` from ``Trajectory``).

    ``discount_from="zero"``: ``R_t = sum_{h>=t} gamma^h r_h m_h`` (the form of Fatkhullin et al.
    2023, discounted from the episode start); ``"t"``: ``R_t = sum_{h>=t} gamma^(h-t) r_h m_h``
    (garage / most code).
    """
    if discount_from not in ("zero", "t"):
        raise ValueError(f"discount_from must be 'zero' or 't', got {discount_from!r}")
    r = _f(reward_t) * _f(mask_t)
    g = discounted_returns(r, gamma * jnp.ones_like(r), 0.0)
    if discount_from == "zero":
        horizon = r.shape[0]
        scale = gamma ** jnp.arange(horizon, dtype=jnp.float32)
        g = g * scale.reshape((horizon,) + (1,) * (r.ndim - 1))
    return g
