"""Deep GA (seed chains), GA-NS (novelty) and the deceptive maze (rlsuite.meta.deep_ga, envs/maze.py)."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.envs import make
from rlsuite.envs.maze import MazeParams, make_hard, ray_distances
from rlsuite.meta import deep_ga as D

TINY = D.GAConfig(population=8, truncation=3, sigma=0.05, generations=4, elite_candidates=2, elite_episodes=2,
                  test_episodes=2, horizon=20, hidden=(8,), segments=2)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax:CartPole-v1")


@pytest.fixture(scope="module")
def tiny_ga(cartpole):
    return D.make_ga(TINY, *cartpole)


# ----------------------------------------------------------------------------- seed chains


def test_decode_reproduces_step_by_step(tiny_ga):
    ga = tiny_ga
    chain = [7, 101, 205, 309]
    theta = jax.jit(ga.theta0)(jnp.int32(7))  # jitted steps: eager XLA ops may round differently
    for s in chain[1:]:
        theta = jax.jit(ga.mutate)(theta, jnp.int32(s))
    padded = jnp.zeros(TINY.generations + 1, jnp.int32).at[:4].set(jnp.asarray(chain))
    dec = jax.jit(ga.decode)(padded, jnp.int32(4))
    np.testing.assert_array_equal(np.asarray(dec), np.asarray(theta))
    # a shorter length ignores the tail
    np.testing.assert_array_equal(np.asarray(jax.jit(ga.decode)(padded, jnp.int32(1))),
                                  np.asarray(jax.jit(ga.theta0)(jnp.int32(7))))


def test_evolved_population_equals_decoded_chains(tiny_ga):
    ga = tiny_ga
    state, _ = jax.jit(lambda s: ga.segment(s, 3))(ga.init())
    dec = jax.jit(ga.decode_all)(state.chains, state.lengths)
    np.testing.assert_array_equal(np.asarray(dec), np.asarray(state.params))  # bit-identical
    assert int(state.lengths.max()) <= 4
    # unique mutation seeds: g * N + i
    n = TINY.population
    for row, ln in zip(np.asarray(state.chains), np.asarray(state.lengths)):
        assert all(g * n <= s < (g + 1) * n for g, s in enumerate(row[:ln]))


def test_encoding_size_grows_with_generations_not_params(cartpole):
    def nbytes(gens, hidden):
        ga = D.make_ga(D.GAConfig(population=4, truncation=2, generations=gens, hidden=hidden, horizon=5), *cartpole)
        shp = jax.eval_shape(lambda: D.compact(ga.init()))
        return sum(int(np.prod(x.shape)) * x.dtype.itemsize for k, x in shp.items() if k in ("chains", "lengths"))

    assert nbytes(10, (8,)) == nbytes(10, (256, 256))
    assert nbytes(100, (8,)) > nbytes(10, (8,))
    assert nbytes(100, (8,)) == 4 * (4 * 101 + 4)


# ----------------------------------------------------------------------------- selection / elitism


def test_selection_and_elitism_on_hand_made_fitness(cartpole, monkeypatch):
    N, T, C = 10, 3, 2
    cfg = D.GAConfig(population=N, truncation=T, sigma=1e-3, generations=2, elite_candidates=C, elite_episodes=4,
                     horizon=5, hidden=(4,), episodes=1)
    fit = np.array([5, 1, 9, 3, 8, 7, 0, 2, 4, 6], np.float32)  # slot 9 = previous elite
    # validation means (per individual): among candidates {2, 4} (top C of 0..8) + {9}, 4 wins
    val = np.array([0, 0, 6, 0, 10, 0, 0, 0, 0, 7], np.float32)

    def fake_rollout(env, env_params, policy, theta, key, num_envs, horizon):
        i = theta[0].astype(jnp.int32)
        table = jnp.asarray(fit if num_envs == 1 else val)
        r = jnp.zeros((horizon, num_envs)).at[0].set(table[i])
        from rlsuite.core.types import Trajectory

        z = jnp.zeros((horizon, num_envs))
        obs = jnp.zeros((horizon, num_envs, 4 + 1))
        return Trajectory(obs=obs, action=z, reward=r, mask=jnp.ones_like(z), terminated=z.astype(bool),
                          truncated=z.astype(bool), next_obs=obs, extras=())

    monkeypatch.setattr(D, "rollout_episodes", fake_rollout)
    ga = D.make_ga(cfg, *cartpole)
    s0 = ga.init()
    s0 = s0.replace(params=s0.params.at[:, 0].set(jnp.arange(N, dtype=jnp.float32)))
    s1, m = jax.jit(ga.step)(s0)
    assert float(m["elite_fitness"]) == 10.0 and float(m["best_fitness"]) == 9.0
    # the elite (individual 4) sits unmodified in slot N-1, with its chain
    np.testing.assert_array_equal(np.asarray(s1.params[-1]), np.asarray(s0.params[4]))
    assert int(s1.lengths[-1]) == 1 and int(s1.chains[-1, 0]) == 4
    # offspring parents: only from the top T = {2, 4, 5} (elite 4 is among them); one mutation each
    parents = np.asarray(s1.chains[:-1, 0])
    assert set(parents) <= {2, 4, 5}
    assert np.all(np.asarray(s1.lengths[:-1]) == 2)
    np.testing.assert_array_equal(np.asarray(s1.chains[:-1, 1]), N + np.arange(N - 1))
    # frames: N one-episode evaluations + (C + 1) x 4 validation episodes, horizon 5 each
    assert int(m["frames"]) == N * 5 + (C + 1) * 4 * 5


def test_elite_outside_top_t_replaces_last_parent(cartpole, monkeypatch):
    N, T = 6, 2
    cfg = D.GAConfig(population=N, truncation=T, sigma=1e-3, generations=2, elite_candidates=4, elite_episodes=3,
                     horizon=3, hidden=(4,))
    fit = np.array([9, 8, 1, 2, 7, 0], np.float32)
    val = np.array([1, 1, 0, 5, 1, 0], np.float32)  # -> individual 3 (rank 4 by fitness) is the elite

    def fake_rollout(env, env_params, policy, theta, key, num_envs, horizon):
        from rlsuite.core.types import Trajectory

        i = theta[0].astype(jnp.int32)
        r = jnp.zeros((horizon, num_envs)).at[0].set(jnp.asarray(fit if num_envs == 1 else val)[i])
        z = jnp.zeros((horizon, num_envs))
        obs = jnp.zeros((horizon, num_envs, 5))
        return Trajectory(obs, z, r, jnp.ones_like(z), z.astype(bool), z.astype(bool), obs, ())

    monkeypatch.setattr(D, "rollout_episodes", fake_rollout)
    ga = D.make_ga(cfg, *cartpole)
    s0 = ga.init()
    s0 = s0.replace(params=s0.params.at[:, 0].set(jnp.arange(N, dtype=jnp.float32)))
    s1, m = jax.jit(ga.step)(s0)
    assert float(m["elite_fitness"]) == 5.0
    assert int(s1.chains[-1, 0]) == 3
    assert set(np.asarray(s1.chains[:-1, 0])) <= {0, 3}  # top-T {0, 1}: the elite replaces the T-th


def test_random_search_is_fresh_initialisations(tiny_ga, cartpole):
    ga = D.make_ga(TINY.__class__(**{**TINY.__dict__, "truncation": 0}), *cartpole)
    s1, _ = jax.jit(ga.step)(ga.init())
    assert np.all(np.asarray(s1.lengths[:-1]) == 1)
    np.testing.assert_array_equal(np.asarray(s1.params[0]), np.asarray(jax.jit(ga.theta0)(s1.chains[0, 0])))


def test_elite_never_decreases_on_deterministic_task(cartpole):
    # CartPole with a deterministic policy and a fixed start is deterministic if the reset is fixed:
    # use the maze (deterministic start, deterministic dynamics)
    env, params = make("maze:hard", max_steps_in_episode=30)
    cfg = D.GAConfig(population=12, truncation=4, sigma=0.3, generations=8, elite_candidates=3, elite_episodes=2,
                     hidden=(8,), segments=1)
    ga = D.make_ga(cfg, env, params)
    _, m = jax.jit(lambda s: ga.segment(s, 8))(ga.init())
    e = np.asarray(m["elite_fitness"])
    assert np.all(np.diff(e) >= -1e-6), e


# ----------------------------------------------------------------------------- novelty


def test_novelty_matches_numpy_knn():
    rng = np.random.default_rng(0)
    bc = rng.normal(size=(9, 2)).astype(np.float32)
    archive = rng.normal(size=(6, 2)).astype(np.float32)
    count, k = 4, 3
    got = np.asarray(D.novelty(jnp.asarray(bc), jnp.asarray(archive), jnp.int32(count), k))
    want = []
    for i in range(9):
        others = np.concatenate([np.delete(bc, i, 0), archive[:count]])
        d = np.sort(np.linalg.norm(others - bc[i], axis=1))[:k]
        want.append(d.mean())
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # empty archive, k larger than the neighbours available
    got = np.asarray(D.novelty(jnp.asarray(bc[:3]), jnp.asarray(archive), jnp.int32(0), 10))
    want = [np.linalg.norm(np.delete(bc[:3], i, 0) - bc[i], axis=1).mean() for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_archive_ring_buffer_and_ns_step():
    env, params = make("maze:hard", max_steps_in_episode=10)
    cfg = D.GAConfig(population=6, truncation=2, sigma=0.5, generations=5, elite_candidates=1, elite_episodes=1,
                     hidden=(4,), novelty=True, novelty_k=3, archive_size=4, archive_add=3, archive_mode="novel",
                     segments=1)
    ga = D.make_ga(cfg, env, params)
    s, m = jax.jit(lambda s: ga.segment(s, 2))(ga.init())
    assert int(s.archive_count) == 6
    # rows 0, 1 of the ring were overwritten by the second generation (rows 4 % 4, 5 % 4)
    bc2 = np.asarray(m["bc"][1])
    assert np.any(np.all(np.isclose(np.asarray(s.archive)[0], bc2), axis=1))
    assert np.asarray(m["bc"]).shape == (2, 6, 2)


# ----------------------------------------------------------------------------- resume


def test_resume_equals_uninterrupted(tmp_path):
    cfg = D.GAConfig(population=8, truncation=3, sigma=0.3, generations=4, elite_candidates=2, elite_episodes=2,
                     test_episodes=2, hidden=(8,), segments=2, novelty=True, novelty_k=3, archive_size=8)
    kw = dict(env_kwargs={"max_steps_in_episode": 20}, progress=False)
    a = D.run("maze:hard", cfg, str(tmp_path / "a"), **kw)
    assert D.run("maze:hard", cfg, str(tmp_path / "b"), max_segments=1, **kw) is None
    b = D.resume(str(tmp_path / "b"), progress=False)
    assert a["final_elite_fitness"] == b["final_elite_fitness"] and a["elite_test_return"] == b["elite_test_return"]
    ma = [json.loads(line) for line in open(tmp_path / "a" / "metrics.jsonl")]
    mb = [json.loads(line) for line in open(tmp_path / "b" / "metrics.jsonl")]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(ma) == strip(mb)
    assert open(tmp_path / "a" / "elite.msgpack", "rb").read() == open(tmp_path / "b" / "elite.msgpack", "rb").read()
    # the exported elite evaluates
    r = D.evaluate_elite(str(tmp_path / "a"), episodes=2)
    assert np.isfinite(r["mean_return"])
    from rlsuite.cli import main  # `rlsuite eval` reads a GA run directory too

    assert main(["eval", str(tmp_path / "a"), "--episodes", "2", "--seed", "12345"]) == 0
    assert os.path.exists(tmp_path / "a" / "final_population.npz")


# ----------------------------------------------------------------------------- maze


def test_maze_walls_block_and_goal_terminates():
    env, p = make_hard()
    obs, s = env.reset_env(jax.random.PRNGKey(0), p)
    assert obs.shape == (9,)
    for _ in range(40):  # straight up: stopped under the cup's roof at y = 8 (the trap)
        obs, s, r, done, _ = env.step_env(None, s, jnp.array([0.0, 1.0]), p)
    assert float(s.y) < 8.0 - p.robot_radius + 1e-4 and float(s.y) > 7.5 and not bool(done)
    assert float(s.x) == 5.0
    # forward sensor reads the distance to the roof, the side ones the cup's walls (2 away)
    assert abs(float(obs[2]) * p.sensor_range - (8.0 - float(s.y))) < 1e-4
    np.testing.assert_allclose(np.asarray(obs)[[0, 4]] * p.sensor_range, [2.0, 2.0], rtol=1e-5)
    # radar: goal straight ahead -> front slice
    np.testing.assert_array_equal(np.asarray(obs[5:]), [1, 0, 0, 0])
    # goal reached ends the episode (open layout, start just below the goal)
    env2, p2 = make("maze:open", start=[5.0, 8.3])
    _, s2 = env2.reset_env(jax.random.PRNGKey(0), p2)
    done = False
    for _ in range(3):
        _, s2, r2, done, _ = env2.step_env(None, s2, jnp.array([0.0, 1.0]), p2)
    assert bool(done) and float(env2.goal_distance(s2, p2)) < p2.goal_radius


def test_maze_sensors_on_hand_made_layout():
    walls = jnp.asarray([[2.0, -5.0, 2.0, 5.0], [-5.0, 3.0, 5.0, 3.0]], jnp.float32)  # x = 2 and y = 3
    ang = jnp.asarray([0.0, jnp.pi / 2, jnp.pi, jnp.pi / 4], jnp.float32)
    d = np.asarray(ray_distances(jnp.float32(0.0), jnp.float32(0.0), ang, walls, 10.0))
    np.testing.assert_allclose(d, [2.0, 3.0, 10.0, 2.0 * np.sqrt(2)], rtol=1e-5)
    p = MazeParams(walls=walls, start=jnp.asarray([0.0, 0.0]), start_heading=0.0, goal=jnp.asarray([-4.0, 0.0]),
                   sensor_range=10.0)
    from rlsuite.envs.maze import Maze

    env = Maze(walls=np.asarray(walls), name="t")
    obs, s = env.reset_env(jax.random.PRNGKey(0), p)
    # sensors at -90, -45, 0, 45, 90 deg: down (none), (2, -2) diag, x wall 2, diag 2 sqrt 2, y wall 3
    np.testing.assert_allclose(np.asarray(obs[:5]) * 10.0, [10.0, 2.0 * np.sqrt(2), 2.0, 2.0 * np.sqrt(2), 3.0],
                               rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(obs[5:]), [0, 0, 1, 0])  # goal behind
    # a move into the x = 2 wall is cancelled; heading still turns
    s = s.replace(x=jnp.float32(1.9))
    _, s2, _, _, _ = env.step_env(None, s, jnp.array([0.0, 1.0]), p)
    assert float(s2.x) == pytest.approx(1.9)


def test_maze_registered_and_rollout_engine():
    from rlsuite.envs import list_envs

    assert "maze:hard" in list_envs() and "maze:open" in list_envs()
    env, p = make("maze:hard", max_steps_in_episode=50)
    from rlsuite.core.rollout import rollout_episodes

    traj = rollout_episodes(env, p, lambda th, o, k: (jnp.tile(jnp.array([0.0, 1.0]), (o.shape[0], 1)), ()), None,
                            jax.random.PRNGKey(0), 2, 60)
    assert float(traj.mask.sum()) == 100.0  # truncated at 50 steps
    np.testing.assert_allclose(np.asarray(traj.reward.sum(0)), 4.2 - (9.2 - 7.75), atol=1e-4)


def test_bad_config_fails_early(cartpole):
    with pytest.raises(ValueError, match="truncation"):
        D.make_ga(D.GAConfig(population=4, truncation=5), *cartpole)
    with pytest.raises(ValueError, match="bc"):
        D.make_ga(D.GAConfig(population=4, truncation=2, novelty=True), *cartpole)


# ----------------------------------------------------------------------------- baselines of the comparison


def test_es_baseline_step_equals_meta_engine_and_counts_frames(tiny_ga):
    from rlsuite.meta.es import ESConfig

    es, step = D.es_baseline(tiny_ga, ESConfig(population=8, generations=2, sigma=0.05, lr=0.03, seed=3))
    s0 = jax.jit(es.init)(jax.random.PRNGKey(3), jax.jit(tiny_ga.theta0)(jnp.int32(0)))
    s1, m = jax.jit(step)(s0)
    r1, mr = jax.jit(es.step)(s0)  # the engine's generation: same ask, keys and tell
    np.testing.assert_allclose(np.asarray(m["fitness"]), np.asarray(mr["fitness"]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(es.mean(s1)), np.asarray(es.mean(r1)), rtol=1e-5, atol=1e-7)
    # CartPole pays 1 per step: the frames are the population's summed returns (8 episodes, <= 20 steps)
    assert int(m["frames"]) == int(np.asarray(m["fitness"]).sum()) and 8 <= int(m["frames"]) <= 160
    assert int(s1.generation) == 1
    s2, _ = jax.jit(step)(s1)  # no weak-type drift: the state keeps its dtypes
    assert jax.tree.map(lambda x: x.dtype, s2) == jax.tree.map(lambda x: x.dtype, s1)
    with pytest.raises(ValueError, match="seeds=2"):
        D.es_baseline(tiny_ga, ESConfig(population=8, seeds=2))


def test_box_actions_are_deterministic_and_in_bounds():
    env, params = make("gymnax:Pendulum-v1")  # Box(-2, 2): tanh squashed into the bounds
    ga = D.make_ga(D.GAConfig(population=4, truncation=2, hidden=(8,), horizon=10, sigma=5.0), env, params)
    theta = jax.jit(ga.mutate)(jax.jit(ga.theta0)(jnp.int32(0)), jnp.int32(1))  # large weights: saturating
    obs = jax.random.normal(jax.random.PRNGKey(0), (64, 3)) * 10
    a1, _ = ga.policy(theta, obs, jax.random.PRNGKey(1))
    a2, _ = ga.policy(theta, obs, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    assert a1.shape == (64, 1) and float(jnp.abs(a1).max()) <= 2.0 and float(jnp.abs(a1).max()) > 1.0


# ----------------------------------------------------------------------------- learning (slow)


@pytest.mark.slow
def test_ga_solves_cartpole():
    """Budget: N = 64, T = 10, sigma 0.05, MLP (32, 32), <= 30 generations, elite 5 x 5 episodes
    (about 0.6M frames); the elite's 50-episode test return must reach 475."""
    cfg = D.GAConfig(population=64, truncation=10, sigma=0.05, generations=30, elite_candidates=5, elite_episodes=5,
                     test_episodes=50, hidden=(32, 32), segments=1)
    ga = D.build("gymnax:CartPole-v1", cfg)
    s, m = jax.jit(lambda s: ga.segment(s, 30))(ga.init())
    assert D.test_elite(ga, s, 50)["mean_return"] >= 475
