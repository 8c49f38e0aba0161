"""Tests for rlsuite.data: collection through the engine, Minari round trip, D4RL HDF5 loading,
qlearning semantics, references, the CLI, and clear errors on bad inputs."""

from __future__ import annotations

import json
import os

import h5py
import jax
import numpy as np
import pytest

from rlsuite import data
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.data import Dataset
from rlsuite.data.references import normalized_score
from rlsuite.envs import make


@pytest.fixture(autouse=True)
def _minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari_root"))


@pytest.fixture(scope="module")
def pendulum():
    env, p = make("gymnax:Pendulum-v1")
    pol, params = data.random_network_policy(env, p, jax.random.PRNGKey(0))
    # 3 envs x 450 steps: per env two full 200-step episodes (time limit) and a 50-step cut piece
    ds = data.collect(env, p, pol, params, jax.random.PRNGKey(1), 3 * 450, num_envs=3, chunk_steps=150,
                      metadata={"env_id": "gymnax:Pendulum-v1", "kind": "random", "seed": 1})
    return env, p, pol, params, ds


@pytest.fixture(scope="module")
def cartpole():
    env, p = make("gymnax:CartPole-v1")
    pol, params = data.random_network_policy(env, p, jax.random.PRNGKey(2))
    ds = data.collect(env, p, pol, params, jax.random.PRNGKey(3), 2000, num_envs=4, chunk_steps=100)
    return env, p, ds


def _assert_same(a: Dataset, b: Dataset):
    for k, v in a.arrays().items():
        w = getattr(b, k)
        assert w is not None, k
        assert np.asarray(v).dtype == np.asarray(w).dtype, (k, np.asarray(v).dtype, np.asarray(w).dtype)
        np.testing.assert_array_equal(np.asarray(v), np.asarray(w), err_msg=k)
    sa, ea = a.episode_boundaries()
    sb, eb = b.episode_boundaries()
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(ea, eb)


# ----------------------------------------------------------------------------- collection


def test_collect_pendulum_terminals_timeouts(pendulum):
    env, p, pol, params, ds = pendulum
    assert len(ds) == 1350 and ds.observations.shape == (1350, 3) and ds.actions.shape == (1350, 1)
    assert ds.observations.dtype == np.float32 and ds.terminals.dtype == bool and ds.log_probs.shape == (1350,)
    assert not ds.terminals.any()  # Pendulum never terminates
    # env-major layout: per env, time-limit at steps 200 and 400, cut at 450
    expect = np.zeros(1350, bool)
    for e in range(3):
        expect[e * 450 + np.array([199, 399, 449])] = True
    np.testing.assert_array_equal(ds.timeouts, expect)
    np.testing.assert_array_equal(ds.episode_lengths(), [200, 200, 50] * 3)
    np.testing.assert_array_equal(ds.complete_episode_mask(), [True, True, False] * 3)
    # inside an episode the successor is the next row; across a boundary it is not (auto-reset)
    starts, ends = ds.episode_boundaries()
    inner = np.ones(1350, bool)
    inner[ends - 1] = False
    np.testing.assert_array_equal(ds.next_observations[:-1][inner[:-1]], ds.observations[1:][inner[:-1]])
    assert not np.allclose(ds.next_observations[199], ds.observations[200])
    assert np.all(np.abs(ds.actions) <= 2.0)  # clipped into Pendulum's Box(-2, 2)
    assert ds.metadata["max_episode_steps"] == 200


def test_collect_matches_engine_returns(pendulum):
    """Episode returns of the dataset equal the engine's own episode statistics."""
    env, p, pol, params, ds = pendulum
    from rlsuite.data.collect import clip_policy

    carry = init_rollout(env, p, jax.random.PRNGKey(1), 3)
    _, tr = jax.jit(lambda c: rollout(env, p, clip_policy(pol, env, p), params, c, 450))(carry)
    done = np.asarray(tr.terminated | tr.truncated)
    engine = np.asarray(tr.episode_return).T[done.T]  # env-major order
    np.testing.assert_allclose(ds.episode_returns(complete_only=True), engine, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(ds.observations.reshape(3, 450, 3), np.swapaxes(np.asarray(tr.obs), 0, 1))


def test_collect_cartpole_discrete_terminals(cartpole):
    env, p, ds = cartpole
    assert ds.actions.shape == (2000,) and ds.actions.dtype == np.int32 and ds.discrete
    assert ds.terminals.sum() > 10  # random CartPole falls quickly
    assert not (ds.terminals & ds.timeouts).any()
    assert ds.act_dim == 2
    ret = ds.episode_returns(complete_only=True)
    np.testing.assert_allclose(ret, ds.episode_lengths()[ds.complete_episode_mask()])  # reward 1 per step


def test_stream_to_dataset_one_transition_or_chunks():
    """The one stream collector: a single [T, N] Transition and the same stream in two time
    chunks give the same env-major Dataset, cut ends flagged as time-outs."""
    env, p = make("gymnax:Pendulum-v1")
    pol, params = data.random_network_policy(env, p, jax.random.PRNGKey(0))
    roll = jax.jit(lambda c, n: rollout(env, p, pol, params, c, n), static_argnums=1)
    carry = init_rollout(env, p, jax.random.PRNGKey(1), 2)
    _, whole = roll(carry, 60)
    c1, a = roll(carry, 40)
    _, b = roll(c1, 20)
    ds = data.stream_to_dataset(whole, metadata={"kind": "x"})
    _assert_same(ds, data.stream_to_dataset([a, b], metadata={"kind": "x"}))
    assert len(ds) == 120 and ds.metadata == {"kind": "x"} and ds.log_probs.shape == (120,)
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [59, 119])  # each env's stream is cut
    np.testing.assert_array_equal(ds.observations[:60], np.asarray(whole.obs)[:, 0])
    short = data.stream_to_dataset(whole, size=50)
    assert len(short) == 50 and short.timeouts[-1]


def test_train_ppo_orbax_snapshot_cache(tmp_path):
    """PPO through the agent protocol; snapshots cached as orbax checkpoints and reused."""
    from rlsuite.core import checkpoint
    from rlsuite.data.collect import default_ppo_config, train_ppo

    env, p = make("gymnax:Pendulum-v1")
    cfg = default_ppo_config(env, p, 3 * 128, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1, hidden=(8,))
    cache = str(tmp_path / "ppo")
    run = train_ppo(env, p, jax.random.PRNGKey(0), 3 * 128, num_segments=3, eval_episodes=2, config=cfg, cache_dir=cache)
    assert run.updates == [0, 1, 2, 3] and run.env_steps == [0, 128, 256, 384] and len(run.eval_returns) == 4
    assert checkpoint.list_checkpoints(cache) == [0, 1, 2, 3] and not os.path.exists(os.path.join(cache, "snapshots.msgpack"))
    assert "checkpoints/2 #2 (after 256 PPO env steps)" in run.checkpoint(2)
    assert not np.allclose(jax.tree.leaves(run.snapshots[0])[0], jax.tree.leaves(run.snapshots[-1])[0])
    again = train_ppo(env, p, jax.random.PRNGKey(0), 3 * 128, num_segments=3, eval_episodes=2, config=cfg, cache_dir=cache)
    assert again.eval_returns == run.eval_returns and again.train_seconds == run.train_seconds  # loaded, not retrained
    for x, y in zip(jax.tree.leaves(run.snapshots), jax.tree.leaves(again.snapshots), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the same run without a cache trains to identical snapshots (the cache changes nothing)
    fresh = train_ppo(env, p, jax.random.PRNGKey(0), 3 * 128, num_segments=3, eval_episodes=2, config=cfg)
    assert fresh.eval_returns == run.eval_returns and fresh.path is None
    for x, y in zip(jax.tree.leaves(run.snapshots), jax.tree.leaves(fresh.snapshots), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match="num_segments must be a positive integer"):
        train_ppo(env, p, jax.random.PRNGKey(0), 128, num_segments=0, config=cfg)


def test_prepare_data_offline_semantics():
    """rlsuite.data.offline: reward scaling over return_range (cut at terminals, time-outs, chain
    breaks and max_steps), qlearning drop, actions to [-1, 1], state statistics."""
    from rlsuite.data.offline import locomotion_reward_scale, prepare_data, return_range

    env, p = make("gymnax:Pendulum-v1")  # obs (3,), actions Box(-2, 2, (1,))
    n = 12
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n + 1, 3)).astype(np.float32)
    nobs = obs[1:].copy()
    nobs[5] += 10.0  # a chain break after row 5 (no flag)
    ds = Dataset.from_arrays(
        observations=obs[:-1], actions=rng.uniform(-2, 2, (n, 1)), rewards=np.arange(n, dtype=np.float32),
        next_observations=nobs, terminals=np.eye(n, dtype=bool)[2], timeouts=np.eye(n, dtype=bool)[8],
    )

    def reference(max_steps):  # the pre-Dataset loop of O-DICE's reward scaling
        brk = np.zeros(n, bool)
        brk[:-1] = np.any(np.abs(nobs[:-1] - obs[1:n]) > 1e-6, axis=-1)
        ends = ds.terminals | ds.timeouts | brk
        out, ret, length = [], 0.0, 0
        for i in range(n):
            ret, length = ret + float(ds.rewards[i]), length + 1
            if ends[i] or length == max_steps:
                out.append(ret)
                ret, length = 0.0, 0
        return out + ([ret] if length else [])

    for max_steps in (1000, 2, 4):
        np.testing.assert_allclose(return_range(ds, max_steps), reference(max_steps))
    np.testing.assert_allclose(return_range(ds, 1000), [0 + 1 + 2, 3 + 4 + 5, 6 + 7 + 8, 9 + 10 + 11])
    scale = locomotion_reward_scale(ds, 1000)
    assert scale == pytest.approx(1000.0 / 27.0)
    prep = prepare_data(ds, env, p, reward_scale="locomotion")
    assert prep.size == n - 1  # the time-out row 8 dropped
    np.testing.assert_allclose(prep.rewards, np.delete(np.arange(n), 8) * scale, rtol=1e-6)
    np.testing.assert_array_equal(prep.dones, np.delete(ds.terminals, 8).astype(np.float32))
    np.testing.assert_allclose(prep.actions, np.delete(ds.actions, 8, 0) / 2.0, rtol=1e-6)
    np.testing.assert_array_equal(prep.obs_mean, 0.0)
    kept = prepare_data(ds, env, p, drop_timeouts=False, normalize_states=True, zero_rewards=True)
    assert kept.size == n and not np.asarray(kept.rewards).any()
    np.testing.assert_allclose(kept.obs_std, ds.observations.std(0) + 1e-3, rtol=1e-6)
    np.testing.assert_allclose(kept.normalize(ds.observations).mean(0), 0.0, atol=1e-5)
    b = jax.jit(lambda d, k: d.sample(k, 64))(prep, jax.random.PRNGKey(0))
    assert b.observations.shape == (64, 3) and b.obs_mean.shape == (3,)
    cart, cp = make("gymnax:CartPole-v1")
    with pytest.raises(ValueError, match="continuous"):
        prepare_data(ds, cart, cp)
    with pytest.raises(ValueError, match="reward_scale='raw' is unknown"):
        prepare_data(ds, env, p, reward_scale="raw")
    with pytest.raises(ValueError, match="every transition of the dataset is a time-out"):
        prepare_data(ds.replace(timeouts=np.ones(n, bool), terminals=np.zeros(n, bool)), env, p)


def test_uniform_random_policy_and_reference():
    env, p = make("gymnax:Pendulum-v1")
    r = data.random_reference(env, p, seed=0, num_episodes=4, horizon=20)
    assert r["episodes"] == 4 and np.isfinite(r["mean"]) and r["mean"] < 0
    r2 = data.random_reference(env, p, seed=0, num_episodes=4, horizon=20)
    assert r == r2  # seeded


# ----------------------------------------------------------------------------- Dataset ops


def _toy() -> Dataset:
    # episodes: [0,1,2] terminal, [3,4] time-out, [5,6] cut (trailing, no flag)
    n = 7
    obs = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return Dataset.from_arrays(
        observations=obs, actions=np.ones((n, 1), np.float32), rewards=np.arange(n, dtype=np.float32),
        next_observations=obs + 100, terminals=np.array([0, 0, 1, 0, 0, 0, 0], bool),
        timeouts=np.array([0, 0, 0, 0, 1, 0, 0], bool), metadata={"kind": "toy"},
    )


def test_episode_structure_and_qlearning():
    ds = _toy()
    s, e = ds.episode_boundaries()
    np.testing.assert_array_equal(s, [0, 3, 5])
    np.testing.assert_array_equal(e, [3, 5, 7])
    np.testing.assert_allclose(ds.episode_returns(), [3.0, 7.0, 11.0])
    assert [len(x) for x in ds.episodes()] == [3, 2, 2]
    q = ds.qlearning()  # D4RL: drop the time-out row, keep terminals
    np.testing.assert_array_equal(q.rewards, [0, 1, 2, 3, 5, 6])
    np.testing.assert_array_equal(q.terminals, [0, 0, 1, 0, 0, 0])
    assert not q.timeouts.any() and q.metadata["qlearning"]
    k = ds.qlearning(drop_timeouts=False)  # keep it as a non-terminal (bootstrapped) transition
    assert len(k) == 7 and not k.timeouts.any()
    np.testing.assert_array_equal(k.terminals, ds.terminals)
    np.testing.assert_array_equal(k.next_observations, ds.next_observations)


def test_sample_is_jittable_and_draws_rows():
    ds = _toy().to_jax()
    b = jax.jit(lambda d, k: d.sample(k, 64))(ds, jax.random.PRNGKey(0))
    assert b.observations.shape == (64, 2) and b.rewards.shape == (64,)
    idx = np.asarray(b.rewards).astype(int)  # rewards == row index in the toy set
    np.testing.assert_array_equal(np.asarray(b.observations), np.asarray(ds.observations)[idx])
    np.testing.assert_array_equal(np.asarray(b.terminals), np.asarray(ds.terminals)[idx])
    assert b.metadata == {"kind": "toy"}


def test_concatenate_medium_expert():
    a, b = _toy(), _toy().with_metadata(kind="expert")
    cut = a.cut_to_last_complete()
    assert len(cut) == 5  # trailing cut piece removed
    me = Dataset.concatenate([a, b])
    assert len(me) == 14 and me.num_episodes == 6
    assert me.timeouts[6]  # the seam is closed
    assert me.metadata["parts"] == [{"kind": "toy", "size": 7}, {"kind": "expert", "size": 7}]
    with pytest.raises(ValueError, match="observation shape"):
        Dataset.concatenate([a, Dataset.from_arrays(**{**a.arrays(), "observations": np.zeros((7, 3)), "next_observations": np.zeros((7, 3))})])


def test_normalized_score():
    assert normalized_score(5.0, 0.0, 10.0) == 50.0
    np.testing.assert_allclose(normalized_score(np.array([0.0, 10.0]), 0.0, 10.0), [0.0, 100.0])
    with pytest.raises(ValueError, match="reference"):
        normalized_score(1.0, 1.0, 1.0)
    ds = _toy().with_metadata(env_id="brax:hopper", ref_random_return=-20.0, ref_expert_return=3234.0, ref_source="d4rl")
    with pytest.raises(ValueError, match="D4RL"):
        data.dataset_normalized_score(ds)


# ----------------------------------------------------------------------------- Minari


def test_minari_round_trip_exact(pendulum, tmp_path):
    ds = pendulum[-1].with_metadata(ref_random_return=-1200.0, ref_expert_return=-200.0)
    path = data.save_minari(ds, str(tmp_path / "pend-random-v0"))
    assert os.path.exists(os.path.join(path, "main_data.hdf5"))
    back = data.load(str(tmp_path / "pend-random-v0"))
    _assert_same(ds, back)
    np.testing.assert_array_equal(back.timeouts, ds.timeouts)
    assert back.metadata["env_id"] == "gymnax:Pendulum-v1" and back.metadata["ref_expert_return"] == -200.0
    # the minari package reads it too, episode by episode
    import minari

    m = minari.MinariDataset(path)
    assert m.total_steps == len(ds) and m.total_episodes == ds.num_episodes
    ep = next(m.iterate_episodes())
    assert ep.observations.shape == (201, 3) and ep.truncations[-1] and not ep.terminations.any()
    assert m.storage.metadata["ref_max_score"] == -200.0
    # and by id under MINARI_DATASETS_PATH
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path)
    _assert_same(ds, data.load_minari("pend-random-v0"))
    with pytest.raises(ValueError, match="already exists"):
        data.save_minari(ds, str(tmp_path / "pend-random-v0"))


def test_minari_round_trip_discrete(cartpole, tmp_path):
    ds = cartpole[-1]
    data.save_minari(ds, str(tmp_path / "cp-random-v0"))
    back = data.load(str(tmp_path / "cp-random-v0"))
    _assert_same(ds, back)
    data.check_env(back, cartpole[0], cartpole[1])


# ----------------------------------------------------------------------------- D4RL hdf5


def _write_d4rl(path, n=9, next_obs=True, **override):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    arrays = {
        "observations": obs, "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.array([0, 0, 1, 0, 0, 0, 0, 0, 0][:n], bool),
        "timeouts": np.array([0, 0, 0, 0, 0, 1, 0, 0, 0][:n], bool),
    }
    if next_obs:
        arrays["next_observations"] = rng.normal(size=(n, 3)).astype(np.float32)
    arrays.update(override)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if v is not None:
                f.create_dataset(k, data=v)
        f.create_dataset("infos/action_log_probs", data=np.zeros(n, np.float32))
        f.attrs["note"] = "test"
    return arrays


def test_d4rl_loader(tmp_path):
    path = str(tmp_path / "hopper-medium-v2.hdf5")
    arr = _write_d4rl(path)
    ds = data.load(path)
    for k in ("observations", "actions", "rewards", "next_observations", "terminals"):
        np.testing.assert_array_equal(getattr(ds, k), arr[k])
    np.testing.assert_array_equal(ds.timeouts[:-1], arr["timeouts"][:-1])
    assert ds.timeouts[-1] and ds.log_probs.shape == (9,)
    np.testing.assert_array_equal(ds.episode_lengths(), [3, 3, 3])  # last row closed as a cut
    assert ds.metadata["ref_source"] == "d4rl" and ds.metadata["ref_expert_return"] == 3234.3
    assert len(ds.qlearning()) == 7  # the time-out row and the closed last row


def test_d4rl_loader_without_next_observations(tmp_path):
    path = str(tmp_path / "own.hdf5")
    arr = _write_d4rl(path, next_obs=False)
    ds = data.load_d4rl(path)
    obs = arr["observations"]
    # successor = next row inside an episode (also after a terminal, D4RL-style); time-outs dropped
    np.testing.assert_array_equal(ds.next_observations[:5], obs[1:6])
    assert ds.metadata["next_observations_reconstructed"]
    q = ds.qlearning()
    assert len(q) == 7  # the time-out row 5 and the final cut row 8 are dropped
    np.testing.assert_array_equal(q.observations, obs[[0, 1, 2, 3, 4, 6, 7]])
    np.testing.assert_array_equal(q.next_observations, obs[[1, 2, 3, 4, 5, 7, 8]])
    with pytest.raises(ValueError, match="successor of a time-out row is unknown"):
        ds.qlearning(drop_timeouts=False)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs(tmp_path, pendulum):
    with pytest.raises(FileNotFoundError, match="no dataset"):
        data.load(str(tmp_path / "nope-v0"))
    with pytest.raises(FileNotFoundError, match="no D4RL file"):
        data.load_d4rl(str(tmp_path / "nope.hdf5"))
    p = str(tmp_path / "missing.hdf5")
    _write_d4rl(p, timeouts=None)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['timeouts'\]"):
        data.load(p)
    p = str(tmp_path / "short.hdf5")
    _write_d4rl(p, rewards=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="'observations' has 9 rows but 'rewards' has 5"):
        data.load(p)
    p = str(tmp_path / "nan.hdf5")
    r = np.zeros(9, np.float32)
    r[4] = np.nan
    _write_d4rl(p, rewards=r)
    with pytest.raises(ValueError, match=r"'rewards' has 1 non-finite \(NaN\) value\(s\); first at row 4"):
        data.load(p)
    good = str(tmp_path / "good.hdf5")
    _write_d4rl(good)
    raw = open(good, "rb").read()
    p = str(tmp_path / "truncated.hdf5")
    open(p, "wb").write(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        data.load(p)
    p = str(tmp_path / "garbage.hdf5")
    open(p, "wb").write(b"not an hdf5 file at all" * 10)
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        data.load(p)
    # wrong observation shape for an env
    env, params = make("gymnax:CartPole-v1")
    with pytest.raises(ValueError, match=r"observation shape mismatch: dataset has \(3,\).*expects \(4,\)"):
        data.load(good, env=env, env_params=params)
    ds = pendulum[-1]
    with pytest.raises(ValueError, match="observation shape mismatch"):
        ds.validate(obs_shape=(4,))
    with pytest.raises(ValueError, match="field 'observations' has 1350 rows but rewards has 1349"):
        Dataset.from_arrays(**{**ds.arrays(), "rewards": ds.rewards[:-1]})
    # a Minari directory with a damaged data file
    d = tmp_path / "pend-bad-v0"
    data.save_minari(ds, str(d))
    with open(d / "data" / "main_data.hdf5", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ValueError, match="corrupt"):
        data.load(str(d))
    with pytest.raises(ValueError, match="unknown dataset kind"):
        data.BuildSpec(env_id="gymnax:Pendulum-v1", kind="mediocre", size=10).validate()
    with pytest.raises(ValueError, match="ppo_preset"):
        data.BuildSpec(env_id="gymnax:Pendulum-v1", kind="medium", size=10, ppo_preset="huge").validate()


def test_ppo_preset_for_stronger_experts(pendulum):
    """``ppo_preset='brax'`` is PureJaxRL's full brax preset with the budget; 'cpu' the default,
    and only the non-default preset changes the PPO cache path."""
    from rlsuite.agents import ppo
    from rlsuite.data.collect import _ppo_cache_dir, default_ppo_config, ppo_config_for

    env, p = pendulum[:2]
    assert ppo_config_for("brax", env, p, 12_345) == ppo.PPOConfig.preset("brax", total_timesteps=12_345)
    assert ppo_config_for("cpu", env, p, 12_345) == default_ppo_config(env, p, 12_345)
    cpu, brax = (_ppo_cache_dir("/c", "brax:hopper", {}, 0, 10, preset) for preset in ("cpu", "brax"))
    assert cpu == _ppo_cache_dir("/c", "brax:hopper", {}, 0, 10) and brax == cpu + "_brax"


# ----------------------------------------------------------------------------- CLI


def test_cli_build_random_and_info(tmp_path, capsys):
    from rlsuite.data.cli import main

    out = str(tmp_path / "pend-random-v0")
    rc = main(["build", "--env", "gymnax:Pendulum-v1", "--kind", "random", "--size", "400", "--num-envs", "2",
               "--ref-episodes", "4", "--random-policy", "uniform", "--out", out, "--quiet"])
    assert rc == 0
    ds = data.load(out)
    assert len(ds) == 400 and ds.metadata["kind"] == "random" and ds.metadata["ref_random_return"] < 0
    assert "rlsuite data build" in ds.metadata["command"]
    refs = json.load(open(tmp_path / "_cache" / "references.json"))
    assert refs["gymnax:Pendulum-v1"]["random_episodes"] == 4
    capsys.readouterr()
    assert main(["info", out, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["transitions"] == 400 and info["episodes"] == 2 and info["env_id"] == "gymnax:Pendulum-v1"
    with pytest.raises(ValueError, match="already exists"):
        main(["build", "--env", "gymnax:Pendulum-v1", "--kind", "random", "--size", "400", "--out", out, "--quiet"])


# ----------------------------------------------------------------------------- slow: the D4RL kinds


@pytest.mark.slow
def test_build_all_kinds_pendulum(tmp_path):
    """PPO-based kinds on Pendulum: medium between random and expert, replay = training segments,
    medium-expert = medium (cut) + expert; everything survives the Minari round trip."""
    spec = data.BuildSpec(env_id="gymnax:Pendulum-v1", kind="medium", size=4000, seed=0, ppo_steps=150_000,
                          num_envs=8, num_segments=30, ref_episodes=20, cache_dir=str(tmp_path / "cache"))
    b = data.Builder(spec)
    b.expert_reference()  # trains PPO first, so the random dataset also gets the expert reference
    built = {k: b.build(k) for k in data.KINDS}
    score = {k: data.dataset_normalized_score(v) for k, v in built.items()}
    assert score["random"] < score["medium"] < score["expert"], score
    assert score["expert"] > 60, score
    run = b.ppo_run()
    m = b.medium_index()
    assert 0 < m < len(run.snapshots) - 1
    rep = built["medium-replay"]
    assert rep.metadata["replay_segments"] == m and len(rep) == m * rep.metadata["replay_transitions_per_segment"]
    med, exp, me = built["medium"], built["expert"], built["medium-expert"]
    assert len(me) == len(med.cut_to_last_complete()) + len(exp)
    for k, ds in built.items():
        assert ds.metadata["ref_random_return"] < ds.metadata["ref_expert_return"]
        data.save_minari(ds, str(tmp_path / f"pend-{k}-v0"))
        _assert_same(ds, data.load(str(tmp_path / f"pend-{k}-v0")))
    # a second builder reuses the cached PPO run and references
    b2 = data.Builder(spec)
    assert b2.ppo_run().eval_returns == run.eval_returns


def test_minari_id_lookup_creates_nothing_in_the_home_directory(tmp_path, monkeypatch):
    from rlsuite.data.io import load_minari

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="no dataset at 'hopper-medium-v0'"):
        load_minari("hopper-medium-v0")
    assert not (tmp_path / ".minari").exists()
