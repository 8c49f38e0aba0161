"""LPG / GROOVE / TA-LPG meta-training: resume equals uninterrupted, the meta-objective improves,
GROOVE's curriculum runs (buffer fills, finite AR scores, replay fraction ~ p_replay), bad input
fails early (meta_discovery.md §1, §2, §4, §9)."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from rlsuite.agents import lpg
from rlsuite.meta import lpg_meta as M

AGENT = lpg.LPGConfig(num_envs=4, num_steps=4, meta_width=8, embed_width=4, pred_dim=4)
TINY = M.MetaConfig(levels="debug", num_agents=4, lifetime=4, inner_updates=2, meta_steps=4, segments=2,
                    buffer_size=8, eval_envs=2, meta_lr=1e-3)


def _rule(run_dir):
    return lpg.load_rule(os.path.join(run_dir, "rule.msgpack"), AGENT)


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("curriculum", ["uniform", pytest.param("groove", marks=pytest.mark.slow)])
def test_resume_equals_uninterrupted(tmp_path, curriculum):
    cfg = dataclasses.replace(TINY, curriculum=curriculum)
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    s_full = M.run(AGENT, cfg, full, progress=False)
    assert M.run(AGENT, cfg, part, progress=False, max_segments=1) is None
    s_part = M.resume(part, progress=False)
    _same(_rule(full), _rule(part))
    assert s_full["final_meta_loss"] == s_part["final_meta_loss"]
    lines = [json.loads(x) for x in open(os.path.join(part, "metrics.jsonl"))]
    assert [r["meta_step"] for r in lines] == [1, 2, 3, 4]  # no duplicated / missing lines
    with pytest.raises(ValueError, match="already has checkpoints"):
        M.run(AGENT, cfg, full, progress=False)


def test_bad_meta_input_fails_early(tmp_path):
    with pytest.raises(ValueError, match="lifetime=5 must be a multiple"):
        M.make_meta(AGENT, dataclasses.replace(TINY, lifetime=5))
    with pytest.raises(ValueError, match="levels"):
        M.make_meta(AGENT, dataclasses.replace(TINY, levels="nowhere"))
    with pytest.raises(ValueError, match="score"):
        M.make_meta(AGENT, dataclasses.replace(TINY, score="regret"))
    with pytest.raises(ValueError, match="buffer_size=6 must be at least twice"):
        M.make_meta(AGENT, dataclasses.replace(TINY, curriculum="groove", buffer_size=6)).init(jax.random.PRNGKey(0))
    with pytest.raises(FileNotFoundError, match="not a meta run directory"):
        M.resume(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        M.make_meta(dataclasses.replace(AGENT, rule=str(tmp_path / "missing.msgpack")), TINY)
    with pytest.raises(ValueError, match="min_lifetime=9 exceeds"):
        M.ta_lpg_problem(AGENT, M.TAConfig(levels="debug", lifetime=4, min_lifetime=9))


@pytest.mark.slow
def test_meta_training_improves_the_meta_objective(tmp_path):
    """A short LPG meta-training run on debug levels: the meta-loss of the last quarter of the
    run is below the first quarter's (same levels distribution, fresh agents throughout)."""
    agent = lpg.LPGConfig(num_envs=8, num_steps=8, meta_width=16)
    cfg = M.MetaConfig(levels="debug", num_agents=16, lifetime=10, inner_updates=5, meta_steps=120, segments=2,
                       meta_lr=3e-3)
    M.run(agent, cfg, str(tmp_path / "run"), progress=False)
    loss = np.array([json.loads(x)["meta_loss"] for x in open(tmp_path / "run" / "metrics.jsonl")])
    q = len(loss) // 4
    assert loss[-q:].mean() < loss[:q].mean() - 0.01, (loss[:q].mean(), loss[-q:].mean())


@pytest.mark.slow
def test_groove_debug_run_fills_the_buffer_with_finite_scores(tmp_path):
    """Sheet §9: the level buffer fills, AR scores are finite, replay fraction ~ 0.5."""
    cfg = dataclasses.replace(TINY, curriculum="groove", num_agents=8, buffer_size=32, meta_steps=40, segments=1)
    M.run(AGENT, cfg, str(tmp_path / "g"), progress=False)
    recs = [json.loads(x) for x in open(tmp_path / "g" / "metrics.jsonl")]
    ends = [r for r in recs if r["score"] is not None and np.isfinite(r["score"])]
    assert len(ends) == 20  # a lifetime of 4 updates = 2 meta-steps
    assert 0.3 <= np.mean([r["replay_fraction"] for r in ends[5:]]) <= 0.7


@pytest.mark.slow
def test_ta_lpg_es_smoke_and_the_rule_trains_through_the_runner(tmp_path):
    from rlsuite.meta.es import ESConfig
    from rlsuite.train import run_training

    agent = dataclasses.replace(AGENT, temporal=True)
    ta = M.TAConfig(levels="debug", lifetime=4, min_lifetime=2, eval_envs=2)
    summary = M.run_ta_lpg(agent, ta, ESConfig(population=4, generations=2, segments=1, lr=1e-2, sigma=0.1,
                                               fitness_shaping="pairwise"), str(tmp_path / "ta"), progress=False)
    assert np.isfinite(summary["final_mean_fitness"])
    cfg = dataclasses.replace(agent, rule=summary["rule"], total_timesteps=64, eval_episodes=2)
    out = run_training("lpg", "grid:maze_open", config=cfg, segments=1, progress=False, run_dir=str(tmp_path / "t"))
    assert np.isfinite(out["score_mean"])
