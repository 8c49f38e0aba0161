"""rlsuite.envs.gridworld: LPG / GROOVE grid worlds (dynamics on hand-built levels, statistics of
the object probabilities, truncation, vmap over levels, the level sampler, the named and held-out
levels, bad input)."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.core import rollout as R
from rlsuite.envs import gridworld as G
from rlsuite.envs import list_envs, make

UP, DOWN, LEFT, RIGHT, STAY = range(5)
ENV = G.GridWorld()
N_STAT = 4000  # vmapped one-step trials for the probability tests


_jstep = jax.jit(ENV.step_env)


def _step(level, state, action, key):
    return _jstep(key, state, jnp.asarray(action), level)


_trials = jax.jit(jax.vmap(lambda k, s, a, lv: ENV.step_env(k, s, a, lv)[1:3], in_axes=(0, None, None, None)))


def _prob(level, state, action, field):
    """Fraction of N_STAT independent one-step trials where ``field(new_state, reward)`` holds."""
    keys = jax.random.split(jax.random.PRNGKey(1), N_STAT)
    return float(np.mean(np.asarray(field(*_trials(keys, state, jnp.asarray(action), level)))))


def _within(freq, p, n=N_STAT):
    sd = max(np.sqrt(p * (1 - p) / n), 1e-12)
    assert abs(freq - p) <= 4 * sd, (freq, p, sd)


def test_walls_and_edges_block_movement():
    level = G.level_from_ascii(["S#.", "...", "..a"], [(1.0, 0.0, 0.0)], 10)
    _, s = ENV.reset_env(jax.random.PRNGKey(0), level)
    key = jax.random.PRNGKey(0)
    for a in (UP, LEFT, RIGHT):  # edge, edge, wall: all cancelled
        assert _step(level, s, a, key)[1].pos.tolist() == [0, 0]
    s2 = _step(level, s, DOWN, key)[1]
    assert s2.pos.tolist() == [1, 0]
    assert _step(level, s2, RIGHT, key)[1].pos.tolist() == [1, 1]
    # A padded level: the padding is wall too.
    padded = G.pad_level(level, 5, 3)
    corner = s.replace(pos=jnp.asarray([2, 2]), present=jnp.zeros(3, bool), obj_pos=jnp.zeros((3, 2), jnp.int32))
    assert _step(padded, corner, RIGHT, key)[1].pos.tolist() == [2, 2]
    assert _step(padded, corner, DOWN, key)[1].pos.tolist() == [2, 2]


def test_object_reward_termination_and_respawn_probabilities():
    level = G.level_from_ascii(["Sa", ".."], [(0.5, 0.3, 0.2)], 100)
    _, s = ENV.reset_env(jax.random.PRNGKey(0), level)
    r = _step(level, s, RIGHT, jax.random.PRNGKey(0))
    assert float(r[2]) == 0.5 and not bool(r[1].present[0])  # reward paid, object gone
    _within(_prob(level, s, RIGHT, lambda st, rew: st.terminated), 0.3)
    # A collected object never respawns on the same step.
    assert _prob(level, s, RIGHT, lambda st, rew: st.present[:, 0]) == 0.0
    # An absent object respawns with p_respawn per step (the agent elsewhere).
    absent = s.replace(present=jnp.zeros(1, bool))
    _within(_prob(level, absent, STAY, lambda st, rew: st.present[:, 0]), 0.2)
    assert _prob(level, absent, STAY, lambda st, rew: st.terminated | (rew != 0)) == 0.0
    # p_terminate 0 and 1 are exact; walking next to an object collects nothing.
    for p in (0.0, 1.0):
        lv = level.replace(obj_p_terminate=jnp.asarray([p]))
        assert _prob(lv, s, RIGHT, lambda st, rew: st.terminated) == p
    assert _prob(level, s, DOWN, lambda st, rew: (rew != 0) | st.terminated) == 0.0


def test_episode_length_truncates_through_the_engine():
    level = G.level_from_ascii(["S.", ".a"], [(1.0, 0.0, 0.0)], 7)

    def stay(params, obs, key):
        return jnp.full(obs.shape[:1], STAY), ()

    carry = R.init_rollout(ENV, level, jax.random.PRNGKey(0), 2)
    _, tr = R.rollout(ENV, level, stay, (), carry, 15)
    trunc = np.asarray(tr.truncated[:, 0])
    assert np.flatnonzero(trunc).tolist() == [6, 13]
    assert not np.asarray(tr.terminated).any()
    assert np.asarray(tr.episode_length[6]).tolist() == [7, 7]
    # The time feature is time * 0.001 and restarts after the reset.
    np.testing.assert_allclose(np.asarray(tr.obs[:8, 0, -1]), np.r_[np.arange(7), 0] * 1e-3, atol=1e-7)


def test_tabular_observation_indexes_position_and_object_pattern():
    level = G.level_from_ascii(["S.a", "...", "b.."], [(1.0, 0.0, 0.0), (1.0, 0.0, 0.0)], 9)
    obs, s = ENV.reset_env(jax.random.PRNGKey(0), level)
    assert obs.shape == (ENV.obs_dim(level),) == (9 * 4 + 1,)
    s = s.replace(pos=jnp.asarray([1, 2]), present=jnp.asarray([False, True]))
    o = np.asarray(ENV.get_obs(s, level))
    assert o[:-1].sum() == 1 and np.argmax(o[:-1]) == (1 * 3 + 2) + 9 * 2
    feat = G.GridWorld(obs_mode="features")
    f = np.asarray(feat.get_obs(s, level))
    assert f.shape == (feat.obs_dim(level),) == (9 * 3 + 1,)
    assert f[5] == 1 and f[9:18].sum() == 0 and f[18 + 6] == 1  # agent (1, 2); a absent; b at (2, 0)


def test_random_respawn_uses_free_cells():
    env, level = make("grid:rand_small")
    starts = jax.jit(jax.vmap(lambda k: env.reset_env(k, level)[1].obj_pos))(jax.random.split(jax.random.PRNGKey(0), 64))
    starts = np.asarray(starts)
    assert len({tuple(x.ravel()) for x in starts}) > 1  # positions vary between resets
    walls = np.asarray(level.walls)
    for p in starts:
        assert not walls[p[:, 0], p[:, 1]].any()
        assert len({tuple(c) for c in p}) == len(p) and not (p == np.asarray(level.start)).all(1).any()
    # Respawn (p_respawn = 1, objects 0 and 2 absent): they reappear on free cells, away from the agent.
    lv = level.replace(obj_p_respawn=jnp.ones(4))
    _, s = env.reset_env(jax.random.PRNGKey(3), lv)
    s = s.replace(present=jnp.asarray([False, True, False, True]))
    after = jax.jit(jax.vmap(lambda k: env.step_env(k, s, STAY, lv)[1]))(jax.random.split(jax.random.PRNGKey(1), 64))
    assert np.asarray(after.present).all()
    pos = np.asarray(after.obj_pos)
    np.testing.assert_array_equal(pos[:, [1, 3]], np.broadcast_to(np.asarray(s.obj_pos)[[1, 3]], (64, 2, 2)))
    assert len({tuple(p[0]) for p in pos}) > 1
    for p in pos:
        assert not walls[p[:, 0], p[:, 1]].any() and len({tuple(c) for c in p}) == 4
        assert not (p == np.asarray(s.pos)).all(1).any()


def test_vmap_over_levels_equals_per_level_runs_and_padding_keeps_dynamics():
    raw = [G.named_level("dense"), G.named_level("sparse"),
           G.index_level(G.sample_levels(jax.random.PRNGKey(5), 1, "small"), 0)]
    batch = G.stack_levels(raw)
    assert batch.walls.shape == (3, 13, 13) and batch.obj_mask.shape == (3, 4)
    actions = jax.random.randint(jax.random.PRNGKey(0), (40,), 0, 5)
    keys = jax.random.split(jax.random.PRNGKey(1), 40)

    def run(level):
        _, s0 = ENV.reset_env(jax.random.PRNGKey(2), level)

        def body(s, xs):
            a, k = xs
            _, s2, r, term, _ = ENV.step_env(k, s, a, level)
            return s2, (r, term, s2.pos)

        return jax.lax.scan(body, s0, (actions, keys))[1]

    run_j = jax.jit(run)
    batched = jax.jit(jax.vmap(run))(batch)
    for i, lv in enumerate(raw):
        single = run_j(G.index_level(batch, i))
        for ours, one in zip(batched, single):
            np.testing.assert_array_equal(np.asarray(ours[i]), np.asarray(one))
        if i == 0:  # padding (11 -> 13 side) keeps the dynamics: same draws, same moves
            for one, unpadded in zip(single, run_j(lv)):
                np.testing.assert_array_equal(np.asarray(one), np.asarray(unpadded))


def test_sampled_levels_are_valid_and_follow_the_distribution():
    d = G.DISTRIBUTIONS["all"]
    lv = jax.jit(lambda k: G.sample_levels(k, 256, "all"))(jax.random.PRNGKey(0))
    size = np.asarray(lv.size)
    assert size.min() >= d.min_size and size.max() <= d.max_size and len(set(size)) == 7
    n_obj = np.asarray(lv.obj_mask).sum(1)
    assert n_obj.min() == 1 and n_obj.max() == 5
    steps = np.asarray(lv.max_steps_in_episode)
    assert steps.min() >= 20 and steps.max() <= 750 and np.median(steps) < 200  # log-uniform median ~122
    assert (np.asarray(lv.obj_reward)[:, 0] >= 0).all() and (np.asarray(lv.obj_reward) < 0).any()
    for name, lo, hi in (("obj_p_terminate", 0.01, 1.0), ("obj_p_respawn", 1e-3, 0.1)):
        v = np.asarray(getattr(lv, name))
        assert v.min() >= lo * 0.999 and v.max() <= hi * 1.001
    walls = np.asarray(lv.walls)
    inside_walls = [walls[i, :s, :s].sum() for i, s in enumerate(size)]
    assert max(inside_walls) <= 15 and walls[:, :, 9][size < 10].all()
    for i in range(256):
        cells = np.concatenate([np.asarray(lv.start[i])[None], np.asarray(lv.obj_pos[i])[n_obj[i] * [True] + [False] * (5 - n_obj[i])]])
        assert (cells < size[i]).all() and not walls[i, cells[:, 0], cells[:, 1]].any()
        assert len({tuple(c) for c in cells}) == len(cells)


def _reachable(level, target):
    walls = np.asarray(level.walls)
    start = tuple(np.asarray(level.start))
    seen, todo = {start}, deque([start])
    while todo:
        r, c = todo.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (r + dr, c + dc)
            if 0 <= n[0] < walls.shape[0] and 0 <= n[1] < walls.shape[1] and not walls[n] and n not in seen:
                seen.add(n)
                todo.append(n)
    return tuple(target) in seen


def test_named_and_held_out_levels_registered_and_solvable():
    ids = set(list_envs())
    for name in G.NAMED_LEVELS + G.HELD_OUT_LEVELS:
        assert f"grid:{name}" in ids
        lv = G.named_level(name)
        for i in range(lv.max_objects):  # every object reachable from the start
            assert _reachable(lv, np.asarray(lv.obj_pos[i])), (name, i)
    held = G.held_out_levels()
    assert set(held) == set(G.HELD_OUT_LEVELS)
    assert len({v.walls.shape for v in held.values()}) == 1
    longer = G.named_level("longer")
    assert longer.max_size == 9 and int(longer.obj_mask.sum()) == 7 and int(longer.max_steps_in_episode) == 2000
    env, lv = make("grid:sparse", max_steps_in_episode=20)
    assert int(lv.max_steps_in_episode) == 20 and env.observation_space(lv).shape == (13 * 13 * 4 + 1,)


def test_evaluate_levels_runs_each_level_to_its_own_end():
    """Policy 'always right' on three levels of different shapes: the object next door (0.7, ends
    the episode), two cells away (0.4, ends it), and one the agent never reaches (time limit 3)."""
    obj = [(0.7, 1.0, 0.0)]
    levels = G.stack_levels([G.level_from_ascii(["Sa", ".."], obj, 20),
                             G.level_from_ascii(["S.a", "...", "..b"], [(0.4, 1.0, 0.0), (-1.0, 1.0, 0.0)], 20),
                             G.level_from_ascii(["S..", "...", "a.."], [(1.0, 1.0, 0.0)], 3)])

    def right(params, obs, key):
        return jnp.full(obs.shape[:1], RIGHT), ()

    ret = G.evaluate_levels(ENV, levels, right, (), jax.random.PRNGKey(1), num_envs=3)
    np.testing.assert_allclose(np.asarray(ret), [0.7, 0.4, 0.0], rtol=1e-6)


@pytest.mark.slow
def test_bare_rollout_throughput_helper_counts_steps():
    batch = G.sample_levels(jax.random.PRNGKey(0), 3, "debug")
    sps = G.bare_rollout_steps_per_second(ENV, batch, num_envs=4, num_steps=6, repeats=2)
    assert 1e3 < sps < 1e10


@pytest.mark.parametrize("call, match", [
    (lambda: G.named_level("densest"), "densest"),
    (lambda: make("grid:densest"), "densest"),
    (lambda: G.LevelDistribution(min_size=0), "min_size"),
    (lambda: G.LevelDistribution(min_size=6, max_size=5), "min_size"),
    (lambda: G.LevelDistribution(num_walls=200), "num_walls"),
    (lambda: G.sample_level(jax.random.PRNGKey(0), "everything"), "everything"),
    (lambda: G.level_from_ascii(["S.", "..."], [], 5), "square"),
    (lambda: G.level_from_ascii(["S.", ".."], [(1.0, 0.0, 0.0)], 5), "lacks"),
    (lambda: G.level_from_ascii(["Sa", ".."], [(1.0, 2.0, 0.0)], 5), "p_terminate"),
    (lambda: G.level_from_ascii(["S."], [], 0), "square"),
    (lambda: G.level_from_ascii(["Sa", ".."], [(1.0, 0.0, 0.0)], 0), "max_steps_in_episode"),
    (lambda: make("grid:dense", max_steps_in_episode=0), "max_steps_in_episode"),
    (lambda: make("grid:dense", size=3), "size"),
    (lambda: make("grid:dense", obs_mode="pixels"), "pixels"),
    (lambda: G.pad_level(G.named_level("sparse"), 11, 4), "max_size=11"),
    (lambda: G.sample_levels(jax.random.PRNGKey(0), 0), "num"),
    (lambda: G.evaluate_levels(ENV, G.named_level("dense"), G.random_policy, (), jax.random.PRNGKey(0)), "stacked"),
])
def test_bad_input_fails_early_with_a_clear_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()
