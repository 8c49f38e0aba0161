"""rlsuite.core.returns against plain numpy loops (with and without jit).

Every stream mixes true terminations (no bootstrap) and truncations (bootstrap from
``V(next_obs)``, the pre-reset final observation), the case most implementations get wrong.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.core import returns

T, N = 12, 3
GAMMA, LAM = 0.9, 0.8


def _stream(seed: int = 0):
    """Random rewards/values with a termination at t=3 (env 0), a truncation at t=6 (env 0),
    a truncation at t=2 and a termination at t=9 (env 1); env 2 never finishes."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, N)).astype(np.float32)
    v = rng.normal(size=(T, N)).astype(np.float32)
    # V(next_obs): equal to v[t+1] inside an episode, anything at a truncation (final obs).
    nv = np.concatenate([v[1:], rng.normal(size=(1, N)).astype(np.float32)], 0)
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[3, 0] = True
    trunc[6, 0] = True
    trunc[2, 1] = True
    term[9, 1] = True
    for t, n in [(6, 0), (2, 1)]:
        nv[t, n] = rng.normal() * 5  # final-observation value differs from the reset obs value
    for t, n in [(3, 0), (9, 1)]:
        nv[t, n] = 123.0  # must be ignored: terminal
    return r, v, nv, term, trunc


def np_gae(r, v, nv, term, done, gamma, lam):
    adv = np.zeros_like(r)
    a = np.zeros(r.shape[1:], np.float32)
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * (1 - term[t]) * nv[t] - v[t]
        a = delta + gamma * lam * (1 - done[t]) * a
        adv[t] = a
    return adv, adv + v


def np_td_lambda(r, nv, term, done, gamma, lam):
    g = np.zeros_like(r)
    g_next = nv[-1].copy()
    for t in reversed(range(r.shape[0])):
        cont = np.where(done[t], nv[t], g_next)
        g[t] = r[t] + gamma * (1 - term[t]) * ((1 - lam) * nv[t] + lam * cont)
        g_next = g[t]
    return g


def np_discounted(r, d, bootstrap):
    g = np.zeros_like(r)
    nxt = np.full(r.shape[1:], bootstrap, np.float32)
    for t in reversed(range(r.shape[0])):
        nxt = r[t] + d[t] * nxt
        g[t] = nxt
    return g


def np_reward_to_go(r, m, gamma, discount_from):
    H = r.shape[0]
    out = np.zeros_like(r)
    for t in range(H):
        for h in range(t, H):
            p = h if discount_from == "zero" else h - t
            out[t] += gamma**p * r[h] * m[h]
    return out


def _maybe_jit(f, use_jit, static=()):
    return jax.jit(f, static_argnames=static) if use_jit else f


@pytest.mark.parametrize("use_jit", [False, True])
def test_gae_matches_numpy(use_jit):
    r, v, nv, term, trunc = _stream()
    done = term | trunc
    adv, tgt = _maybe_jit(returns.gae, use_jit)(r, v, nv, term, done, GAMMA, LAM)
    adv_np, tgt_np = np_gae(r, v, nv, term, done, GAMMA, LAM)
    np.testing.assert_allclose(adv, adv_np, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tgt, tgt_np, rtol=1e-5, atol=1e-5)
    assert adv.shape == (T, N) and adv.dtype == jnp.float32


def test_gae_hand_computed_truncation_vs_termination():
    """Two one-step episodes with reward 1 and V(next) = 10: the truncated one bootstraps."""
    r = np.array([1.0, 1.0], np.float32)
    v = np.zeros(2, np.float32)
    nv = np.array([10.0, 10.0], np.float32)
    term = np.array([True, False])
    trunc = np.array([False, True])
    adv, _ = returns.gae(r, v, nv, term, term | trunc, 0.5, 0.95)
    np.testing.assert_allclose(adv, [1.0, 1.0 + 0.5 * 10.0])
    # lam = 0 is the one-step TD error; lam = 1 (no cuts) is the Monte-Carlo return minus V
    r3 = np.ones(3, np.float32)
    zeros = np.zeros(3, bool)
    adv1, _ = returns.gae(r3, np.zeros(3), np.zeros(3), zeros, zeros, 0.5, 1.0)
    np.testing.assert_allclose(adv1, [1.75, 1.5, 1.0])


@pytest.mark.parametrize("use_jit", [False, True])
def test_td_lambda_matches_numpy(use_jit):
    r, v, nv, term, trunc = _stream(1)
    done = term | trunc
    g = _maybe_jit(returns.td_lambda, use_jit)(r, nv, term, done, GAMMA, LAM)
    np.testing.assert_allclose(g, np_td_lambda(r, nv, term, done, GAMMA, LAM), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_td_lambda_equals_gae_plus_value(lam):
    """lambda-return = GAE advantage + V whenever V(next_obs_t) = V(obs_{t+1}) inside episodes."""
    r, v, nv, term, trunc = _stream(2)
    done = term | trunc
    _, tgt = returns.gae(r, v, nv, term, done, GAMMA, lam)
    g = returns.td_lambda(r, nv, term, done, GAMMA, lam)
    np.testing.assert_allclose(g, tgt, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_jit", [False, True])
def test_discounted_returns_matches_numpy(use_jit):
    r, _, _, term, trunc = _stream(3)
    d = GAMMA * (1.0 - (term | trunc)).astype(np.float32)
    g = _maybe_jit(returns.discounted_returns, use_jit)(r, d, 2.5)
    np.testing.assert_allclose(g, np_discounted(r, d, 2.5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("discount_from", ["zero", "t"])
def test_reward_to_go_matches_numpy(use_jit, discount_from):
    rng = np.random.default_rng(4)
    r = rng.normal(size=(9, N)).astype(np.float32)
    lengths = np.array([9, 4, 1])
    m = (np.arange(9)[:, None] < lengths[None]).astype(np.float32)
    f = _maybe_jit(returns.reward_to_go, use_jit, static=("discount_from",))
    g = f(r, m, 0.7, discount_from=discount_from)
    np.testing.assert_allclose(g, np_reward_to_go(r, m, 0.7, discount_from), rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(g)[m == 0] == 0.0)  # nothing after an episode's end


def test_one_stream_unbatched_matches_batched():
    """Functions are written for one stream: [T] input equals a column of [T, N]."""
    r, v, nv, term, trunc = _stream(5)
    done = term | trunc
    adv, _ = returns.gae(r, v, nv, term, done, GAMMA, LAM)
    for n in range(N):
        adv_n, _ = returns.gae(r[:, n], v[:, n], nv[:, n], term[:, n], done[:, n], GAMMA, LAM)
        np.testing.assert_allclose(adv_n, adv[:, n], rtol=1e-6)
