"""LPO / DPO / TA-LPO: drift constraints, DPO's closed form, PPO and LPO as special cases, objective
files, every knob, and a learning threshold on CartPole."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _knobs import check_every_knob

from rlsuite import agents
from rlsuite.agents import lpo, ppo
from rlsuite.core.agent import make_train
from rlsuite.envs import make

DPO_FAST_STEPS, DPO_FAST_THRESHOLD = 50_000, 350.0  # measured 427 (seed 0); seeds 1-3: 427, 435, 432

TINY = lpo.LPOConfig(total_timesteps=4 * 32 * 3, num_envs=4, num_steps=32, num_minibatches=2,
                     update_epochs=2, eval_episodes=2, hidden=(16,))
R = np.concatenate([np.linspace(0.05, 3.0, 60), [1.0, 1 - 1e-3, 1 + 1e-3]]).astype(np.float32)
A = np.linspace(-4.0, 4.0, 17).astype(np.float32)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax:CartPole-v1")


def _cfg(method, **kw):
    return dataclasses.replace(TINY, method=method, **kw)


def _leaves(tree):
    out = []
    for x in jax.tree.leaves(tree):
        x = jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        out.append(np.asarray(x))
    return out


def _random_hp(config, seed=0):
    return lpo.default_hparams(config).replace(drift=lpo.init_drift(jax.random.PRNGKey(seed), config))


# ----------------------------------------------------------------------------- drift functions


@pytest.mark.parametrize("method, ppo_init, clip_inputs", [
    ("lpo", False, False), ("lpo", True, False), ("lpo", False, True), ("ta-lpo", True, True),
    ("ta-lpo", False, False), ("dpo", False, False),
])
def test_drift_is_nonnegative_and_flat_zero_at_ratio_one(method, ppo_init, clip_inputs):
    config = _cfg(method, ppo_init=ppo_init, clip_inputs=clip_inputs)

    @jax.jit
    def check(hp, progress):
        d = lambda r, a: lpo.drift(config, hp, r, a, progress)
        slope = jax.vmap(jax.grad(d), (None, 0))(jnp.float32(1.0), A)
        return d(R[:, None], A[None, :]), d(jnp.ones_like(A), A), slope

    for seed in range(3):  # random drift weights
        hp = _random_hp(config, seed) if method in lpo.LEARNED else lpo.default_hparams(config)
        for progress in (0.0, 0.37, 0.99):
            grid, at_one, slope = map(np.asarray, check(hp, jnp.float32(progress)))
            assert np.all(grid >= 0) and np.all(np.isfinite(grid))
            assert grid.max() > 0  # not trivially zero
            np.testing.assert_array_equal(at_one, 0.0)
            np.testing.assert_array_equal(slope, 0.0)


def test_dpo_closed_form_matches_the_sheet_formula():
    r, a = np.meshgrid(R.astype(np.float64), A.astype(np.float64), indexing="ij")
    alpha, beta = 2.0, 0.6
    pos = np.maximum(0.0, (r - 1) * a - alpha * np.tanh((r - 1) * a / alpha))
    neg = np.maximum(0.0, np.log(r) * a - beta * np.tanh(np.log(r) * a / beta))
    want = np.where(a >= 0, pos, neg)
    config = _cfg("dpo")
    hp = lpo.default_hparams(config)
    assert float(hp.dpo_alpha) == alpha and float(hp.dpo_beta) == np.float32(beta)
    hp2 = lpo.default_hparams(dataclasses.replace(config, dpo_alpha=3.0, dpo_beta=0.5))
    assert float(hp2.dpo_alpha) == 3.0 and float(hp2.dpo_beta) == 0.5  # the config sets the defaults
    got = np.asarray(lpo.drift(config, hp, jnp.asarray(r, jnp.float32), jnp.asarray(a, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_features_default_drift_and_scalar_drift():
    r, a = jnp.array([0.5, 1.5]), jnp.array([2.0, -1.0])
    x = np.asarray(lpo.drift_features(r, a))
    base = np.stack([r - 1, (r - 1) ** 2, np.log(r), np.log(r) ** 2], -1)
    np.testing.assert_allclose(x, np.concatenate([base, base * np.asarray(a)[:, None]], -1), rtol=1e-6)
    xt = np.asarray(lpo.drift_features(r, a, progress=0.25))
    np.testing.assert_allclose(xt, np.concatenate([x, 0.25 * x], -1))
    assert np.abs(np.asarray(lpo.drift_features(10 * r, 5 * a, clip_inputs=True))).max() == 2.0
    # default (no file): zero weights -> PPO's drift less the margin; without ppo_init, D = 0
    config = _cfg("lpo")
    hp = lpo.default_hparams(config)
    ppo_d = np.maximum(0, (R[:, None] - np.clip(R[:, None], 0.8, 1.2)) * A[None, :])
    np.testing.assert_allclose(np.asarray(lpo.drift(config, hp, R[:, None], A[None, :])),
                               np.maximum(ppo_d - 1e-4, 0), rtol=1e-6, atol=1e-5)
    assert float(jnp.abs(lpo.drift(_cfg("lpo", ppo_init=False), hp, R[:, None], A[None, :])).max()) == 0
    # a scalar drift (--hparam drift=0.0) fills every weight
    d0 = lpo.drift(config, hp.replace(drift=jnp.float32(0.0)), R[:, None], A[None, :])
    np.testing.assert_array_equal(np.asarray(d0), np.asarray(lpo.drift(config, hp, R[:, None], A[None, :])))
    with pytest.raises(ValueError, match="LPOHParams.drift"):
        lpo.drift(_cfg("ta-lpo"), hp, R, R)  # an 8-input drift for ta-lpo


@pytest.mark.parametrize("method", ["lpo", "ta-lpo"])
def test_es_start_equals_the_default_drift_but_is_not_an_antithetic_saddle(method):
    config = _cfg(method)
    hp = lpo.default_hparams(config)
    start = lpo.es_start_drift(jax.random.PRNGKey(0), config)
    d = lambda drift: np.asarray(lpo.drift(config, hp.replace(drift=drift), R[:, None], A[None, :], 0.5))  # noqa: E731
    np.testing.assert_array_equal(d(start), d(hp.drift))  # same function as the default
    eps = jax.tree.map(lambda x: 0.3 * jax.random.normal(jax.random.PRNGKey(1), x.shape), start)
    plus, minus = (jax.tree.map(lambda a, b, s=s: a + s * b, start, eps) for s in (1.0, -1.0))
    assert np.abs(d(plus) - d(minus)).max() > 1e-3  # an antithetic pair sees two different drifts
    zero = hp.drift
    zp, zm = (jax.tree.map(lambda a, b, s=s: a + s * b, zero, eps) for s in (1.0, -1.0))
    np.testing.assert_allclose(d(zp), d(zm), atol=1e-6)  # ...whereas at the all-zero point it does not


# ----------------------------------------------------------------------------- special cases


def test_ppo_clip_drift_gives_exactly_ppos_update(cartpole):
    config = _cfg("ppo-clip")
    pcfg = ppo.PPOConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ppo.PPOConfig)})
    key = jax.random.PRNGKey(7)
    a, ma = jax.jit(lpo.make_train(config, *cartpole))(key, lpo.default_hparams(config))
    b, mb = jax.jit(ppo.make_train(pcfg, *cartpole))(key, ppo.default_hparams(pcfg))
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)  # bit-identical on CPU
    np.testing.assert_allclose(ma["loss/actor"], mb["loss/actor"], rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def lpo_train(cartpole):
    return jax.jit(make_train(lpo.make(_cfg("lpo", clip_inputs=True), *cartpole)))


def test_ta_lpo_with_zero_temporal_weights_equals_lpo(cartpole, lpo_train):
    config = _cfg("lpo", clip_inputs=True)
    hp = _random_hp(config, 3)
    ta = _cfg("ta-lpo", clip_inputs=True)
    hp_ta = lpo.default_hparams(ta).replace(drift=lpo.to_temporal(hp.drift))
    key = jax.random.PRNGKey(1)
    a, _ = lpo_train(key, hp)
    ta_train = jax.jit(lpo.make_train(ta, *cartpole))
    b, _ = ta_train(key, hp_ta)
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    # ...and non-zero temporal weights do change training
    w = hp_ta.drift["params"]["hidden"]["kernel"]
    hp_ta2 = hp_ta.replace(drift={"params": {**hp_ta.drift["params"], "hidden": {"kernel": w.at[8:].set(w[:8])}}})
    c, _ = ta_train(key, hp_ta2)
    assert not np.allclose(_leaves(b)[0], _leaves(c)[0])


def test_vmap_over_a_population_of_drifts_equals_separate_runs(cartpole, lpo_train):
    """What the meta-ES does: ``vmap`` over ``hparams.drift`` (no special code)."""
    config = _cfg("lpo", clip_inputs=True)
    hps = [_random_hp(config, s) for s in (11, 12)]
    pop = jax.tree.map(lambda *x: jnp.stack(x), *hps)
    key = jax.random.PRNGKey(2)
    agent = lpo.make(config, *cartpole)
    vstate, _ = jax.jit(jax.vmap(make_train(agent), in_axes=(None, 0)))(key, pop)
    for i, hp in enumerate(hps):
        state, _ = lpo_train(key, hp)
        for x, y in zip(_leaves(state), _leaves(vstate)):
            np.testing.assert_allclose(x, y[i], rtol=1e-4, atol=1e-5)
    assert not np.allclose(_leaves(vstate.params)[0][0], _leaves(vstate.params)[0][1])


# ----------------------------------------------------------------------------- objective files


def test_objective_file_roundtrip_and_clear_errors(tmp_path):
    config = _cfg("lpo")
    params = lpo.init_drift(jax.random.PRNGKey(0), config)
    path = lpo.save_drift(str(tmp_path / "d.msgpack"), params, config)
    loaded = lpo.default_hparams(dataclasses.replace(config, objective=path)).drift
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert jax.tree.map(np.shape, lpo.load_drift(path)) == lpo.drift_shapes(8)
    with pytest.raises(FileNotFoundError, match="nope.msgpack"):
        lpo.validate(dataclasses.replace(config, objective=str(tmp_path / "nope.msgpack")))
    (tmp_path / "junk").write_bytes(b"not a drift")
    with pytest.raises(ValueError, match="junk"):
        lpo.load_drift(str(tmp_path / "junk"))
    with pytest.raises(ValueError, match=r"method='ta-lpo'"):
        lpo.load_drift(path, _cfg("ta-lpo"))
    with pytest.raises(ValueError, match="ppo_init=True.*--ppo-init"):
        lpo.load_drift(path, _cfg("lpo", ppo_init=False))
    with pytest.raises(ValueError, match=r"\(8, 128\)"):
        lpo.save_drift(str(tmp_path / "bad"), {"params": {"hidden": {"kernel": np.zeros((8, 64))}}})
    with pytest.raises(ValueError, match="objective applies to method lpo / ta-lpo"):
        lpo.validate(_cfg("dpo", objective=path))
    with pytest.raises(ValueError, match="'clipped'"):
        lpo.validate(_cfg("clipped"))
    with pytest.raises(ValueError, match="dpo_beta"):
        lpo.validate(_cfg("dpo", dpo_beta=0.0))
    ta = lpo.save_drift(str(tmp_path / "ta"), lpo.to_temporal(params))  # no config: shapes only
    assert jax.tree.map(np.shape, lpo.load_drift(ta, _cfg("ta-lpo"))) == lpo.drift_shapes(16)


def test_cli_trains_lpo_with_an_objective_file(tmp_path, capsys):
    from rlsuite.cli import main

    config = _cfg("lpo")
    path = lpo.save_drift(str(tmp_path / "obj.msgpack"), lpo.init_drift(jax.random.PRNGKey(0), config), config)
    run_dir = str(tmp_path / "run")
    rc = main(["train", "lpo", "--objective", path, "--total-steps", "256", "--num-envs", "4",
               "--num-steps", "32", "--num-minibatches", "2", "--hidden", "16", "--seeds", "1",
               "--segments", "1", "--run-dir", run_dir, "--no-progress", "--eval-episodes", "2"])
    assert rc == 0 and "eval_return" in capsys.readouterr().out
    assert json.load(open(os.path.join(run_dir, "config.json")))["config"]["objective"] == path


# ----------------------------------------------------------------------------- knobs and learning


# the fast check perturbs each variant's own knobs (the config's dpo_alpha / dpo_beta only set the
# hparams' defaults: test_dpo_closed_form...); ta-lpo shares lpo's code apart from the temporal
# inputs (test_ta_lpo...), so its check is in the slow full one
_OWN = {"lpo": ("objective", "ppo_init", "clip_inputs"), "ta-lpo": ("objective", "ppo_init", "clip_inputs"),
        "dpo": ("hp.dpo_alpha", "hp.dpo_beta")}


def _knobs(name, cartpole, tmp_path, full: bool):
    """The every-knob check: all knobs (``full``) or the variant's own (the PPO machinery is the
    same code as PPO's, whose knobs its own test checks)."""
    entry = agents.get(name)
    # lr 0.2 moves the ratio far enough for clip_eps and the [-2, 2] input clip to bind
    config = entry.config(**{**{f.name: getattr(TINY, f.name) for f in dataclasses.fields(ppo.PPOConfig)},
                             "lr": 0.2})
    skip = {"hp.drift": "a params dict: covered by `objective` and the TA / population tests"}
    alternatives = {"hidden": (32,), "activation": "relu", "num_minibatches": 4, "clip_eps": 0.01,
                    "hp.clip_eps": 0.01, "total_timesteps": config.total_timesteps + 4 * 32}
    if name in lpo.LEARNED:
        drift = lpo.init_drift(jax.random.PRNGKey(0), config)
        config = dataclasses.replace(config, objective=lpo.save_drift(str(tmp_path / "d"), drift))
        alternatives["objective"] = None
        skip.update({k: "dpo only" for k in ("dpo_alpha", "dpo_beta", "hp.dpo_alpha", "hp.dpo_beta")})
    else:
        skip.update({k: "lpo / ta-lpo only" for k in ("objective", "ppo_init", "clip_inputs")})
    if not full:
        hp_names = [f"hp.{f.name}" for f in dataclasses.fields(lpo.LPOHParams)]
        for k in [f.name for f in dataclasses.fields(config)] + hp_names:
            if k not in _OWN[name]:
                skip.setdefault(k, "shared PPO machinery (test_agents_ppo_a2c, and the slow full check)")
    return check_every_knob(name, config, *cartpole, alternatives=alternatives, skip=skip)


@pytest.mark.parametrize("name", ["lpo", pytest.param("ta-lpo", marks=pytest.mark.slow), "dpo"])
def test_every_drift_knob_changes_training(cartpole, tmp_path, name):
    report = _knobs(name, cartpole, tmp_path, full=False)
    assert all(report[k] == "changes" for k in _OWN[name]), report


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lpo", "ta-lpo", "dpo"])
def test_every_config_field_and_hparam_changes_training(cartpole, tmp_path, name):
    report = _knobs(name, cartpole, tmp_path, full=True)
    assert report["eval_episodes"].startswith("inert")


def test_dpo_learns_cartpole_at_a_small_budget(cartpole):
    env, params = cartpole
    config = lpo.LPOConfig(method="dpo", total_timesteps=DPO_FAST_STEPS)
    state, _ = jax.jit(lpo.make_train(config, env, params))(jax.random.PRNGKey(0), lpo.default_hparams(config))
    agent = lpo.make(dataclasses.replace(config, eval_episodes=16), env, params)
    assert float(jax.jit(agent.evaluate)(state, jax.random.PRNGKey(1))["eval_return"]) >= DPO_FAST_THRESHOLD
