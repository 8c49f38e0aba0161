"""PPO / A2C: learning thresholds on real envs, vmap equivalences, runs that survive, bad input."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.agents import a2c, ppo
from rlsuite.core import checkpoint
from rlsuite.envs import make
from rlsuite.train import NonFiniteError, evaluate_run, run_training

TINY = ppo.PPOConfig(total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=2)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax:CartPole-v1")


@pytest.fixture(scope="module")
def tiny_train(cartpole):
    return jax.jit(ppo.make_train(TINY, *cartpole))


def _train(module, config, env, params, seed=0, hp=None):
    hp = module.default_hparams(config) if hp is None else hp
    return jax.jit(module.make_train(config, env, params))(jax.random.PRNGKey(seed), hp)


def test_ppo_reaches_475_on_cartpole_within_500k_steps(cartpole):
    env, params = cartpole
    config = ppo.PPOConfig()  # PureJaxRL CartPole config, 500k steps
    state, metrics = _train(ppo, config, env, params, seed=0)
    ret = ppo.evaluate(config, env, params, state, jax.random.PRNGKey(1), num_episodes=16)
    assert float(ret.mean()) >= 475.0
    assert metrics["episodes"].shape == (config.num_updates,)


def test_a2c_learns_cartpole(cartpole):
    env, params = cartpole
    config = a2c.A2CConfig()
    state, _ = _train(a2c, config, env, params, seed=0)
    ret = a2c.evaluate(config, env, params, state, jax.random.PRNGKey(1), num_episodes=16)
    assert float(ret.mean()) >= 400.0  # untrained policy: ~10


def test_ppo_continuous_actions_run_on_pendulum():
    env, params = make("gymnax:Pendulum-v1")
    config = dataclasses.replace(TINY, normalize_obs=True, normalize_reward=True)
    state, m = _train(ppo, config, env, params)
    assert np.all(np.isfinite(np.asarray(m["value_loss"])))
    assert float(state.obs_stats.count) > config.num_envs * config.num_steps  # stats updated in learner


def test_vmap_over_seeds_equals_separate_runs(cartpole, tiny_train):
    env, params = cartpole
    train = tiny_train
    hp = ppo.default_hparams(TINY)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1, 2)])
    vstate, _ = jax.jit(jax.vmap(ppo.make_train(TINY, env, params), in_axes=(0, None)))(keys, hp)
    for i, s in enumerate((0, 1, 2)):
        state, _ = train(jax.random.PRNGKey(s), hp)
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(vstate.params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=2e-5, atol=2e-6)


def test_vmap_over_hyperparameters_sweeps(cartpole, tiny_train):
    env, params = cartpole
    hp = ppo.default_hparams(TINY)
    lrs = jnp.array([1e-4, 1e-3])
    hps = jax.vmap(lambda lr: hp.replace(lr=lr))(lrs)
    vstate, _ = jax.jit(jax.vmap(ppo.make_train(TINY, env, params), in_axes=(None, 0)))(jax.random.PRNGKey(0), hps)
    single, _ = tiny_train(jax.random.PRNGKey(0), hp.replace(lr=jnp.float32(1e-3)))
    w_v = jax.tree.leaves(vstate.params)[0]
    w_s = jax.tree.leaves(single.params)[0]
    np.testing.assert_allclose(np.asarray(w_v[1]), np.asarray(w_s), rtol=2e-5, atol=2e-6)
    assert not np.allclose(np.asarray(w_v[0]), np.asarray(w_v[1]))


@pytest.mark.parametrize("field", ["lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm"])
def test_every_ppo_hparam_changes_training(tiny_train, field):
    hp = ppo.default_hparams(TINY)
    train = tiny_train
    base, _ = train(jax.random.PRNGKey(0), hp)
    changed = {"lr": 1e-2, "gamma": 0.5, "gae_lambda": 0.1, "clip_eps": 0.01, "ent_coef": 0.5,
               "vf_coef": 5.0, "max_grad_norm": 1e-3}[field]
    other, _ = train(jax.random.PRNGKey(0), hp.replace(**{field: jnp.float32(changed)}))
    diff = sum(float(jnp.abs(a - b).sum()) for a, b in zip(jax.tree.leaves(base.params), jax.tree.leaves(other.params)))
    assert diff > 1e-6, f"hparam {field} had no effect"


def test_resume_equals_uninterrupted(tmp_path):
    kw = dict(config=TINY, seeds=[0, 1], segments=3, progress=False, eval_episodes=2)
    full = run_training("ppo", "gymnax:CartPole-v1", run_dir=str(tmp_path / "full"), **kw)
    assert run_training("ppo", "gymnax:CartPole-v1", run_dir=str(tmp_path / "cut"), max_segments=1, **kw) is None
    resumed = run_training("ppo", "gymnax:CartPole-v1", run_dir=str(tmp_path / "cut"), resume=True, **kw)
    assert resumed["eval_return_per_seed"] == full["eval_return_per_seed"]
    env, params = make("gymnax:CartPole-v1")
    init_fn, _ = ppo.make_segments(TINY, env, params, 1)
    target = jax.eval_shape(jax.vmap(init_fn, in_axes=(0, None)), jnp.stack([jax.random.PRNGKey(0)] * 2), ppo.default_hparams(TINY))
    a, _ = checkpoint.restore(str(tmp_path / "full"), target)
    b, _ = checkpoint.restore(str(tmp_path / "cut"), target)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    lines = [json.loads(line) for line in open(tmp_path / "cut" / "metrics.jsonl")]
    assert [r["update"] for r in lines] == [2, 4, 6]
    assert os.path.exists(tmp_path / "full" / "learning_curve.png")
    ev = evaluate_run(str(tmp_path / "full"), episodes=2)
    assert len(ev["return_per_seed"]) == 2 and ev["update"] == TINY.num_updates


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run_dir = str(tmp_path / "run")
    kw = dict(seeds=[0], segments=3, progress=False, eval_episodes=2)
    run_training("ppo", "gymnax:CartPole-v1", config=TINY, run_dir=run_dir, max_segments=1, **kw)
    good = checkpoint.latest_step(run_dir)
    cfg = json.load(open(os.path.join(run_dir, "config.json")))
    cfg["config"]["lr"] = float("nan")
    json.dump(cfg, open(os.path.join(run_dir, "config.json"), "w"))
    with pytest.raises(NonFiniteError, match="non-finite"):
        run_training("ppo", "gymnax:CartPole-v1", run_dir=run_dir, resume=True, **kw)
    assert checkpoint.latest_step(run_dir) == good


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_envs=0), "num_envs"),
        (dict(num_steps=-5), "num_steps"),
        (dict(num_minibatches=3), "num_minibatches=3"),
        (dict(total_timesteps=10), "total_timesteps=10"),
        (dict(hidden=(64, 0)), "hidden"),
        (dict(activation="swish"), "swish"),
    ],
)
def test_bad_ppo_config_fails_early(cartpole, overrides, match):
    env, params = cartpole
    with pytest.raises(ValueError, match=match):
        ppo.make_train(dataclasses.replace(TINY, **overrides), env, params)


def test_bad_inputs_to_runner_and_cli(tmp_path, cartpole, capsys):
    from rlsuite.cli import main

    with pytest.raises(ValueError, match="'sac'"):
        run_training("sac", "gymnax:CartPole-v1")
    with pytest.raises(ValueError, match="unknown PPO preset 'atari'"):
        ppo.PPOConfig.preset("atari")
    with pytest.raises(ValueError, match="A2CConfig"):
        run_training("ppo", "gymnax:CartPole-v1", config=a2c.A2CConfig(), run_dir=str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        run_training("ppo", "gymnax:CartPole-v1", run_dir=str(tmp_path / "missing"), resume=True)
    with pytest.raises(ValueError, match="a2c.*optimizer|optimizer must be"):
        a2c.make_train(dataclasses.replace(a2c.A2CConfig(), optimizer="sgd"), *cartpole)
    with pytest.raises(ValueError, match="gymnasium:CartPole-v1"):
        run_training("ppo", "gymnasium:CartPole-v1", config=TINY, run_dir=str(tmp_path / "h"))
    assert main(["train", "ppo", "--env", "gymnax:CartPol-v1", "--total-steps", "2048"]) == 2
    assert "gymnax:CartPole-v1" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    run_dir = str(tmp_path / "run")
    run_training("ppo", "gymnax:CartPole-v1", config=TINY, seeds=[0], segments=3, run_dir=run_dir,
                 progress=False, max_segments=1)
    step = checkpoint.latest_step(run_dir)
    ckpt = os.path.join(run_dir, "checkpoints", str(step))
    for root, _, files in os.walk(ckpt):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        run_training("ppo", "gymnax:CartPole-v1", run_dir=run_dir, resume=True, progress=False)


def test_cli_train_and_eval_roundtrip(tmp_path, capsys):
    from rlsuite.cli import main

    run_dir = str(tmp_path / "cli")
    rc = main(["train", "ppo", "--total-steps", "768", "--num-envs", "4", "--num-steps", "32",
               "--num-minibatches", "2", "--seeds", "2", "--segments", "2", "--run-dir", run_dir,
               "--no-progress", "--eval-episodes", "2"])
    assert rc == 0
    assert "eval return" in capsys.readouterr().out
    assert main(["eval", run_dir, "--episodes", "2"]) == 0
    assert '"return_mean"' in capsys.readouterr().out


@pytest.mark.slow
def test_ppo_improves_on_brax_inverted_pendulum():
    env, params = make("brax:inverted_pendulum")
    config = ppo.PPOConfig.preset("brax", total_timesteps=600_000, num_envs=256, num_steps=16, num_minibatches=8)
    hp = ppo.default_hparams(config)
    init_fn, _ = ppo.make_segments(config, env, params, 1)
    before = ppo.evaluate(config, env, params, jax.jit(init_fn)(jax.random.PRNGKey(0), hp), jax.random.PRNGKey(1), 8)
    state, _ = _train(ppo, config, env, params)
    after = ppo.evaluate(config, env, params, state, jax.random.PRNGKey(1), 8)
    assert float(after.mean()) >= 200.0 and float(after.mean()) > 3 * float(before.mean())
