"""Aggregate statistics with bootstrap confidence intervals: the one module every table uses.

Follows rliable (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021)
in its definitions, written once here in NumPy instead of adding rliable as a dependency (rliable
1.2.0 requires ``arch`` (and through it ``statsmodels``), which constraints.txt does not pin, for
two estimators that take a few lines each):

* ``iqm``: interquartile mean, ``scipy.stats.trim_mean(x, 0.25)`` semantics -- sort, drop
  ``int(0.25 * n)`` values at each end, average the rest (``axis=None`` pools all scores).
* ``bootstrap_ci``: percentile bootstrap over runs.  A 2-D ``[runs, tasks]`` array is resampled
  *stratified* like rliable's ``StratifiedBootstrap``: each task's runs are resampled
  independently, and ``statistic`` sees the whole resampled ``[runs, tasks]`` matrix.
* ``prob_improvement``: ``P(X > Y) + 0.5 P(X = Y)`` (the Mann-Whitney U statistic divided by
  ``n * m``), averaged over tasks, with a bootstrap CI that resamples ``x`` and ``y`` runs
  independently (stratified per task).

Random-number contract (tests reproduce it with a hand-written loop): ``rng =
np.random.default_rng(seed)``; bootstrap indices are drawn as one array ``rng.integers(0, n,
size=(n_boot, n, tasks))`` (a 1-D input is one task); ``prob_improvement`` draws the ``x`` indices
first, then the ``y`` indices.  The interval is ``np.percentile`` of the ``n_boot`` statistics at
``100 * (1 - ci) / 2`` and ``100 * (1 + ci) / 2``.

Deviation from rliable: its default is 50,000 bootstrap replicates (``reps``); ours is 2,000,
which gives the same interval to about two significant figures on our run counts (3-64 seeds)
at a fraction of the cost; pass ``n_boot`` to raise it.

NumPy only (no JAX import), so results tables can be built without initialising a backend.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from rlsuite.core.validate import require_in_range, require_positive_int

__all__ = ["iqm", "bootstrap_ci", "mean_ci", "iqm_ci", "prob_improvement", "fmt_ci"]

_MAX_ELEMS = 1 << 24  # bootstrap work is chunked to about this many array elements


def _as_scores(label: str, x, allow_2d: bool = True) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in ((1, 2) if allow_2d else (1,)):
        raise ValueError(f"{label} must be a 1-D array of runs{' or 2-D [runs, tasks]' if allow_2d else ''}, "
                         f"got shape {a.shape}")
    if a.size == 0 or a.shape[0] == 0:
        raise ValueError(f"{label} must hold at least one run, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)].ravel()[0]
        raise ValueError(f"{label} must be finite, got {bad!r} among its values")
    return a


def iqm(x, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: mean of the middle 50% (25% trimmed at each end), ``trim_mean`` semantics.

    ``axis=None`` pools every score (rliable's aggregate over ``[runs, tasks]``).
    """
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a = a.ravel()
        axis = 0
    n = a.shape[axis]
    if n == 0:
        raise ValueError(f"iqm needs at least one value along axis {axis}, got shape {a.shape}")
    cut = int(0.25 * n)
    a = np.sort(a, axis=axis)
    kept = np.take(a, np.arange(cut, n - cut), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def _fast(statistic: Callable) -> bool:
    return statistic in (np.mean, np.median, iqm)


def _apply(statistic: Callable, res: np.ndarray, squeeze: bool) -> np.ndarray:
    """``statistic`` of each replicate in ``res`` ([b, runs, tasks]) -> [b]."""
    if squeeze:
        res = res[..., 0]
    if _fast(statistic):
        return np.asarray(statistic(res.reshape(res.shape[0], -1), axis=1), dtype=np.float64)
    return np.array([float(statistic(r)) for r in res], dtype=np.float64)


def _check_boot(n_boot, ci) -> None:
    require_positive_int("n_boot", n_boot)
    require_in_range("ci", ci, 0.0, 1.0, lo_open=True, hi_open=True)


def _interval(vals: np.ndarray, ci: float) -> tuple[float, float]:
    lo, hi = np.percentile(vals, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def bootstrap_ci(x, statistic: Callable = np.mean, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap ``(lo, hi)`` of ``statistic`` over runs (stratified per task for 2-D)."""
    a = _as_scores("x", x)
    _check_boot(n_boot, ci)
    squeeze = a.ndim == 1
    a2 = a[:, None] if squeeze else a
    n, t = a2.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n, t))
    cols = np.arange(t)
    chunk = max(1, _MAX_ELEMS // (n * t))
    vals = np.concatenate([_apply(statistic, a2[idx[i:i + chunk], cols], squeeze)
                           for i in range(0, n_boot, chunk)])
    return _interval(vals, ci)


def mean_ci(x, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean over all scores and its percentile-bootstrap CI."""
    a = _as_scores("x", x)
    lo, hi = bootstrap_ci(a, np.mean, n_boot=n_boot, ci=ci, seed=seed)
    return float(a.mean()), lo, hi


def iqm_ci(x, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(iqm, lo, hi)``: the interquartile mean over all scores and its bootstrap CI."""
    a = _as_scores("x", x)
    lo, hi = bootstrap_ci(a, iqm, n_boot=n_boot, ci=ci, seed=seed)
    return iqm(a), lo, hi


def _pi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) averaged over tasks; x [..., n, T], y [..., m, T] -> [...]."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (gt + 0.5 * eq).mean(axis=-1)


def prob_improvement(x, y, n_boot: int = 2000, ci: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """``(p, lo, hi)``: probability that a run of X beats a run of Y, with a bootstrap CI.

    ``x`` [n] or [n, tasks] and ``y`` [m] or [m, tasks] (same number of tasks; run counts may
    differ).  ``p`` averages the per-task Mann-Whitney probability over tasks, as rliable does.
    """
    a = _as_scores("x", x)
    b = _as_scores("y", y)
    if a.ndim != b.ndim or (a.ndim == 2 and a.shape[1] != b.shape[1]):
        raise ValueError(f"x and y must have the same tasks, got shapes {a.shape} and {b.shape}")
    _check_boot(n_boot, ci)
    a2, b2 = (a[:, None], b[:, None]) if a.ndim == 1 else (a, b)
    (n, t), m = a2.shape, b2.shape[0]
    p = float(_pi(a2, b2))
    rng = np.random.default_rng(seed)
    ix = rng.integers(0, n, size=(n_boot, n, t))
    iy = rng.integers(0, m, size=(n_boot, m, t))
    cols = np.arange(t)
    chunk = max(1, _MAX_ELEMS // (n * m * t))
    vals = np.concatenate([_pi(a2[ix[i:i + chunk], cols], b2[iy[i:i + chunk], cols])
                           for i in range(0, n_boot, chunk)])
    lo, hi = _interval(vals, ci)
    return p, lo, hi


def fmt_ci(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"12.3 [11.0, 13.6]"``: the estimate and its CI, rounded to the decimal place that gives the
    CI's half-width ``digits`` significant figures (``digits + 1`` figures of the mean if the CI is
    empty)."""
    vals = (mean, lo, hi)
    if not all(math.isfinite(v) for v in vals):
        return f"{mean} [{lo}, {hi}]"
    half = (hi - lo) / 2
    if half > 0:
        decimals = max(0, digits - 1 - math.floor(math.log10(half)))
    elif mean != 0:
        decimals = max(0, digits - math.floor(math.log10(abs(mean))))
    else:
        decimals = 0
    return f"{mean:.{decimals}f} [{lo:.{decimals}f}, {hi:.{decimals}f}]"
