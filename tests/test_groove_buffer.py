"""rlsuite.meta.groove: the GROOVE / PLR level buffer on hand-made sequences (reset, scoring,
replay vs new, prioritisation, staleness, insert / evict), the reference flag bug (§8.4) not
reproduced, and the level scores."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.meta import groove as GR

F, T = False, True


def _buffer(score, new, active, filled=None, last=None, clock=0):
    c = len(score)
    buf = GR.init_buffer({"id": jnp.arange(c), "pos": jnp.zeros((c, 2))})
    return buf.replace(score=jnp.asarray(score, jnp.float32), new=jnp.asarray(new), active=jnp.asarray(active),
                       filled=jnp.ones(c, bool) if filled is None else jnp.asarray(filled),
                       last_sampled=jnp.zeros(c, jnp.int32) if last is None else jnp.asarray(last, jnp.int32),
                       clock=jnp.asarray(clock, jnp.int32))


def _fresh(ids):
    return {"id": jnp.asarray(ids), "pos": jnp.ones((len(ids), 2))}


def test_reset_lowest_scoring_replaces_new_then_lowest_and_keeps_other_flags():
    #          0     1    2    3     4    5    6     7
    score = [5.0, 1.0, 3.0, -2.0, 0.0, 0.0, -9.0, 2.0]
    new = [F, F, F, F, T, T, F, F]
    active = [T, F, F, F, F, F, T, F]
    buf = GR.reset_lowest_scoring(_buffer(score, new, active), _fresh([100, 101, 102]))
    # New slots 4, 5 first, then the lowest-scoring replayable slot 3 (slot 6 is lower but active).
    assert np.asarray(buf.levels["id"]).tolist() == [0, 1, 2, 102, 100, 101, 6, 7]
    assert np.asarray(buf.levels["pos"])[[3, 4, 5]].tolist() == [[1, 1]] * 3
    assert np.asarray(buf.new).tolist() == [F, F, F, T, T, T, F, F]
    assert np.asarray(buf.active).tolist() == active  # the reference would set new[0] = new[6] = True
    assert np.asarray(buf.score).tolist() == [5.0, 1.0, 3.0, 0.0, 0.0, 0.0, -9.0, 2.0]


_curate = jax.jit(GR.curate, static_argnums=2)


def test_reference_flag_bug_does_not_occur_over_a_curation_sequence():
    """Reference: ``new = active.at[reset_ids].set(True)`` marks every active level new and every
    other non-reset level evaluated.  Replay a GROOVE loop and check the flag invariants."""
    cfg = GR.BufferConfig(capacity=12, p_replay=0.5)
    buf = GR.init_buffer({"id": jnp.arange(12)})
    buf = GR.reset_lowest_scoring(buf, {"id": jnp.arange(100, 103)})
    buf, ids, _ = GR.sample(buf, jax.random.PRNGKey(0), cfg, batch_size=3)
    key = jax.random.PRNGKey(1)
    for step in range(6):
        key, k1, k2 = jax.random.split(key, 3)
        term = jnp.asarray([step % 2 == 0, True, step % 3 == 0])
        before = buf
        buf, ids_new, rep = _curate(buf, k1, cfg, {"id": jnp.arange(3) + 200 + 10 * step}, ids,
                                      jax.random.normal(k2, (3,)), term)
        act, new, t = np.asarray(buf.active), np.asarray(buf.new), np.asarray(term)
        assert act.sum() == 3 and act[np.asarray(ids_new)].all()  # exactly the agents' levels are active
        assert (np.asarray(ids_new)[~t] == np.asarray(ids)[~t]).all()
        # Every slot neither reset nor scored keeps its `new` flag (the reference flips them).
        same = np.asarray(buf.levels["id"]) == np.asarray(before.levels["id"])
        same[np.asarray(ids)[t]] = False
        assert same.sum() >= 6 and (new[same] == np.asarray(before.new)[same]).all()
        # A handed-out level is new exactly when it was not a replay.
        assert (new[np.asarray(ids_new)[t]] == ~np.asarray(rep)[t]).all()
        ids = ids_new


def test_update_scores_respects_the_mask():
    buf = _buffer([0.0] * 4, [T, T, F, F], [T, T, T, F])
    buf = GR.update_scores(buf, jnp.asarray([0, 1, 2]), jnp.asarray([4.0, 5.0, 6.0]), jnp.asarray([T, F, T]))
    assert np.asarray(buf.score).tolist() == [4.0, 0.0, 6.0, 0.0]
    assert np.asarray(buf.new).tolist() == [F, T, F, F]
    assert np.asarray(buf.active).tolist() == [F, T, F, F]


def test_replay_distribution_rank_proportional_and_staleness():
    score = [3.0, 1.0, 2.0, 9.0, 0.5]
    buf = _buffer(score, [F, F, F, T, F], [F, F, F, F, T], last=[0, 2, 4, 0, 0], clock=5)  # 3 new, 4 active
    p = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=5)))
    w = np.asarray([1.0, 1 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(p, w / w.sum(), rtol=1e-6)
    p = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=5, temperature=0.5)))
    np.testing.assert_allclose(p, w**2 / (w**2).sum(), rtol=1e-6)
    p = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=5, score_transform="proportional")))
    e = np.exp([3.0, 1.0, 2.0])
    np.testing.assert_allclose(p, np.r_[e / e.sum(), 0, 0], rtol=1e-5)
    p = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=5, staleness_coef=0.3)))
    stale = np.asarray([5.0, 3.0, 1.0, 0, 0])
    np.testing.assert_allclose(p, 0.7 * w / w.sum() + 0.3 * stale / stale.sum(), rtol=1e-6)


def test_sampling_follows_the_priorities_and_the_replay_probability():
    buf = _buffer([3.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0], [F, F, F, T, T, T, T, T], [F] * 8)
    cfg = GR.BufferConfig(capacity=8, p_replay=0.5)
    n = 4000
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    run = jax.jit(jax.vmap(lambda k: GR.sample(buf, k, cfg, batch_size=1)[1:]))
    ids, rep = (np.asarray(x)[:, 0] for x in run(keys))
    p_rep = rep.mean()
    assert abs(p_rep - 0.5) < 4 * np.sqrt(0.25 / n)
    w = np.asarray([1.0, 1 / 3, 1 / 2])
    for i, p in enumerate(w / w.sum()):
        f = (ids[rep] == i).mean()
        assert abs(f - p) < 4 * np.sqrt(p * (1 - p) / rep.sum()), (i, f, p)
    assert set(ids[~rep]) == {3, 4, 5, 6, 7}  # new levels, uniformly
    # Replay needs at least B replayable levels: with B = 4 > 3 nothing is replayed.
    _, ids4, rep4 = GR.sample(buf, jax.random.PRNGKey(1), GR.BufferConfig(capacity=8, p_replay=1.0), batch_size=4)
    assert not np.asarray(rep4).any() and set(np.asarray(ids4).tolist()) <= {3, 4, 5, 6, 7}


def test_topk_sample_is_deterministic_best_first_and_marks_levels():
    buf = _buffer([3.0, 1.0, 2.0, 7.0, 0.0, 0.0, 0.0, 0.0], [F, F, F, F, T, T, T, T], [F, F, F, T, F, F, F, F],
                  clock=4)
    cfg = GR.BufferConfig(capacity=8, p_replay=1.0, score_transform="topk")
    out, ids, rep = GR.sample(buf, jax.random.PRNGKey(3), cfg, mask=jnp.asarray([T, T, F]))
    assert np.asarray(ids).tolist() == [0, 2, 1] and np.asarray(rep).all()  # slot 3 is active
    assert np.asarray(out.active).tolist() == [T, F, T, T, F, F, F, F]  # only the masked proposals committed
    assert np.asarray(out.last_sampled).tolist() == [4, 0, 4, 0, 0, 0, 0, 0] and int(out.clock) == 5
    # p_replay = 0: distinct new levels.
    _, ids, rep = GR.sample(buf, jax.random.PRNGKey(3), cfg.__class__(capacity=8, p_replay=0.0), batch_size=4)
    assert sorted(np.asarray(ids).tolist()) == [4, 5, 6, 7] and not np.asarray(rep).any()


def test_staleness_raises_the_chance_of_old_levels():
    buf = _buffer([1.0, 1.0, 0.0, 0.0], [F, F, T, T], [F] * 4, last=[9, 0, 0, 0], clock=10)
    p0 = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=4)))
    p1 = np.asarray(GR.replay_distribution(buf, GR.BufferConfig(capacity=4, staleness_coef=0.5)))
    assert p1[1] > p0[1] and p1[0] < p0[0]
    np.testing.assert_allclose(p1[:2], 0.5 * p0[:2] + 0.5 * np.asarray([1, 10]) / 11, rtol=1e-6)


def test_insert_fills_empty_slots_then_replaces_the_lowest_only_if_higher_and_evict():
    buf = GR.empty_buffer({"id": jnp.asarray(0)}, 3)
    for i, s in enumerate([2.0, 5.0, 1.0]):
        buf, slot = GR.insert(buf, {"id": jnp.asarray(10 + i)}, jnp.asarray(s))
        assert int(slot) == i
    buf, slot = GR.insert(buf, {"id": jnp.asarray(20)}, jnp.asarray(0.5))  # lower than all: dropped
    assert int(slot) == -1 and np.asarray(buf.levels["id"]).tolist() == [10, 11, 12]
    buf, slot = GR.insert(buf, {"id": jnp.asarray(21)}, jnp.asarray(3.0))  # replaces the lowest (1.0)
    assert int(slot) == 2 and np.asarray(buf.levels["id"]).tolist() == [10, 11, 21]
    assert np.asarray(buf.score).tolist() == [2.0, 5.0, 3.0] and np.asarray(buf.replayable).all()
    buf = GR.evict(buf, jnp.asarray([1]))
    assert np.asarray(buf.filled).tolist() == [T, F, T] and np.asarray(buf.replayable).tolist() == [T, F, T]
    buf, slot = GR.insert(buf, {"id": jnp.asarray(22)}, jnp.asarray(-5.0))  # an empty slot takes anything
    assert int(slot) == 1


def test_level_scores():
    np.testing.assert_allclose(GR.algorithmic_regret(jnp.asarray([1.0, 0.5]), jnp.asarray([0.25, 1.0])), [0.75, -0.5])
    adv = jnp.asarray([[1.0, -2.0], [3.0, -1.0], [0.5, 4.0]])
    assert float(GR.positive_value_loss(adv)) == pytest.approx(8.5 / 6)
    mask = jnp.asarray([[1, 1], [1, 1], [0, 0]])
    assert float(GR.positive_value_loss(adv, mask)) == pytest.approx(4.0 / 4)
    r = np.asarray(GR.random_scores(jax.random.PRNGKey(0), 100))
    assert r.shape == (100,) and 0 <= r.min() and r.max() < 1 and r.std() > 0.1


@pytest.mark.parametrize("call, match", [
    (lambda: GR.BufferConfig(p_replay=1.5), "p_replay"),
    (lambda: GR.BufferConfig(temperature=0.0), "temperature"),
    (lambda: GR.BufferConfig(score_transform="softmax"), "softmax"),
    (lambda: GR.BufferConfig(capacity=0), "capacity"),
    (lambda: GR.BufferConfig(staleness_coef=-0.1), "staleness_coef"),
    (lambda: GR.reset_lowest_scoring(GR.init_buffer({"id": jnp.arange(4)}), {"id": jnp.arange(3)}), "twice"),
    (lambda: GR.init_buffer({"id": jnp.arange(4), "x": jnp.zeros(3)}), "leading"),
    (lambda: GR.empty_buffer({"id": jnp.asarray(0)}, 0), "capacity"),
])
def test_bad_input_fails_early(call, match):
    with pytest.raises(ValueError, match=match):
        call()
