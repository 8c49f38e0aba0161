"""Tests for BPG Models 1/2, BAC, the GP/ALD linear algebra and the 1-D LQR (Ghavamzadeh et al. 2016)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _knobs import _differs, _fingerprint, check_every_knob

from rlsuite import agents
from rlsuite.agents import bayes_pg as B
from rlsuite.agents import gp
from rlsuite.core.agent import make_train
from rlsuite.core.returns import reward_to_go
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make
from rlsuite.envs.lqr import lqr_exact_fisher, lqr_exact_gradient, lqr_exact_return

THETA = jnp.array([-0.2, 0.0])
GAMMA = 0.95


@pytest.fixture(scope="module")
def lqr():
    return make("lqr:lqr-1d")


def _random_problem(seed, M=7, n=3):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(M, n)).astype(np.float32)
    y = rng.normal(size=M).astype(np.float32)
    Q = rng.normal(size=(n, n))
    G = (Q @ Q.T / n + 0.5 * np.eye(n)).astype(np.float32)
    return U, y, G


# ----------------------------------------------------------------------------- env


def test_lqr_env_dynamics_and_registry(lqr):
    env, p = lqr
    assert p.max_steps_in_episode == 20
    obs, s = env.reset_env(jax.random.PRNGKey(0), p)
    assert obs.shape == (1,)
    p0 = p.replace(noise_var=0.0)
    obs2, s2, r, term, _ = env.step_env(jax.random.PRNGKey(1), s, jnp.array([0.5]), p0)
    np.testing.assert_allclose(r, -(s.x**2 + 0.1 * 0.25), rtol=1e-6)
    np.testing.assert_allclose(obs2[0], s.x + 0.5, rtol=1e-6)
    assert not bool(term)
    benv, bp = make("lqr:bandit")
    assert bp.max_steps_in_episode == 1
    with pytest.raises(ValueError, match="no parameter"):
        make("lqr:lqr-1d", bogus=1.0)


def test_exact_return_matches_simulation(lqr):
    """J(theta) of the sheet equals a 20000-episode Monte-Carlo average of the engine's rollouts."""
    env, p = lqr
    spec = B.linear_gaussian_policy(1)
    act = B.engine_policy(spec)
    traj = jax.jit(lambda k: rollout_episodes(env, p, act, THETA, k, 20000, 20))(jax.random.PRNGKey(0))
    disc = reward_to_go(traj.reward, traj.mask, GAMMA, "t")[0]
    J = float(lqr_exact_return(THETA, p, GAMMA))
    assert abs(float(disc.mean()) - J) < 4 * float(disc.std()) / np.sqrt(20000) + 1e-3
    # the exact Fisher matches the per-step estimate on the same 20000 episodes
    score = traj.extras["score"] * traj.mask[..., None]
    G_hat = B.fisher_estimate(score, score.sum(0), "step", 0.0)
    np.testing.assert_allclose(G_hat, lqr_exact_fisher(THETA, p), rtol=0.03, atol=0.5)


# ----------------------------------------------------------------------------- GP posteriors vs numpy


def _np_model2(U, y, G, s2):
    U, y, G = (np.asarray(a, np.float64) for a in (U, y, G))
    K = U @ np.linalg.inv(G) @ U.T
    C = np.linalg.inv(K + s2 * np.eye(len(y)))
    mean = U.T @ C @ y
    return mean, G - U.T @ C @ U, np.linalg.solve(G, mean)


def _np_model1(U, y, G, s2):
    U, y, G = (np.asarray(a, np.float64) for a in (U, y, G))
    n = U.shape[1]
    S = U @ np.linalg.inv(G) @ U.T
    K, b = (1 + S) ** 2, 1 + np.diag(S)
    C = np.linalg.inv(K + s2 * np.eye(len(y)))
    mean = (U * y[:, None]).T @ C @ b
    return mean, (1 + n - b @ C @ b) * np.eye(n), np.linalg.solve(G, mean)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posteriors_match_numpy_gp(seed):
    U, y, G = _random_problem(seed)
    for fn, ref in ((B.bpg_model2, _np_model2), (B.bpg_model1, _np_model1)):
        post = jax.jit(fn)(U, y, G, 0.7)
        mean, cov, nat = ref(U, y, G, 0.7)
        np.testing.assert_allclose(post.mean, mean, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(post.cov, cov, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(post.natural, nat, rtol=2e-3, atol=2e-4)
        c = np.asarray(post.cov, np.float64)
        np.testing.assert_allclose(c, c.T, atol=1e-6)
        assert np.linalg.eigvalsh(c).min() >= -1e-5 * max(1.0, np.abs(c).max())


def test_bac_posterior_matches_numpy_gp():
    rng = np.random.default_rng(3)
    N, n, d = 12, 3, 2
    X = rng.uniform(size=(N, d)).astype(np.float32)
    U = rng.normal(size=(N, n)).astype(np.float32)
    y = rng.normal(size=N).astype(np.float32)
    G = (U.T @ U + 0.1 * np.eye(n)).astype(np.float32)
    hp = B.default_hparams(B.BACConfig(), noise_var=0.5, fisher_coef=2.0, state_width=0.3)
    post = B.bac_gradient(X, U, y, np.ones(N, np.float32), G, hp)
    X64, U64, G64 = X.astype(np.float64), U.astype(np.float64), G.astype(np.float64)
    D2 = ((X64[:, None] - X64[None]) ** 2).sum(-1)
    K = np.exp(-D2 / (2 * 0.3**2)) + 2.0 * U64 @ np.linalg.inv(G64) @ U64.T
    C = np.linalg.inv(K + 0.5 * np.eye(N))
    np.testing.assert_allclose(post.mean, 2.0 * U64.T @ C @ y, rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(post.cov, 2.0 * G64 - 4.0 * U64.T @ C @ U64, rtol=2e-3, atol=1e-3)
    c = np.asarray(post.cov, np.float64)
    assert np.linalg.eigvalsh(0.5 * (c + c.T)).min() >= -1e-4 * np.abs(c).max()


# ----------------------------------------------------------------------------- sheet identities


def test_model2_collapse_identity():
    """Trajectory-form G from the same samples: E = U^T y / (M + s2), natural = M/(M+s2) * LS fit."""
    U, y, _ = _random_problem(4, M=9, n=3)
    s2 = 0.5
    G = B.fisher_estimate(jnp.asarray(U)[None], jnp.asarray(U), "trajectory", 0.0)
    post = B.bpg_model2(U, y, G, s2)
    M = len(y)
    np.testing.assert_allclose(post.mean, U.T @ y / (M + s2), rtol=1e-3, atol=1e-4)
    ls = np.linalg.lstsq(U.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(post.natural, M / (M + s2) * ls, rtol=2e-3, atol=2e-4)


def test_gptd_returns_identity():
    """Square H (terminated episodes): alpha = (K + s2 I)^-1 G_ret and C = (K + s2 I)^-1."""
    rng = np.random.default_rng(5)
    T, gamma, s2 = 9, 0.9, 0.3
    done = np.zeros(T, np.float32)
    done[[3, 8]] = 1.0  # two episodes, lengths 4 and 5
    r = rng.normal(size=T).astype(np.float32)
    X = rng.normal(size=(T, 4)).astype(np.float32)
    K = X @ X.T + np.exp(-((X[:, None] - X[None]) ** 2).sum(-1))
    H = gp.gptd_matrix(jnp.asarray(done), gamma)
    alpha, C = gp.gptd_posterior(jnp.asarray(K), jnp.asarray(r), H, s2)
    g_ret = np.zeros(T)
    acc = 0.0
    for t in reversed(range(T)):
        acc = r[t] + (0.0 if done[t] else gamma * acc)
        g_ret[t] = acc
    Kn = K.astype(np.float64) + s2 * np.eye(T)
    np.testing.assert_allclose(alpha, np.linalg.solve(Kn, g_ret), rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(C, np.linalg.inv(Kn), rtol=2e-3, atol=2e-3)
    # the fast path the agent uses is the same weights
    L = gp.gp_factor(jnp.asarray(K), s2)
    np.testing.assert_allclose(gp.gp_weights(L, jnp.asarray(g_ret, jnp.float32)), alpha, rtol=2e-3, atol=2e-4)


def test_model1_closed_forms_by_monte_carlo():
    """b_i = E[k(xi, xi_i)] = 1 + u_i^T G^-1 u_i and b_0 = 1 + n when u ~ N(0, G)."""
    U, _, G = _random_problem(6, M=4, n=3)
    L = np.linalg.cholesky(G.astype(np.float64))
    u = np.random.default_rng(7).normal(size=(400_000, 3)) @ L.T
    Gi = np.linalg.inv(G.astype(np.float64))
    k = (1 + u @ Gi @ U.T.astype(np.float64)) ** 2
    np.testing.assert_allclose(k.mean(0), 1 + np.einsum("mi,ij,mj->m", U, Gi, U), rtol=2e-2)
    k0 = (1 + np.einsum("mi,ij,mj->m", u[:200_000], Gi, u[200_000:])) ** 2
    assert abs(k0.mean() - 4.0) < 0.1


# ----------------------------------------------------------------------------- sparsification


def test_sparse_equals_full_at_threshold_zero(lqr):
    env, p = lqr
    cfg = B.BPGConfig(num_episodes=12, gamma=GAMMA)
    _, batch = jax.jit(B.make_estimator(cfg, env, p))(jax.random.PRNGKey(0), THETA, B.default_hparams(cfg))
    U, y = batch.traj_score, batch.ret
    G = B.fisher_estimate(batch.step_score, U, "step", 1e-6)

    @jax.jit
    def both(U, y, G):
        return (B.bpg_model2(U, y, G, 1.0), B.bpg_model2_sparse(U, y, G, 1.0, 0.0, 12),
                B.bpg_model1(U, y, G, 1.0), B.bpg_model1_sparse(U, y, G, 1.0, 0.0, 12))

    # Model 2: rank-2 kernel, so 10 of 12 trajectories are represented through A exactly.
    full, sparse, full1, sparse1 = both(U, y, G)
    for a, b in ((full.mean, sparse.mean), (full.cov, sparse.cov), (full.natural, sparse.natural)):
        np.testing.assert_allclose(b, a, rtol=5e-3, atol=1e-3 * float(jnp.abs(a).max()))
    np.testing.assert_allclose(sparse1.mean, full1.mean, rtol=5e-3, atol=1e-3 * float(jnp.abs(full1.mean).max()))
    # BAC: distinct state-action points, the dictionary takes all of them.
    rng = np.random.default_rng(8)
    N = 15
    X = rng.uniform(size=(N, 2)).astype(np.float32)
    Us = rng.normal(size=(N, 3)).astype(np.float32)
    ys = rng.normal(size=N).astype(np.float32)
    mask = np.ones(N, np.float32)
    mask[-2:] = 0.0  # masked points are ignored by both
    G = jnp.asarray(Us.T @ Us + np.eye(3), jnp.float32)
    hp = B.default_hparams(B.BACConfig(), ald_threshold=0.0, noise_var=1.0)
    dense, sp = jax.jit(lambda *a: (B.bac_gradient(*a), B.bac_gradient(*a, sparse=True, capacity=N)))(X, Us, ys, mask, G, hp)
    np.testing.assert_allclose(sp.mean, dense.mean, rtol=5e-3, atol=1e-3)
    np.testing.assert_allclose(sp.cov, dense.cov, rtol=5e-3, atol=1e-3)


def test_ald_dictionary_is_bounded_and_reconstructs():
    rng = np.random.default_rng(9)
    X = rng.uniform(size=(200, 2)).astype(np.float32)
    kern = lambda a, b: jnp.exp(-jnp.sum((a - b) ** 2) / (2 * 0.3**2))
    d, A = jax.jit(lambda X: gp.ald(kern, X, jnp.ones(200), 0.05, 40))(X)
    assert 0 < int(d.size) <= 40
    Kt = np.asarray(d.chol @ d.chol.T)[: int(d.size), : int(d.size)]
    Xd = np.asarray(d.points)[: int(d.size)]
    np.testing.assert_allclose(Kt, np.exp(-((Xd[:, None] - Xd[None]) ** 2).sum(-1) / 0.18), atol=1e-4)
    K = np.exp(-((X[:, None] - X[None]) ** 2).sum(-1) / 0.18)
    Kapprox = np.asarray(A @ d.chol @ d.chol.T @ A.T)
    assert np.abs(np.diag(K) - np.diag(Kapprox)).max() < 0.05 + 1e-3  # delta <= nu for every non-member


# ----------------------------------------------------------------------------- the central claim


def test_bpg_error_below_mc_on_lqr(lqr):
    """Mean angular and relative error of Model 1, and relative error of Model 2 (per-step G),
    are below the MC estimate's at M = 5, 10, 20 (400 repetitions, fixed seeds)."""
    env, p = lqr
    g = lqr_exact_gradient(THETA, p, GAMMA)

    def errs(est):
        cos = est @ g / (jnp.linalg.norm(est) * jnp.linalg.norm(g) + 1e-30)
        return jnp.degrees(jnp.arccos(jnp.clip(cos, -1, 1))), jnp.linalg.norm(est - g) / jnp.linalg.norm(g)

    cfg = B.BPGConfig(num_episodes=20, gamma=GAMMA)
    est, hp = B.make_estimator(cfg, env, p), B.default_hparams(cfg)

    def one(key):
        _, b = est(key, THETA, hp)
        out = []
        for M in (5, 10, 20):  # the first M of the same 20 episodes: one compiled program
            U, y = b.traj_score[:M], b.ret[:M]
            G = B.fisher_estimate(b.step_score[:, :M], U, "step", 1e-6)
            out.append([errs(e) for e in (B.mc_gradient(U, y).mean, B.bpg_model1(U, y, G, 1.0).mean, B.bpg_model2(U, y, G, 1.0).mean)])
        return out

    res = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(0), 400))
    for M, ((a_mc, r_mc), (a_1, r_1), (a_2, r_2)) in zip((5, 10, 20), res, strict=True):
        assert float(a_1.mean()) < float(a_mc.mean()), M
        assert float(r_1.mean()) < float(r_mc.mean()), M
        assert float(r_2.mean()) < float(r_mc.mean()), M
        assert float(a_2.mean()) <= float(a_mc.mean()) + 1.0, M


# ----------------------------------------------------------------------------- training


def test_bac_improves_lqr_return(lqr):
    """BAC: 40 updates x 5 episodes (4000 env steps) raise J(theta) from -30.5 to above -5."""
    env, p = lqr
    cfg = B.BACConfig(num_episodes=5, num_updates=40, gamma=GAMMA)
    state, m = jax.jit(B.make_train(cfg, env, p))(jax.random.PRNGKey(0), B.default_hparams(cfg))
    J0, J1 = float(lqr_exact_return(THETA, p, GAMMA)), float(lqr_exact_return(state.theta, p, GAMMA))
    assert J0 < -30 and J1 > -5, (J0, J1)
    assert all(np.isfinite(np.asarray(v)).all() for v in m.values())


def test_train_vmaps_over_seeds_and_hparams(lqr):
    """One vmap over (seed, step size) equals separate runs; the step size changes the result."""
    env, p = lqr
    cfg = B.BPGConfig(estimator="bpg2", natural=True, num_episodes=5, num_updates=5, gamma=GAMMA)
    train = jax.jit(B.make_train(cfg, env, p))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    hps = jax.tree.map(lambda *x: jnp.stack(x), B.default_hparams(cfg, step_size=0.05), B.default_hparams(cfg, step_size=0.1))
    batched, _ = jax.jit(jax.vmap(train))(keys, hps)
    for i in range(2):
        single, _ = train(keys[i], jax.tree.map(lambda x: x[i], hps))
        np.testing.assert_allclose(batched.theta[i], single.theta, rtol=1e-4, atol=1e-5)
    other, _ = train(keys[0], jax.tree.map(lambda x: x[1], hps))
    assert not np.allclose(other.theta, batched.theta[0])


# ----------------------------------------------------------------------------- degenerate input


def test_degenerate_inputs_are_finite():
    """All-zero returns, one trajectory, a rank-1 or all-zero Fisher estimate: finite output."""
    U, y, G = _random_problem(10, M=6, n=3)
    U1, y1 = U[:1], y[:1]
    G1 = B.fisher_estimate(jnp.asarray(U1)[None], jnp.asarray(U1), "trajectory", 1e-6)  # rank 1
    zeros = np.zeros_like(U)  # all scores zero: G = eps I (singular without eps)
    G0 = B.fisher_estimate(jnp.asarray(zeros)[None], jnp.asarray(zeros), "step", 1e-6)
    finite = lambda post: all(np.isfinite(np.asarray(x)).all() for x in (post.mean, post.cov, post.natural))

    @jax.jit
    def many(U, y, G, U1, y1, G1, G0):
        out = []
        for fn in (B.bpg_model1, B.bpg_model2):
            out += [fn(U, 0 * y, G, 1.0), fn(U1, y1, G, 1.0), fn(U1, y1, G1, 1.0), fn(0 * U, y, G0, 1.0)]
        out += [B.bpg_model1_sparse(U1, y1, G, 1.0, 0.1, 4), B.bpg_model2_sparse(0 * U, y, G0, 1.0, 0.1, 4)]
        return out

    out = many(U, y, G, U1, y1, G1, G0)
    np.testing.assert_allclose(out[0].mean, 0.0, atol=1e-6)
    np.testing.assert_allclose(out[4].mean, 0.0, atol=1e-6)
    assert all(finite(p) for p in out)
    hp = B.default_hparams(B.BACConfig())
    post = jax.jit(B.bac_gradient, static_argnums=(6, 7))(
        np.zeros((5, 1), np.float32), np.zeros((5, 2), np.float32), np.zeros(5, np.float32),
        np.ones(5, np.float32), 1e-6 * jnp.eye(2), hp, True, 4)
    assert finite(post)


def test_bad_config_and_hparams_raise(lqr):
    env, p = lqr
    with pytest.raises(ValueError, match="num_episodes"):
        B.make_train(B.BPGConfig(num_episodes=0), env, p)
    with pytest.raises(ValueError, match="estimator"):
        B.make_train(B.BPGConfig(estimator="bogus"), env, p)
    with pytest.raises(ValueError, match="fisher"):
        B.make_train(B.BACConfig(fisher="bogus"), env, p)
    with pytest.raises(ValueError, match="BPGConfig.gamma"):
        B.make_train(B.BPGConfig(gamma=0.0), env, p)
    for field, bad in (("num_updates", 2.0), ("horizon", True), ("eval_episodes", 0)):
        with pytest.raises(ValueError, match=f"BACConfig.{field}"):
            B.make(B.BACConfig(**{field: bad}), env, p)
    with pytest.raises(ValueError, match="init_theta"):
        B.make_train(B.BPGConfig(init_theta=(0.0,)), env, p)
    mc_env, mc_p = make("gymnax:MountainCar-v0")
    with pytest.raises(ValueError, match="linear_gaussian"):
        B.make_train(B.BPGConfig(policy="linear_gaussian"), mc_env, mc_p)
    with pytest.raises(ValueError, match="actions"):
        B.make_train(B.BACConfig(actions=(0, 5)), mc_env, mc_p)
    train = B.make_train(B.BPGConfig(num_updates=1), env, p)
    with pytest.raises(ValueError, match="noise_var"):
        train(jax.random.PRNGKey(0), B.default_hparams(B.BPGConfig(), noise_var=0.0))
    with pytest.raises(ValueError, match="gamma"):  # gamma is a traced hparam, checked where concrete
        train(jax.random.PRNGKey(0), B.default_hparams(B.BPGConfig(), gamma=1.5))
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        B.default_hparams(B.BPGConfig(), lr=1.0)


def test_mountain_car_policy_uses_two_actions():
    env, p = make("gymnax:MountainCar-v0")
    cfg = B.BACConfig(num_episodes=2, horizon=30, sparse=True, dictionary_size=16)
    post, batch = jax.jit(B.make_estimator(cfg, env, p))(jax.random.PRNGKey(0), jnp.zeros(32), B.default_hparams(cfg))
    assert post.mean.shape == (32,) and np.isfinite(np.asarray(post.mean)).all()
    spec = B.make_policy(cfg, env, p)
    acts = jax.vmap(lambda k: spec.to_env(spec.sample(jnp.zeros(32), jnp.array([-0.5, 0.0]), k)))(
        jax.random.split(jax.random.PRNGKey(1), 100))
    assert set(np.unique(np.asarray(acts)).tolist()) == {0, 2}


# ----------------------------------------------------------------------------- the agent protocol


def test_protocol_metrics_segments_and_evaluate(lqr):
    """Registry ``make`` -> Agent; segment metrics have the shared keys and leading axis [n];
    two segments of 2 equal one of 4 (same key stream); evaluate matches the exact LQR return."""
    env, p = lqr
    for name in ("bpg", "bac"):
        entry = agents.get(name)
        cfg = entry.config(num_episodes=3, horizon=10, num_updates=4, eval_episodes=4000)
        agent = entry.make(cfg, env, p)
        assert agent.steps_per_update == 30 and agent.num_updates == 4 and agent.counter == "env_steps"
        hp = entry.default_hparams(cfg)
        seg = jax.jit(agent.segment, static_argnums=2)
        s0 = agent.init(jax.random.PRNGKey(0), hp)
        s4, m4 = seg(s0, hp, 4)
        s2, m2a = seg(s0, hp, 2)
        s2, m2b = seg(s2, hp, 2)
        np.testing.assert_array_equal(s4.theta, s2.theta)
        np.testing.assert_array_equal(m4["episode_return"], np.concatenate([m2a["episode_return"], m2b["episode_return"]]))
        np.testing.assert_array_equal(m4["env_steps"], [30, 60, 90, 120])
        np.testing.assert_array_equal(m4["episodes"], [3, 3, 3, 3])
        for k in ("episode_return", "disc_return", "grad_norm", "cov_trace", "step_size", "step_norm", "episode_length"):
            assert m4[k].shape == (4,) and np.isfinite(np.asarray(m4[k])).all(), k
        assert m4["theta"].shape == (4, 2)
        np.testing.assert_array_equal(m4["theta"][0], THETA)
        ev = jax.jit(agent.evaluate)(s4, jax.random.PRNGKey(1))
        assert set(ev) == {"eval_return", "eval_exact_return"}
        exact = float(lqr_exact_return(s4.theta, p, 1.0, 10))
        assert abs(float(ev["eval_return"]) - exact) < 0.05 * abs(exact), (ev, exact)
        # make_train is the core composition
        st, m = jax.jit(B.make_train(cfg, env, p))(jax.random.PRNGKey(0), hp)
        np.testing.assert_array_equal(st.theta, s4.theta)


def test_mountain_car_evaluate_and_counter():
    env, p = make("gymnax:MountainCar-v0")
    cfg = B.BACConfig(num_episodes=2, horizon=30, num_updates=2, sparse=True, dictionary_size=8, eval_episodes=3)
    agent = B.make(cfg, env, p)
    st, m = jax.jit(make_train(agent))(jax.random.PRNGKey(0), B.default_hparams(cfg))
    np.testing.assert_array_equal(m["env_steps"], [60, 120])
    ev = jax.jit(agent.evaluate)(st, jax.random.PRNGKey(1))
    assert set(ev) == {"eval_return"} and float(ev["eval_return"]) == -30.0  # no goal within 30 steps


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(B.BayesHParams)])
def test_nan_hparam_gives_nonfinite_first_update(lqr, field):
    """A NaN hyper-parameter is not refused at init and shows in the first update's metrics
    (also one the mode ignores, e.g. the ALD threshold of a dense GP)."""
    env, p = lqr
    for cfg in (B.BPGConfig(num_episodes=2, horizon=5, num_updates=1), B.BACConfig(num_episodes=2, horizon=5, num_updates=1)):
        hp = B.default_hparams(cfg, **{field: np.nan})
        _, m = B.make_train(cfg, env, p)(jax.random.PRNGKey(0), hp)
        assert not all(np.isfinite(np.asarray(v)).all() for v in m.values() if np.ndim(v) == 1), field


_TINY = dict(num_episodes=4, horizon=5, num_updates=3)
_ALT = dict(estimator="mc", fisher="trajectory", policy="linear_gaussian", actions=(0, 1), init_theta=(-0.3, 0.1),
            gamma=0.9)


@pytest.mark.slow
def test_every_knob_bpg(lqr):
    """Every BPG field and hparam changes training (Model 1, so the fisher form matters)."""
    env, p = lqr
    report = check_every_knob("bpg", B.BPGConfig(estimator="bpg1", **_TINY), env, p, alternatives=_ALT)
    assert report["estimator"] == "changes" and report["hp.gamma"] == "changes"


@pytest.mark.slow
def test_every_knob_bac(lqr):
    env, p = lqr
    alt = {k: v for k, v in _ALT.items() if k != "estimator"} | {"fisher": "step"}
    report = check_every_knob("bac", B.BACConfig(**_TINY), env, p, alternatives=alt)
    assert report["natural"] == "changes" and report["hp.noise_var"] == "changes"


def _final(cfg, env, p, **hp):
    out = jax.jit(B.make_train(cfg, env, p))(jax.random.PRNGKey(0), B.default_hparams(cfg, **hp))
    return _fingerprint(out)


@pytest.mark.slow
def test_inert_knobs_act_where_they_apply(lqr):
    """The INERT entries that are mode-dependent do change training in the mode they belong to."""
    env, p = lqr
    sp = B.BPGConfig(estimator="bpg1", sparse=True, dictionary_size=3, **_TINY)
    base = _final(sp, env, p)
    assert _differs(base, _final(dataclasses.replace(sp, dictionary_size=4), env, p))
    roomy = dataclasses.replace(sp, dictionary_size=8, num_episodes=6)  # threshold decides membership
    assert _differs(_final(roomy, env, p), _final(roomy, env, p, ald_threshold=0.5))
    bac = B.BACConfig(**_TINY)
    base = _final(bac, env, p)
    assert _differs(base, _final(bac, env, p, fisher_coef=1.5))
    assert _differs(base, _final(bac, env, p, state_width=0.5))
    assert _differs(base, _final(bac, env, p, max_step_norm=1e-3))
    mc_env, mc_p = make("gymnax:MountainCar-v0")
    mcc = B.BACConfig(num_episodes=2, horizon=20, num_updates=2, sparse=True, dictionary_size=8, init_theta=None)
    base = _final(mcc, mc_env, mc_p, step_size=1.0)
    assert _differs(base, _final(dataclasses.replace(mcc, actions=(0, 1)), mc_env, mc_p, step_size=1.0))
    assert _differs(base, _final(dataclasses.replace(mcc, rbf_grid=3), mc_env, mc_p, step_size=1.0))
    assert set(B.INERT) <= {f.name for f in dataclasses.fields(B.BPGConfig)} | {
        "hp." + f.name for f in dataclasses.fields(B.BayesHParams)}
