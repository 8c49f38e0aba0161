"""Martingale policy evaluation (Jia & Zhou 2022) on the closed-form diffusion tasks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _knobs import _differs, _fingerprint, check_every_knob

from rlsuite import agents
from rlsuite.agents import martingale as mg
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make
from rlsuite.envs.diffusion import dt_grid_params, with_dt, zero_policy

THETA_OU = np.array([1 / 3, 1 / 3])  # kappa = sigma = beta = 1


def run(env, p, seed=0, dt=None, hp=None, **kw):
    cfg = mg.MartingaleConfig(**kw)
    hp = mg.default_hparams(cfg, p, dt=dt, **(hp or {}))
    st, metrics = jax.jit(mg.make_train(cfg, env, p))(jax.random.PRNGKey(seed), hp)
    return cfg, st, metrics


@pytest.fixture(scope="module")
def ou():
    return make("diffusion:ou", dt=0.01)


# ----------------------------------------------------------------------------- envs


def test_env_through_engine_and_closed_forms():
    env, p = make("diffusion:ou", dt=0.1)
    tr = rollout_episodes(env, p, zero_policy, None, jax.random.PRNGKey(0), 8, 32)
    assert tr.obs.shape == (32, 8, 3)
    np.testing.assert_allclose(tr.mask.sum(0), 30)  # K = T / dt = 3 / 0.1, masked afterwards
    assert bool(tr.terminated[29].all()) and not bool(tr.terminated[:29].any())
    np.testing.assert_allclose(tr.obs[:, 0, 1][:30], np.arange(30) * 0.1, atol=1e-5)  # t
    np.testing.assert_allclose(tr.next_obs[29, :, 2], 0.0, atol=1e-5)  # T - t at the end
    # terminal payoff: h = V at T enters the last reward discounted by exp(-beta dt)
    x_prev, x_T = tr.obs[29, :, 0], tr.next_obs[29, :, 0]
    expect = x_prev**2 * 0.1 + np.exp(-0.1) * env.value(tr.next_obs[29], p)
    np.testing.assert_allclose(tr.reward[29], expect, rtol=1e-5)
    assert x_T.shape == (8,)
    # closed forms satisfy their terminal conditions
    for env_id in ("diffusion:ou", "diffusion:gbm", "diffusion:bm-terminal"):
        e, q = make(env_id)
        obs_T = jnp.array([[0.7, q.horizon, 0.0], [1.3, q.horizon, 0.0]])
        np.testing.assert_allclose(
            e.value(obs_T, q), e.terminal_payoff(obs_T[:, :1], q)[:, 0], rtol=1e-6
        )
    # OU with h = 0: finite-horizon formula tends to the stationary value for long tau
    e, q = make("diffusion:ou", terminal="zero", horizon=40.0, dt=0.1)
    np.testing.assert_allclose(
        e.value(jnp.array([1.5, 0.0, 40.0]), q), e.stationary_value(1.5, q), rtol=1e-5
    )


def test_ou_exact_transition_moments():
    env, p = make("diffusion:ou", dt=0.5, horizon=1.0)
    tr = rollout_episodes(env, p, zero_policy, None, jax.random.PRNGKey(1), 40000, 2)
    x0, x1 = tr.obs[0, :, 0], tr.next_obs[0, :, 0]
    resid = x1 - x0 * np.exp(-0.5)
    assert abs(float(resid.mean())) < 0.01
    np.testing.assert_allclose(float(resid.var()), (1 - np.exp(-1.0)) / 2, rtol=0.03)


# ----------------------------------------------------------------------------- recovery of true parameters


def test_lstd_and_ml_recover_ou(ou):
    env, p = ou  # sheet §9: within +-0.02 for dt <= 0.03
    p = with_dt(p, 0.02)
    for method in ("lstd", "ml"):
        cfg, st, metrics = run(env, p, method=method, num_paths=10_000)
        np.testing.assert_allclose(st.theta, THETA_OU, atol=0.02, err_msg=method)
        assert float(mg.relative_l2_error(cfg, env, p, st.theta)) < 0.04
        assert metrics["residual"].shape == (1,) and float(metrics["residual"][-1]) < 1e-4


def test_lstd_and_ml_recover_bm_terminal():
    env, p = make("diffusion:bm-terminal", dt=0.02, sigma=0.8)
    for method in ("lstd", "ml"):
        _, st, _ = run(env, p, method=method, num_paths=10_000)
        np.testing.assert_allclose(st.theta, [1.0, 0.64], atol=0.03, err_msg=method)


def test_ml_and_td0_recover_gbm_rate():
    env, p = make("diffusion:gbm", dt=0.01)
    c_p = float(env.true_parameter(p)[0])
    for method in ("ml", "td0"):
        _, st, _ = run(env, p, method=method, value="parametric", num_paths=500, num_iterations=150)
        assert abs(float(st.theta_avg[0]) - c_p) < 0.03 * c_p, (method, st.theta_avg)


# ----------------------------------------------------------------------------- MOC / TD(0)


def test_td0_via_moc_equals_classical_td0(ou):
    env, p = ou
    p = with_dt(p, 0.1)
    cfg = mg.MartingaleConfig(
        method="td0", mode="online", num_paths=3, num_iterations=1, average_tail=0.0
    )
    hp = mg.default_hparams(cfg, p, lr=0.3)
    st, _ = jax.jit(mg.make_train(cfg, env, p))(jax.random.PRNGKey(3), hp)
    # the same paths (same key split as train) replayed by a numpy classical TD(0) loop
    key, _ = jax.random.split(jax.random.PRNGKey(3))
    key, k_s = jax.random.split(key)
    tr = rollout_episodes(env, p, zero_policy, None, k_s, 3, 30)
    phi, nphi = np.asarray(env.features(tr.obs, p)), np.asarray(env.features(tr.next_obs, p))
    r, term, m = np.asarray(tr.reward), np.asarray(tr.terminated), np.asarray(tr.mask)
    gamma, theta = np.float32(np.exp(-1.0 * 0.1)), np.zeros(2, np.float32)
    for k in range(30):  # classical TD(0): theta += alpha * (R + gamma V(s') - V(s)) grad V(s)
        update = np.zeros(2, np.float32)
        for n in range(3):
            td = r[k, n] + gamma * (1 - term[k, n]) * nphi[k, n] @ theta - phi[k, n] @ theta
            update += m[k, n] * td * phi[k, n]
        theta = theta + np.float32(0.3) * update / 3
    np.testing.assert_allclose(np.asarray(st.theta), theta, rtol=1e-5, atol=1e-7)
    # and one MOC step is exactly xi * delta with xi = dJ/dtheta = phi
    value = lambda th, o: env.features(o, p) @ th
    th = jnp.array([0.2, 0.5])
    delta = mg.td_errors(value, th, tr.obs, tr.next_obs, tr.reward, tr.terminated, tr.mask, gamma)
    moc = mg._vjp(value, th, tr.obs[:1], delta[:1])
    classical = (phi[0] * np.asarray(delta[0])[:, None]).sum(0)
    np.testing.assert_allclose(np.asarray(moc), classical, rtol=1e-6)


def test_lstd_statistics_match_float64_numpy(ou):
    env, p = ou
    tr = rollout_episodes(env, p, zero_policy, None, jax.random.PRNGKey(5), 1000, 300)
    phi, nphi = env.features(tr.obs, p), env.features(tr.next_obs, p)
    gamma = float(np.exp(-0.01))
    A, b = mg.lstd_statistics(phi, nphi, tr.reward, tr.terminated, tr.mask, gamma)
    P, NP = np.asarray(phi, np.float64), np.asarray(nphi, np.float64)
    m = np.asarray(tr.mask, np.float64)[..., None]
    c = (gamma * (1.0 - np.asarray(tr.terminated, np.float64)))[..., None]
    A64 = np.einsum("kni,knj->ij", P * m, P - c * NP)
    b64 = np.einsum("kni,kn->i", P * m, np.asarray(tr.reward, np.float64))
    np.testing.assert_allclose(A, A64, rtol=1e-4, atol=1e-4 * np.abs(A64).max())
    np.testing.assert_allclose(b, b64, rtol=1e-4)
    np.testing.assert_allclose(mg.lstd_solve(A, b), np.linalg.solve(A64, b64), rtol=1e-4)


@pytest.mark.parametrize(
    "method,mode",
    [("td0", "offline"), ("td0", "online"), ("tdlambda", "offline"), ("gtd", "online")],
)
def test_stochastic_approximation_reaches_truth(ou, method, mode):
    env, p = ou
    p = with_dt(p, 0.05)
    cfg, st, _ = run(env, p, method=method, mode=mode, num_paths=256, num_iterations=60)
    np.testing.assert_allclose(st.theta_avg, THETA_OU, atol=0.04, err_msg=f"{method} {mode}")


# ----------------------------------------------------------------------------- dt: convergence, vmap


def test_error_decreases_with_dt_and_vmap_over_dt(ou):
    env, p = ou
    dts = [0.1, 0.05, 0.02]
    cfg = mg.MartingaleConfig(method="lstd", num_paths=10_000, num_steps=150)
    hps = jax.tree.map(lambda *x: jnp.stack(x), *[mg.default_hparams(cfg, p, dt=d) for d in dts])
    train = mg.make_train(cfg, env, p)
    st, _ = jax.jit(jax.vmap(train, in_axes=(None, 0)))(jax.random.PRNGKey(0), hps)
    errs = [float(mg.relative_l2_error(cfg, env, p, th)) for th in st.theta]
    print("LSTD relative L2 error at dt", dts, errs)
    assert errs[0] > errs[1] > errs[2], errs
    assert errs[2] < 0.03
    # vmap over dt equals a separate run at that dt
    st1, _ = jax.jit(train)(jax.random.PRNGKey(0), mg.default_hparams(cfg, p, dt=0.05))
    np.testing.assert_allclose(st.theta[1], st1.theta, rtol=1e-4)
    # the env-level helper builds the same grid for the engine
    params, kmax = dt_grid_params(p, dts)
    assert kmax == 150 and params.max_steps_in_episode.tolist() == [30, 60, 150]


def test_vmap_over_seeds_equals_separate_runs(ou):
    env, p = ou
    p = with_dt(p, 0.1)
    cfg = mg.MartingaleConfig(method="td0", num_paths=16, num_iterations=3)
    hp = mg.default_hparams(cfg, p)
    train = jax.jit(mg.make_train(cfg, env, p))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    st, _ = jax.vmap(train, in_axes=(0, None))(keys, hp)
    for i in range(2):
        np.testing.assert_allclose(st.theta[i], train(keys[i], hp)[0].theta, rtol=1e-5)


# ----------------------------------------------------------------------------- MSTDE


def test_mstde_biased_on_ou_while_ml_is_not(ou):
    env, p = ou
    p = with_dt(p, 0.02)
    _, st_ml, _ = run(env, p, method="ml", num_paths=10_000)
    _, st_ms, _ = run(env, p, method="mstde", num_paths=10_000)
    assert np.abs(np.asarray(st_ml.theta) - THETA_OU).max() < 0.03
    assert np.abs(np.asarray(st_ms.theta) - THETA_OU).max() > 0.2  # x^2 coefficient ~ dt, not 1/3
    assert float(st_ms.theta[0]) < 0.05


# ----------------------------------------------------------------------------- errors


def test_invalid_dt_and_shapes_raise(ou):
    env, p = ou
    for bad in (0.0, -0.1, 5.0):
        with pytest.raises(ValueError, match="dt"):
            make("diffusion:ou", dt=bad)
    with pytest.raises(ValueError, match="larger than the horizon"):
        make("diffusion:bm-terminal", dt=2.0)
    with pytest.raises(ValueError, match="must divide"):
        make("diffusion:ou", dt=0.07)
    cfg = mg.MartingaleConfig(method="lstd", num_paths=8)
    with pytest.raises(ValueError, match="dt must be positive"):
        mg.default_hparams(cfg, p, dt=0.0)
    with pytest.raises(ValueError, match="num_steps"):
        mg.default_hparams(cfg, p, dt=0.001)  # finer than the 300-step grid
    hp = mg.default_hparams(cfg, p).replace(dt=jnp.float32(-0.01))
    with pytest.raises(ValueError, match="dt must be positive"):
        mg.make_train(cfg, env, p)(jax.random.PRNGKey(0), hp)
    with pytest.raises(ValueError, match="MartingaleConfig.method"):
        mg.make_train(mg.MartingaleConfig(method="sarsa"), env, p)
    with pytest.raises(ValueError, match="needs value='linear'"):
        mg.make_train(mg.MartingaleConfig(method="lstd", value="mlp"), env, p)
    with pytest.raises(ValueError, match="offline only"):
        mg.make_train(mg.MartingaleConfig(method="ml", mode="online"), env, p)
    with pytest.raises(ValueError, match="batch method"):
        mg.make_train(mg.MartingaleConfig(method="lstd", mode="online"), env, p)
    with pytest.raises(ValueError, match="num_paths"):
        mg.make_train(mg.MartingaleConfig(num_paths=0), env, p)
    with pytest.raises(ValueError, match="num_iterations"):
        mg.make_train(mg.MartingaleConfig(num_iterations=2.0), env, p)  # floats are refused
    with pytest.raises(ValueError, match="dt must be a positive number"):
        mg.default_hparams(cfg, dt=-0.1)  # without env_params: only the sign can be checked
    with pytest.raises(ValueError, match="unknown hparam"):
        mg.default_hparams(cfg, p, learning_rate=0.1)
    with pytest.raises(ValueError, match="no parameter"):
        make("diffusion:ou", kapa=2.0)
    # mismatched shapes
    phi = jnp.zeros((10, 4, 2))
    with pytest.raises(ValueError, match=r"reward must be \[K, N\]"):
        mg.lstd_statistics(phi, phi, jnp.zeros((10, 5)), jnp.zeros((10, 4)), jnp.ones((10, 4)), 0.9)
    with pytest.raises(ValueError, match="phi and next_phi"):
        mg.lstd_statistics(
            phi, phi[:, :3], jnp.zeros((10, 4)), jnp.zeros((10, 4)), jnp.ones((10, 4)), 0.9
        )
    with pytest.raises(ValueError, match=r"A must be \[d, d\]"):
        mg.lstd_solve(jnp.eye(2), jnp.ones(3))
    value = lambda th, o: env.features(o, p) @ th
    obs = jnp.zeros((10, 4, 3))
    with pytest.raises(ValueError, match="mask must be"):
        mg.td_errors(
            value,
            jnp.zeros(2),
            obs,
            obs,
            jnp.zeros((10, 4)),
            jnp.zeros((10, 4)),
            jnp.ones((9, 4)),
            0.9,
        )


# ----------------------------------------------------------------------------- agent protocol

TINY_ENV = dict(dt=0.2)  # K = 15; num_steps=30 leaves room for the knob test's hp.dt = 0.1


@pytest.fixture(scope="module")
def tiny():
    return make("diffusion:ou", **TINY_ENV)


def test_protocol_registry_entry_and_env_dt_sentinel(tiny):
    env, p = tiny
    entry = agents.get("martingale")
    assert entry.load() is mg and mg.Config is mg.MartingaleConfig and mg.HParams is mg.MartingaleHParams
    cfg = entry.smoke_config()
    hp = entry.default_hparams(cfg)  # the protocol's call: no env, dt = 0 -> the env's dt
    assert float(hp.dt) == 0.0 and all(x.dtype == jnp.float32 for x in jax.tree.leaves(hp))
    agent = entry.make(cfg, env, p)
    assert (agent.num_updates, agent.steps_per_update) == (cfg.num_iterations, cfg.num_paths * 15)
    assert agent.counter == "env_steps" and agent.score == "eval_value_error"
    assert not agent.higher_is_better
    st, m = jax.jit(make_train_of(agent))(jax.random.PRNGKey(0), hp)
    st2, m2 = jax.jit(mg.make_train(cfg, env, p))(jax.random.PRNGKey(0), mg.default_hparams(cfg, p))
    np.testing.assert_array_equal(st.theta, st2.theta)  # dt = 0 is exactly the env's dt
    assert set(m) == {"env_steps", "mean_sq_td", "theta_norm", "residual"}
    assert all(v.shape == (cfg.num_iterations,) and bool(jnp.isfinite(v).all()) for v in m.values())
    ev = agent.evaluate(st, jax.random.PRNGKey(1))
    assert set(ev) == {"eval_value_error"}
    np.testing.assert_allclose(ev["eval_value_error"], mg.relative_l2_error(cfg, env, p, st.theta_avg))


def _segments(agent, hp, lengths, key=0):
    st = agent.init(jax.random.PRNGKey(key), hp)
    out = []
    for n in lengths:
        st, m = jax.jit(agent.segment, static_argnums=2)(st, hp, n)
        out.append(m)
    return st, jax.tree.map(lambda *x: jnp.concatenate(x), *out)


@pytest.mark.parametrize(
    "kw",
    [dict(method="lstd"), dict(method="ml"), dict(method="mstde"), dict(method="td0", mode="online")],
    ids=["lstd", "ml", "mstde", "td0-online"],
)
def test_segments_resume_to_the_one_call_run(tiny, kw):
    env, p = tiny
    cfg = mg.MartingaleConfig(**kw, num_paths=32, num_iterations=3)
    agent = mg.make(cfg, env, p)
    hp = mg.default_hparams(cfg)
    full, m_full = jax.jit(make_train_of(agent))(jax.random.PRNGKey(0), hp)
    seg, m_seg = _segments(agent, hp, (1, 2))
    for a, b in zip(jax.tree.leaves((full, m_full)), jax.tree.leaves((seg, m_seg))):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m_full["env_steps"], 32 * 15 * np.arange(1, 4))


def test_closed_form_updates_pool_the_batches(tiny):
    """After all batches, the running sums give exactly the one-shot solve on all the paths."""
    env, p = tiny
    cfg = mg.MartingaleConfig(method="lstd", num_paths=64, num_iterations=3)
    hp = mg.default_hparams(cfg, p)
    st, m = jax.jit(mg.make_train(cfg, env, p))(jax.random.PRNGKey(4), hp)
    key, _ = jax.random.split(jax.random.PRNGKey(4))
    gamma = jnp.exp(-p.beta * p.dt)
    A, b = 0.0, 0.0
    for k in jax.random.split(key, 4)[1:]:  # the batch keys (the pre-protocol layout)
        tr = rollout_episodes(env, p, zero_policy, None, k, 64, 15)
        Aj, bj = mg.lstd_statistics(env.features(tr.obs, p), env.features(tr.next_obs, p), tr.reward, tr.terminated, tr.mask, gamma)
        A, b = A + Aj / 64, b + bj / 64
    np.testing.assert_allclose(st.theta, mg.lstd_solve(A / 3, b / 3, cfg.ridge), rtol=1e-5)
    np.testing.assert_allclose(st.G, A, rtol=1e-5)
    assert int(st.step) == 3 and float(m["residual"][-1]) < 1e-4


@pytest.mark.parametrize("method", ["lstd", "td0"])
def test_nan_hparams_give_non_finite_first_update(tiny, method):
    env, p = tiny
    cfg = mg.MartingaleConfig(method=method, num_paths=8, num_iterations=2)
    agent = mg.make(cfg, env, p)
    hp0 = mg.default_hparams(cfg)
    for name in ("lr", "lam", "dt"):  # lam (and for lstd lr) are otherwise unused
        hp = hp0.replace(**{name: jnp.float32(jnp.nan)})
        _, m = jax.jit(agent.segment, static_argnums=2)(agent.init(jax.random.PRNGKey(0), hp0), hp, 1)
        assert not bool(jnp.isfinite(m["theta_norm"][0])), (method, name)


def test_evaluate_without_closed_form_value(tiny):
    env, p = tiny
    cfg = mg.MartingaleConfig(method="lstd", num_paths=16)
    agent = mg.make(cfg, _WithoutValue(env), p)
    assert agent.score == "eval_mean_sq_td" and not agent.higher_is_better
    hp = mg.default_hparams(cfg)
    st, _ = agent.segment(agent.init(jax.random.PRNGKey(0), hp), hp, 1)
    ev = agent.evaluate(st, jax.random.PRNGKey(1))
    assert set(ev) == {"eval_mean_sq_td"} and bool(jnp.isfinite(ev["eval_mean_sq_td"]))


class _WithoutValue:
    """A diffusion task without a closed-form ``value`` (delegates everything else)."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name in ("value", "state_grid"):
            raise AttributeError(name)
        return getattr(self._env, name)


def _tiny(**kw):
    return mg.MartingaleConfig(**{**dict(num_paths=8, num_iterations=3, num_steps=30), **kw})


@pytest.mark.slow
def test_every_knob_td0_offline(tiny):
    env, p = tiny
    report = check_every_knob(
        "martingale",
        _tiny(method="td0"),
        env,
        p,
        alternatives=dict(
            method="tdlambda", value="mlp", mode="online", solver="sgd", num_steps=31, hidden=(4,),
            optimizer="adam", gtd_metric="identity", beta=1.5,
        ),
    )
    assert report["num_paths"] == report["hp.dt"] == report["mode"] == "changes", report


@pytest.mark.slow
def test_every_knob_lstd(tiny):
    env, p = tiny
    report = check_every_knob(
        "martingale",
        _tiny(method="lstd", num_iterations=2),
        env,
        p,
        alternatives=dict(
            method="ml", solver="sgd", num_steps=31, hidden=(4,), optimizer="adam", gtd_metric="identity",
            beta=1.5,
        ),
        skip=dict(value="lstd needs value='linear'", mode="lstd is a batch method (online is refused)"),
    )
    assert report["ridge"].startswith("inert") and report["num_iterations"] == "changes", report


@pytest.mark.parametrize(
    "knob,cfg_kw,alt",
    [
        ("num_steps", dict(method="td0", mode="online", optimizer="adam"), 31),
        ("solver", dict(method="ml"), "sgd"),
        ("hidden", dict(method="td0", value="mlp", hidden=(4,)), (5,)),
        ("optimizer", dict(method="td0"), "adam"),
        ("average_tail", dict(method="td0"), 1.0),
        ("gtd_metric", dict(method="gtd"), "identity"),
        ("ridge", dict(method="ml"), 1e-2),
        ("hp.lr", dict(method="td0"), None),
        ("hp.lr_decay", dict(method="td0"), None),
        ("hp.lr_w", dict(method="gtd"), None),
        ("hp.lam", dict(method="tdlambda"), None),
    ],
)
def test_inert_knobs_act_where_they_apply(tiny, knob, cfg_kw, alt):
    """Every entry of ``INERT`` is conditional: it changes the result for the methods it names."""
    assert knob in mg.INERT
    env, p = tiny
    cfg = _tiny(**cfg_kw)
    hp = mg.default_hparams(cfg)

    def fp(c, h):
        return _fingerprint(jax.jit(mg.make_train(c, env, p))(jax.random.PRNGKey(0), h))

    base = fp(cfg, hp)
    if knob.startswith("hp."):
        name = knob[3:]
        new = fp(cfg, hp.replace(**{name: getattr(hp, name) * 1.5}))
    else:
        new = fp(dataclasses.replace(cfg, **{knob: alt}), hp)
    assert _differs(base, new), knob


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_lstd_target_ou_1e4_paths_dt_001(ou):
    """Issue target: LSTD at dt = 0.01, 10^4 paths (4 batches), within 2% relative L2 (the time
    is measured by benchmarks/martingale_lstd.py, not asserted here)."""
    env, p = ou
    cfg, st, metrics = run(env, p, method="lstd", num_paths=2500, num_iterations=4)
    err = float(mg.relative_l2_error(cfg, env, p, st.theta))
    assert err < 0.02
    np.testing.assert_array_equal(metrics["env_steps"], 2500 * 300 * np.arange(1, 5))


@pytest.mark.slow
def test_neural_value_ml_and_td0_on_ou(ou):
    env, p = ou
    p = with_dt(p, 0.05)
    for method in ("ml", "td0"):
        cfg = mg.MartingaleConfig(
            method=method,
            value="mlp",
            hidden=(32, 32),
            optimizer="adam",
            num_paths=256,
            num_iterations=400,
        )
        hp = mg.default_hparams(cfg, p, lr_decay=0.3)  # adam: lr 0.03 (ML), 0.01 (TD)
        st, _ = jax.jit(mg.make_train(cfg, env, p))(jax.random.PRNGKey(0), hp)
        assert float(mg.relative_l2_error(cfg, env, p, st.theta_avg)) < 0.1, method


@pytest.mark.slow
def test_tdlambda_and_gtd_recover_gbm_rate():
    env, p = make("diffusion:gbm", dt=0.01)
    c_p = float(env.true_parameter(p)[0])
    for method in ("tdlambda", "gtd"):
        _, st, _ = run(
            env,
            p,
            method=method,
            value="parametric",
            num_paths=500,
            num_iterations=300,
            hp={"lr": 0.2},
        )
        assert abs(float(st.theta_avg[0]) - c_p) < 0.05 * c_p, (method, st.theta_avg)
