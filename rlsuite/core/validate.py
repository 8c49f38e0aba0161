"""The one place for input checks: each raises one ``ValueError`` naming the bad value.

Two layers: ``require_*(label, value)`` checks a bare value; the config helpers
(``positive_ints(config, "num_envs", ...)``) check dataclass fields and name them as
``ConfigClass.field``.  Agents call these from ``make`` so bad input fails before any tracing.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _label(obj: Any, name: str) -> str:
    return f"{type(obj).__name__}.{name}"


# ----------------------------------------------------------------------------- bare values


def require_positive_int(label: str, value: Any) -> int:
    """``value`` must be an int > 0 (a float such as ``4.0`` or ``2.5`` is refused, not truncated)."""
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{label} must be a positive integer, got {value!r}")
    return int(value)


def require_nonneg_int(label: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{label} must be a non-negative integer, got {value!r}")
    return int(value)


def require_positive(label: str, value: Any) -> float:
    """``value`` must be a finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{label} must be a positive number, got {value!r}")
    return value


def require_in_range(label: str, value: Any, lo: float, hi: float, lo_open: bool = False,
                     hi_open: bool = False) -> float:
    """``value`` in ``[lo, hi]`` (``(`` / ``)`` with ``lo_open`` / ``hi_open``)."""
    ok = _is_number(value) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{label} must be in {interval}, got {value!r}")
    return value


def require_choice(label: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{label}={value!r} is unknown; choose one of {allowed}")
    return value


def require_sizes(label: str, value: Any) -> tuple[int, ...]:
    """A non-empty sequence of positive ints (hidden-layer sizes)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0 or not all(
        _is_int(h) and h > 0 for h in value
    ):
        raise ValueError(f"{label} must be a non-empty sequence of positive integers, got {value!r}")
    return tuple(int(h) for h in value)


def require_divides(label: str, divisor: int, total: int, total_label: str) -> None:
    if total % divisor:
        raise ValueError(f"{label}={divisor} must divide {total_label}={total}")


# ----------------------------------------------------------------------------- config fields


def positive_ints(config: Any, *names: str) -> None:
    for n in names:
        require_positive_int(_label(config, n), getattr(config, n))


def positive(config: Any, *names: str) -> None:
    for n in names:
        require_positive(_label(config, n), getattr(config, n))


def sizes(config: Any, *names: str) -> None:
    for n in names:
        require_sizes(_label(config, n), getattr(config, n))


def choice(config: Any, name: str, allowed: Iterable[Any]) -> None:
    require_choice(_label(config, name), getattr(config, name), allowed)


def in_range(config: Any, name: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    require_in_range(_label(config, name), getattr(config, name), lo, hi, lo_open, hi_open)


def divides(config: Any, name: str, total: int, total_label: str) -> None:
    require_divides(_label(config, name), getattr(config, name), total, total_label)


# ----------------------------------------------------------------------------- value ranges

class Range(tuple):
    """A documented valid interval ``(lo, hi, lo_open, hi_open)``; ``str`` gives ``(0, inf)`` etc.

    Agent modules declare one table ``HPARAM_RANGES = {"lr": POSITIVE, "gamma": DISCOUNT, ...}``
    (hparam name -> Range); :func:`check_ranges` is the one function that checks it (at ``make``
    for the config-derived defaults, in the runner for ``--hparam`` overrides and in
    ``make_train`` for concrete hparams).  An infinite bound is allowed only when closed
    (``max_grad_norm = inf``: no clipping).  NaN passes the range check on purpose (the Python API
    uses NaN hparams to exercise the runner's NaN stop, which reports it); the CLI refuses
    non-finite ``--hparam`` values when it parses them.
    """

    def __new__(cls, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
        return super().__new__(cls, (float(lo), float(hi), bool(lo_open), bool(hi_open)))

    def __str__(self) -> str:
        lo, hi, lo_open, hi_open = self
        f = lambda x: "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"  # noqa: E731
        return f"{'(' if lo_open else '['}{f(lo)}, {f(hi)}{')' if hi_open else ']'}"

    def contains(self, x: float) -> bool:
        lo, hi, lo_open, hi_open = self
        if math.isnan(x):  # left to the runner's NaN stop (names metric, segment, seeds); the CLI refuses NaN
            return True
        return (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)


POSITIVE = Range(0, math.inf, True, True)  # learning rates, step sizes, widths (finite, > 0)
POSITIVE_OR_INF = Range(0, math.inf, True, False)  # clips where inf means "none"
NONNEG = Range(0, math.inf, False, True)  # coefficients, weight decay (finite, >= 0)
NONNEG_OR_INF = Range(0, math.inf, False, False)
DISCOUNT = Range(0, 1, True, False)  # (0, 1]
UNIT = Range(0, 1)  # [0, 1]: lambdas, mixing weights
UNIT_OPEN = Range(0, 1, True, True)  # (0, 1): expectiles
RATE = Range(0, 1, True, False)  # (0, 1]: EMA rates


def check_ranges(values: Any, ranges: Any, label=lambda name: name) -> None:
    """Check concrete numeric ``values`` (a mapping or dataclass; array leaves are checked
    element-wise, e.g. a sweep's stacked hparams) against ``ranges`` (name -> :class:`Range`).
    Names without a range, non-numeric and traced values are skipped.  Raises one ``ValueError``
    naming the field, its valid range and the bad value."""
    import numpy as np

    if not ranges:
        return
    items = values.items() if hasattr(values, "items") else (
        (n, getattr(values, n)) for n in getattr(values, "__dataclass_fields__", {}))
    for name, v in items:
        rng = ranges.get(name)
        if rng is None or _is_traced(v):
            continue
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        bad = [x for x in arr.reshape(-1).tolist() if not rng.contains(x)]
        if bad:
            got = v if arr.ndim == 0 and not hasattr(v, "shape") else bad[0]
            raise ValueError(f"{label(name)} must be in {rng}, got {got!r}")


def _is_traced(v: Any) -> bool:
    try:
        import jax

        return isinstance(v, jax.core.Tracer)
    except Exception:  # noqa: BLE001
        return False
