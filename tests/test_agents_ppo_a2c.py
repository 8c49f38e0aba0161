"""PPO / A2C: learning thresholds on real envs, vmap equivalences, runs that survive, bad input."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _knobs import check_every_knob

from rlsuite.agents import a2c, ppo
from rlsuite.core import checkpoint
from rlsuite.envs import make
from rlsuite.train import NonFiniteError, run_training

PPO_FAST_STEPS, PPO_FAST_THRESHOLD = 50_000, 300.0  # measured 477 (seed 0)
A2C_FAST_STEPS, A2C_FAST_THRESHOLD = 50_000, 150.0  # measured 247 (seed 0)

TINY = ppo.PPOConfig(total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=2,
                     eval_episodes=2)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax:CartPole-v1")


@pytest.fixture(scope="module")
def tiny_train(cartpole):
    return jax.jit(ppo.make_train(TINY, *cartpole))


def _train(module, config, env, params, seed=0, hp=None):
    hp = module.default_hparams(config) if hp is None else hp
    return jax.jit(module.make_train(config, env, params))(jax.random.PRNGKey(seed), hp)


def _eval(module, config, env, params, state, episodes=16):
    agent = module.make(dataclasses.replace(config, eval_episodes=episodes), env, params)
    return float(jax.jit(agent.evaluate)(state, jax.random.PRNGKey(1))["eval_return"])


@pytest.mark.slow
def test_ppo_reaches_475_on_cartpole_within_500k_steps(cartpole):
    env, params = cartpole
    config = ppo.PPOConfig()  # PureJaxRL CartPole config, 500k steps
    state, metrics = _train(ppo, config, env, params, seed=0)
    assert _eval(ppo, config, env, params, state) >= 475.0
    assert metrics["episodes"].shape == (config.num_updates,)


@pytest.mark.slow
def test_a2c_learns_cartpole(cartpole):
    env, params = cartpole
    config = a2c.A2CConfig()
    state, _ = _train(a2c, config, env, params, seed=0)
    assert _eval(a2c, config, env, params, state) >= 400.0  # untrained policy: ~10


def test_ppo_learns_cartpole_at_a_small_budget(cartpole):
    """The fast learning test of the actor-critic family (the 500k-step ones are slow)."""
    env, params = cartpole
    config = ppo.PPOConfig(total_timesteps=PPO_FAST_STEPS)
    state, _ = _train(ppo, config, env, params, seed=0)
    assert _eval(ppo, config, env, params, state) >= PPO_FAST_THRESHOLD  # untrained: ~10


def test_a2c_learns_cartpole_at_a_small_budget(cartpole):
    env, params = cartpole
    config = a2c.A2CConfig(total_timesteps=A2C_FAST_STEPS)
    state, _ = _train(a2c, config, env, params, seed=0)
    assert _eval(a2c, config, env, params, state) >= A2C_FAST_THRESHOLD


def test_ppo_continuous_actions_run_on_pendulum():
    env, params = make("gymnax:Pendulum-v1")
    config = dataclasses.replace(TINY, normalize_obs=True, normalize_reward=True)
    state, m = _train(ppo, config, env, params)
    assert np.all(np.isfinite(np.asarray(m["loss/value"])))
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


@pytest.mark.parametrize("name, config", [
    pytest.param("ppo", TINY, marks=pytest.mark.slow),  # ~1 min: the slow tier checks every knob
    pytest.param("a2c", a2c.A2CConfig(total_timesteps=4 * 5 * 6, num_envs=4), marks=pytest.mark.slow),
])
def test_every_config_field_and_hparam_changes_training(cartpole, name, config):
    # clip_eps 0.2 -> 0.3 clips nothing in 6 tiny updates: use a range that binds
    alternatives = {"hidden": (32,), "activation": "relu", "optimizer": "adam", "num_minibatches": 4,
                    "clip_eps": 0.01, "hp.clip_eps": 0.01,
                    "total_timesteps": config.total_timesteps + config.num_envs * config.num_steps}
    report = check_every_knob(name, config, *cartpole, alternatives=alternatives)
    assert report["eval_episodes"].startswith("inert")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run_dir = str(tmp_path / "run")
    kw = dict(seeds=[0], segments=3, progress=False)
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
    with pytest.raises(ValueError, match="A2CConfig.optimizer='sgd'"):
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
    assert "eval_return" in capsys.readouterr().out
    assert main(["eval", run_dir, "--episodes", "2"]) == 0
    assert '"eval_return_mean"' in capsys.readouterr().out


@pytest.mark.slow
def test_ppo_improves_on_brax_inverted_pendulum():
    env, params = make("brax:inverted_pendulum")
    config = ppo.PPOConfig.preset("brax", total_timesteps=600_000, num_envs=256, num_steps=16, num_minibatches=8)
    hp = ppo.default_hparams(config)
    agent = ppo.make(config, env, params)
    before = _eval(ppo, config, env, params, jax.jit(agent.init)(jax.random.PRNGKey(0), hp), 8)
    state, _ = _train(ppo, config, env, params)
    after = _eval(ppo, config, env, params, state, 8)
    assert after >= 200.0 and after > 3 * before
