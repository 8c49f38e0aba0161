"""Oblivious gradient-boosted trees inside jit (rlsuite.agents.trees) against NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.agents import trees as T

# ----------------------------------------------------------------------------- NumPy references


def np_candidates(x, n_bins):
    n = x.shape[0]
    b = min(n_bins, n)
    q = np.quantile(x, np.linspace(0, 1, b), axis=0, method="lower").T
    valid = np.concatenate([np.ones((x.shape[1], 1), bool), q[:, 1:] != q[:, :-1]], axis=1)
    return q, valid


def np_node_score(gl, gr, score):
    s = 0.0
    for side in (gl, gr):
        if len(side):
            s += len(side) * float((side.mean(0) ** 2).sum())
    return np.sqrt(s) if score == "cosine" else s


def np_fit(x, g, depth, n_bins, score, categorical=()):
    """Brute force: every (feature, candidate) at every level, looping over nodes with masks."""
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    cand, valid = np_candidates(np.asarray(x, np.float32), n_bins)
    cand = cand.astype(np.float32).astype(np.float64)
    gs = (g - g.mean(0)) / (g.std(0) + 1e-8) if score == "l2" else g
    node = np.zeros(len(x), int)
    feats, thrs = [], []
    all_scores = []
    for d in range(depth):
        scores = np.full(cand.shape, -np.inf)
        for f in range(x.shape[1]):
            for j in range(cand.shape[1]):
                if not valid[f, j] or any(ff == f and tt == cand[f, j] for ff, tt in zip(feats, thrs)):
                    continue
                c = cand[f, j]
                right = (x[:, f] == c) if f in categorical else (x[:, f] > c)
                s = sum(np_node_score(gs[(node == k) & ~right], gs[(node == k) & right], score) for k in range(2**d))
                scores[f, j] = s
        all_scores.append(scores)
        flat = scores.ravel()  # first candidate within the tie tolerance of the best, as the fitter
        k = int(np.argmax(flat >= flat.max() - T.SCORE_RTOL * abs(flat.max())))
        f, c = k // cand.shape[1], cand[k // cand.shape[1], k % cand.shape[1]]
        right = (x[:, f] == c) if f in categorical else (x[:, f] > c)
        node = 2 * node + right
        feats.append(f)
        thrs.append(c)
    leaves = np.zeros((2**depth, g.shape[1]))
    for k in range(2**depth):
        if (node == k).any():
            leaves[k] = g[node == k].mean(0)
    return feats, thrs, leaves, all_scores


def py_traverse(ens, x):
    """Python loop over trees and levels for one state."""
    out = np.array(ens.bias, np.float64)
    for t in range(int(ens.n_trees)):
        leaf = 0
        for d in range(ens.depth):
            v, thr = x[int(ens.feat[t, d])], float(ens.thr[t, d])
            bit = (v == thr) if bool(ens.is_cat[t, d]) else (v > thr)
            leaf = 2 * leaf + int(bit)
        out -= np.asarray(ens.lr[t]) * np.asarray(ens.leaves[t, leaf])
    return out


# ----------------------------------------------------------------------------- tests

fit = jax.jit(T.fit_tree, static_argnames=("depth", "n_bins", "score", "generator", "categorical", "min_data_in_leaf"))


def test_tree_recovers_piecewise_constant_target():
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 10, (2000, 4)) / 10).astype(np.float32)  # every value is a candidate
    y = np.where(x[:, 2] > 0.3, 2.0, -1.0) + np.where(x[:, 0] > 0.1, 0.5, 0.0)
    g = -(y - 0.0)[:, None]  # squared-loss gradient at F = 0
    tree = fit(jnp.asarray(x), jnp.asarray(g, jnp.float32), depth=2, n_bins=64, score="cosine")
    ens = T.add_tree(T.init_ensemble(4, 2, 1), tree, 1.0)
    pred = np.asarray(T.predict(ens, jnp.asarray(x)))[:, 0]
    assert sorted(np.asarray(tree.feat).tolist()) == [0, 2]
    thr = dict(zip(np.asarray(tree.feat).tolist(), np.asarray(tree.thr).tolist()))
    np.testing.assert_allclose([thr[0], thr[2]], [0.1, 0.3], rtol=1e-6)
    np.testing.assert_allclose(pred, y, atol=1e-5)  # per-leaf means of the residuals = the target


@pytest.mark.parametrize("score", ["cosine", "l2"])
def test_histogram_fitter_matches_brute_force_numpy(score):
    rng = np.random.default_rng(1 if score == "cosine" else 2)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1] * 2)  # ties and duplicate candidates
    g = rng.normal(size=(120, 2)).astype(np.float32)
    g[:, 0] += 2.0 * (x[:, 0] > 0.2)
    tree = fit(jnp.asarray(x), jnp.asarray(g), depth=3, n_bins=16, score=score)
    feats, thrs, leaves, _ = np_fit(x, g, 3, 16, score)
    assert np.asarray(tree.feat).tolist() == feats
    np.testing.assert_allclose(np.asarray(tree.thr), thrs, rtol=0, atol=0)
    np.testing.assert_allclose(np.asarray(tree.leaves), leaves, rtol=1e-5, atol=1e-6)


def test_categorical_equality_split_matches_brute_force():
    rng = np.random.default_rng(3)
    x = np.stack([rng.integers(0, 5, 300), rng.normal(size=300)], 1).astype(np.float32)
    g = (np.where(x[:, 0] == 3, -2.0, 0.5) + 0.1 * rng.normal(size=300))[:, None].astype(np.float32)
    tree = fit(jnp.asarray(x), jnp.asarray(g), depth=2, n_bins=32, score="cosine", categorical=(0,))
    feats, thrs, leaves, _ = np_fit(x, g, 2, 32, "cosine", categorical=(0,))
    assert np.asarray(tree.feat).tolist() == feats and feats[0] == 0 and thrs[0] == 3.0
    assert bool(tree.is_cat[0]) and not bool(tree.is_cat[1])
    np.testing.assert_allclose(np.asarray(tree.leaves), leaves, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("score", ["cosine", "l2"])
def test_scores_equal_numpy(score):
    rng = np.random.default_rng(4)
    gl, gr = rng.normal(size=(7, 3)), rng.normal(size=(11, 3))
    got = T.node_scores(jnp.asarray(gl.sum(0)), jnp.asarray(7.0), jnp.asarray(gr.sum(0)), jnp.asarray(11.0), score)
    np.testing.assert_allclose(float(got), np_node_score(gl, gr, score), rtol=1e-5)
    # cosine = (sum_L g.mu_L + sum_R g.mu_R) / sqrt(n_L|mu_L|^2 + n_R|mu_R|^2)
    if score == "cosine":
        num = (gl @ gl.mean(0)).sum() + (gr @ gr.mean(0)).sum()
        den = np.sqrt(7 * (gl.mean(0) ** 2).sum() + 11 * (gr.mean(0) ** 2).sum())
        np.testing.assert_allclose(float(got), num / den, rtol=1e-5)
    # an empty side contributes nothing
    e = T.node_scores(jnp.zeros(3), jnp.asarray(0.0), jnp.asarray(gr.sum(0)), jnp.asarray(11.0), score)
    np.testing.assert_allclose(float(e), np_node_score(gl[:0], gr, score), rtol=1e-5)


def test_boosting_mse_decreases_monotonically():
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, (1000, 5)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + x[:, 1] * (x[:, 2] > 0) + 0.5 * np.abs(x[:, 3])).astype(np.float32)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def boost(_):
        def step(ens, _):
            f = T.predict(ens, xj)[:, 0]
            g = -(yj - f)[:, None]
            ens = T.add_tree(ens, T.fit_tree(xj, g, depth=4, n_bins=64), 0.3)
            f = T.predict(ens, xj)[:, 0]
            return ens, jnp.mean((yj - f) ** 2)

        return jax.lax.scan(step, T.init_ensemble(100, 4, 1), None, length=100)

    ens, mse = boost(0)
    mse = np.asarray(mse)
    assert np.all(np.diff(mse) <= 1e-6), mse
    assert mse[0] < np.mean(y**2) and mse[-1] < 0.02, mse[[0, 9, 49, 99]]  # var(y) ~ 0.9


def _random_ensemble(n_trees=23, capacity=40, depth=3, out_dim=3, seed=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    x[:, 3] = rng.integers(0, 4, 300)
    ens = T.init_ensemble(capacity, depth, out_dim, bias=rng.normal(size=out_dim))
    for _ in range(n_trees):
        g = rng.normal(size=(300, out_dim)).astype(np.float32)
        tree = fit(jnp.asarray(x), jnp.asarray(g), depth=depth, n_bins=20, categorical=(3,))
        ens = T.add_tree(ens, tree, rng.uniform(0.01, 0.2, out_dim))
    return ens, x


def test_prediction_in_jit_equals_python_traversal_and_fold_lr():
    ens, x = _random_ensemble()
    assert int(ens.n_trees) == 23 and bool(ens.is_cat.any())
    ref = np.stack([py_traverse(ens, xi) for xi in x[:50]])
    for chunk in (1, 7, 64):
        got = jax.jit(T.predict, static_argnums=2)(ens, jnp.asarray(x[:50]), chunk)
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-5)
    folded = T.predict(T.fold_lr(ens), jnp.asarray(x[:50]))
    np.testing.assert_allclose(np.asarray(folded), ref, rtol=1e-5, atol=1e-5)
    # leading dims
    assert T.predict(ens, jnp.asarray(x[:12]).reshape(3, 4, 4)).shape == (3, 4, 3)


def test_per_output_rates_and_shared_tree_value_rate():
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(200, 3)), jnp.float32)
    gs = [jnp.asarray(rng.normal(size=(200, 3)), jnp.float32) for _ in range(5)]

    def run(policy_lr, value_lr):
        ens = T.init_ensemble(8, 3, 3)  # outputs: 2 policy + 1 value (a shared tree)
        for g in gs:
            ens = T.add_tree(ens, fit(x, g, depth=3, n_bins=32), jnp.array([policy_lr, policy_lr, value_lr]))
        return np.asarray(T.predict(ens, x))

    base, other_v, other_p = run(0.1, 0.01), run(0.1, 0.05), run(0.3, 0.01)
    np.testing.assert_array_equal(base[:, :2], other_v[:, :2])  # policy outputs untouched by value_lr
    np.testing.assert_allclose(other_v[:, 2], 5 * base[:, 2], rtol=1e-4, atol=1e-6)  # value slice scales
    np.testing.assert_allclose(other_p[:, :2], 3 * base[:, :2], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(base[:, 2], other_p[:, 2])
    # changing the rate mid-run leaves the outputs of existing trees intact
    ens = T.init_ensemble(8, 3, 3)
    for g in gs[:3]:
        ens = T.add_tree(ens, T.fit_tree(x, g, 3, 32), jnp.array([0.1, 0.1, 0.01]))
    before = np.asarray(T.predict(ens, x))
    ens2 = T.add_tree(ens, T.fit_tree(x, gs[3], 3, 32), jnp.array([0.1, 0.1, 0.5]))
    added = np.asarray(T.tree_predict(T.Tree(ens2.feat[3], ens2.thr[3], ens2.is_cat[3], ens2.leaves[3]), x))
    np.testing.assert_allclose(np.asarray(T.predict(ens2, x)), before - added * np.array([0.1, 0.1, 0.5]),
                               rtol=1e-5, atol=1e-6)


def test_full_ensemble_drops_instead_of_wrapping():
    ens, x = _random_ensemble(n_trees=5, capacity=5)
    before = np.asarray(T.predict(ens, jnp.asarray(x)))
    tree = T.fit_tree(jnp.asarray(x), jnp.ones((300, 3)), 3, 20)
    full = T.add_tree(ens, tree, 1.0)
    assert int(full.n_trees) == 5 and int(full.dropped) == 1
    np.testing.assert_array_equal(np.asarray(T.predict(full, jnp.asarray(x))), before)


def test_uniform_generator_and_min_data_in_leaf():
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.uniform(0, 1, (500, 2)), jnp.float32)
    cand, valid = T.split_candidates(x, 9, "uniform")
    np.testing.assert_allclose(np.asarray(cand[0]), float(x[:, 0].min()) + (float(x[:, 0].max()) - float(x[:, 0].min()))
                               * np.arange(1, 10) / 10, rtol=1e-5)
    g = jnp.asarray(np.where(np.asarray(x[:, 0]) > 0.98, 10.0, 0.0)[:, None], jnp.float32)
    tree = T.fit_tree(x, g, 1, 64, min_data_in_leaf=50)
    right = np.asarray(x[:, int(tree.feat[0])] > tree.thr[0])
    assert min(right.sum(), (~right).sum()) >= 50
    with pytest.raises(ValueError, match="split score"):
        T.fit_tree(x, g, 1, 8, score="gini")


def test_vmap_over_seeds_equals_separate_fits():
    def boost(key):
        kx, kg = jax.random.split(key)
        x = jax.random.normal(kx, (128, 3))
        ens = T.init_ensemble(6, 2, 2)
        for i in range(6):
            g = jax.random.normal(jax.random.fold_in(kg, i), (128, 2)) + x[:, :2] - T.predict(ens, x)
            ens = T.add_tree(ens, T.fit_tree(x, g, 2, 32), 0.5)
        return T.predict(ens, x)

    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    v = jax.jit(jax.vmap(boost))(keys)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(v[i]), np.asarray(jax.jit(boost)(keys[i])), rtol=1e-5, atol=1e-6)
