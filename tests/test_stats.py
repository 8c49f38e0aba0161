"""rlsuite.core.stats against NumPy / SciPy references on fixed data."""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, trim_mean

from rlsuite.core import stats

RNG = np.random.default_rng(123)
X1 = RNG.normal(size=13)  # 13 runs: int(0.25 * 13) = 3 cut at each end
X2 = RNG.gamma(2.0, size=(9, 4))  # [runs, tasks]


def _reference_ci(x, statistic, n_boot, ci, seed):
    """The bootstrap spelled out: one index draw, then a plain loop over replicates and tasks."""
    x2 = x[:, None] if x.ndim == 1 else x
    n, t = x2.shape
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n, t))
    vals = []
    for b in range(n_boot):
        res = np.empty_like(x2)
        for j in range(t):
            res[:, j] = x2[idx[b, :, j], j]
        vals.append(statistic(res[:, 0] if x.ndim == 1 else res))
    return tuple(np.percentile(vals, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2]))


def _reference_pi(x, y):
    """P(X > Y) + 0.5 P(X = Y) by counting every pair, averaged over tasks."""
    x2, y2 = (x[:, None], y[:, None]) if x.ndim == 1 else (x, y)
    per_task = []
    for j in range(x2.shape[1]):
        wins = sum((a > b) + 0.5 * (a == b) for a in x2[:, j] for b in y2[:, j])
        per_task.append(wins / (len(x2) * len(y2)))
    return float(np.mean(per_task))


@pytest.mark.parametrize("x", [X1, X2, X1[:3], X1[:4], X1[:1]])
def test_iqm_matches_scipy_trim_mean(x):
    assert stats.iqm(x) == pytest.approx(trim_mean(x, 0.25, axis=None), rel=1e-12)


def test_iqm_along_axis():
    np.testing.assert_allclose(stats.iqm(X2, axis=0), trim_mean(X2, 0.25, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.iqm(X2, axis=1), trim_mean(X2, 0.25, axis=1), rtol=1e-12)


@pytest.mark.parametrize("x", [X1, X2])
@pytest.mark.parametrize("statistic", [np.mean, stats.iqm, np.max])  # np.max: the generic loop path
def test_bootstrap_ci_matches_loop(x, statistic):
    got = stats.bootstrap_ci(x, statistic, n_boot=300, ci=0.9, seed=7)
    np.testing.assert_allclose(got, _reference_ci(x, statistic, 300, 0.9, 7), rtol=1e-12)


def test_mean_and_iqm_ci_bracket_the_estimate():
    m, lo, hi = stats.mean_ci(X1, n_boot=500)
    assert m == pytest.approx(X1.mean()) and lo < m < hi
    assert (lo, hi) == stats.bootstrap_ci(X1, np.mean, n_boot=500)
    q, lo, hi = stats.iqm_ci(X2, n_boot=500)
    assert q == pytest.approx(trim_mean(X2, 0.25, axis=None)) and lo < q < hi


def test_bootstrap_ci_narrows_with_more_runs():
    small = RNG.normal(size=8)
    big = RNG.normal(size=512)
    lo_s, hi_s = stats.bootstrap_ci(small)
    lo_b, hi_b = stats.bootstrap_ci(big)
    assert hi_b - lo_b < 0.5 * (hi_s - lo_s)


def test_prob_improvement_matches_pair_count_and_mann_whitney():
    x = np.round(X1 + 0.4, 1)  # rounding makes ties, which count one half
    y = np.round(RNG.normal(size=10), 1)
    p, lo, hi = stats.prob_improvement(x, y, n_boot=400, seed=3)
    assert p == pytest.approx(_reference_pi(x, y), abs=1e-12)
    assert p == pytest.approx(mannwhitneyu(x, y).statistic / (len(x) * len(y)), abs=1e-12)
    # the CI: x and y runs resampled independently, x's indices drawn first
    rng = np.random.default_rng(3)
    ix = rng.integers(0, len(x), size=(400, len(x), 1))[..., 0]
    iy = rng.integers(0, len(y), size=(400, len(y), 1))[..., 0]
    vals = [_reference_pi(x[ix[b]], y[iy[b]]) for b in range(400)]
    np.testing.assert_allclose((lo, hi), np.percentile(vals, [2.5, 97.5]), rtol=1e-12)


def test_prob_improvement_2d_averages_tasks():
    y = RNG.gamma(2.0, size=(6, 4))
    p, lo, hi = stats.prob_improvement(X2, y, n_boot=200)
    assert p == pytest.approx(_reference_pi(X2, y), abs=1e-12) and lo <= p <= hi
    assert stats.prob_improvement(X1, X1, n_boot=50)[0] == 0.5
    assert stats.prob_improvement(X1 + 100, X1, n_boot=50) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: stats.bootstrap_ci([]), "at least one run"),
        (lambda: stats.bootstrap_ci([1.0, np.nan]), "finite"),
        (lambda: stats.bootstrap_ci(np.ones((2, 2, 2))), "shape"),
        (lambda: stats.bootstrap_ci([1.0, 2.0], n_boot=0), "n_boot"),
        (lambda: stats.bootstrap_ci([1.0, 2.0], ci=1.0), "ci"),
        (lambda: stats.prob_improvement(np.ones((3, 2)), np.ones((3, 3))), "same tasks"),
        (lambda: stats.iqm([]), "at least one value"),
    ],
)
def test_bad_input_fails_early(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_fmt_ci():
    assert stats.fmt_ci(12.34, 11.02, 13.61) == "12.3 [11.0, 13.6]"
    assert stats.fmt_ci(0.5123, 0.49, 0.535) == "0.512 [0.490, 0.535]"
    assert stats.fmt_ci(480.2, 310.0, 600.4) == "480 [310, 600]"
    assert stats.fmt_ci(1.0, 1.0, 1.0) == "1.00 [1.00, 1.00]"
