"""Time grids of the continuous-time (SDE) tasks: validating a step size ``dt`` against the
horizon, stacking task parameters over several ``dt`` for ``vmap``, and the zero policy of the
uncontrolled tasks.

Kept apart from :mod:`rlsuite.envs.diffusion` (which re-exports all of it) because it needs only
JAX: the martingale agent imports it at module load, and gymnax, which the task classes subclass,
takes over a second to import.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

# ----------------------------------------------------------------------------- dt handling


def check_dt(dt: float, horizon: float) -> int:
    """Validate a concrete ``dt`` for horizon ``T`` and return ``K = T / dt``.

    Raises ``ValueError`` for ``dt <= 0``, ``dt > T`` or a ``dt`` that does not divide ``T``.
    """
    try:
        dt_f, T = float(dt), float(horizon)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(f"dt must be a concrete number to validate, got {dt!r}") from None
    if not math.isfinite(dt_f) or dt_f <= 0.0:
        raise ValueError(f"dt must be positive, got dt={dt!r}")
    if not math.isfinite(T) or T <= 0.0:
        raise ValueError(f"horizon must be positive, got horizon={horizon!r}")
    if dt_f > T * (1 + 1e-9):
        raise ValueError(f"dt={dt!r} is larger than the horizon T={horizon!r}")
    k = round(T / dt_f)
    if k < 1 or abs(k * dt_f - T) > 1e-6 * T:
        raise ValueError(
            f"dt={dt!r} must divide the horizon T={horizon!r} (T/dt={T / dt_f:.6g} is not an integer)"
        )
    return k


def with_dt(params, dt: float):
    """``params`` with a new (validated) ``dt`` and the matching ``max_steps_in_episode``."""
    k = check_dt(dt, params.horizon)
    return params.replace(dt=jnp.float32(dt), max_steps_in_episode=jnp.int32(k))


def dt_grid_params(params, dts) -> tuple[Any, int]:
    """Stack ``params`` over the step sizes ``dts`` for ``vmap``.

    Returns ``(batched_params, max_K)``: run ``rollout_episodes`` (under ``vmap`` over the params)
    with ``horizon = max_K``; each path is masked after its own ``K = T / dt`` steps.
    """
    dts = [float(d) for d in dts]
    if not dts:
        raise ValueError("dts must hold at least one step size")
    ks = [check_dt(d, params.horizon) for d in dts]
    batched = jax.tree.map(
        lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *[with_dt(params, d) for d in dts]
    )
    return batched, max(ks)


def zero_policy(policy_params, obs: jax.Array, key: jax.Array):
    """The (ignored) dummy action for the uncontrolled tasks: ``zeros[N, 1]``, no extras."""
    del policy_params, key
    return jnp.zeros(obs.shape[:-1] + (1,), jnp.float32), None
