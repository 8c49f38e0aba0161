"""Shared pieces of the LPG / GROOVE / TA-LPG experiments (meta_discovery.md §1, §2, §4, §7).

Not a script (the leading ``_``): the scales, the evaluation level sets, and the evaluation of a
set of update rules (learned, randomly initialised, A2C) by training fresh agents with them on
every level for a fixed number of updates (vmapped over levels x seeds, one jit per rule kind).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.agents import lpg
from rlsuite.meta import lpg_meta as M

RESULTS = "results/meta_discovery/groove"
SMOKE_OUT = "/tmp/rlsuite-smoke/meta_discovery/groove"
RUNS = "runs/meta_discovery/groove"
SMOKE_RUNS = "/tmp/rlsuite-smoke/meta_discovery/groove/runs"


@dataclasses.dataclass(frozen=True)
class Scale:
    agent: lpg.LPGConfig
    meta: M.MetaConfig
    eval_updates: int
    """Updates of each evaluation lifetime (held-out levels)."""
    eval_seeds: int
    random_levels: int
    """Unseen levels sampled from the training distribution (besides the 5 held-out mazes)."""
    minatar_updates: int
    minatar_seeds: int
    ta_es: dict
    ta_lifetimes: tuple


SCALES = {
    "smoke": Scale(lpg.LPGConfig(num_envs=4, num_steps=8, meta_width=16),
                   M.MetaConfig(levels="debug", num_agents=4, lifetime=4, inner_updates=2, meta_steps=4, segments=1,
                                buffer_size=16, eval_envs=2, meta_lr=1e-3),
                   eval_updates=4, eval_seeds=2, random_levels=2, minatar_updates=2, minatar_seeds=2,
                   ta_es=dict(population=4, generations=2, segments=1), ta_lifetimes=(2, 4)),
    "cpu": Scale(lpg.LPGConfig(num_envs=16, num_steps=20, meta_width=32),
                 M.MetaConfig(levels="small", num_agents=8, lifetime=20, inner_updates=5, meta_steps=200,
                              segments=4, buffer_size=64, eval_envs=8, meta_lr=1e-3),
                 eval_updates=30, eval_seeds=5, random_levels=15, minatar_updates=60, minatar_seeds=5,
                 ta_es=dict(population=8, generations=16, segments=2), ta_lifetimes=(10, 40)),
    "paper": Scale(lpg.LPGConfig(),
                   M.MetaConfig(levels="all", num_agents=512, lifetime=250, inner_updates=5, meta_steps=5000,
                                segments=50),
                   eval_updates=250, eval_seeds=16, random_levels=100, minatar_updates=10_000, minatar_seeds=16,
                   ta_es=dict(M.TA_ES), ta_lifetimes=(10, 50, 250)),
}


def eval_levels(dist: str, n_random: int, seed: int = 12345):
    """``(names, stacked levels, kinds)``: the held-out mazes and ``n_random`` unseen levels of
    ``dist`` (a key stream the meta-training never uses), padded to common shapes."""
    from rlsuite.envs import gridworld

    mazes = gridworld.held_out_levels()
    rand = gridworld.sample_levels(jax.random.PRNGKey(seed), n_random, dist)
    rand_list = [gridworld.index_level(rand, i) for i in range(n_random)]
    names = list(mazes) + [f"{dist}_{i}" for i in range(n_random)]
    levels = gridworld.stack_levels(list(mazes.values()) + rand_list)
    kinds = ["maze"] * len(mazes) + ["random"] * n_random
    return names, levels, kinds


def train_and_evaluate(agent_cfg: lpg.LPGConfig, env, levels, rule, seeds: int, updates: int, episodes: int = 16,
                       horizon: int | None = None) -> np.ndarray:
    """Mean evaluation return ``[L, seeds]`` of agents trained for ``updates`` updates on each
    level with ``rule``: a meta-network params dict, ``"a2c"`` (the A2C rule, entropy 0.01) or
    ``"none"`` (no training: the initial, uniform tabular policy).  Same keys for every rule."""
    horizon = horizon or int(np.max(np.asarray(levels.max_steps_in_episode)))
    kind = rule if isinstance(rule, str) else "meta"
    updates = 0 if kind == "none" else updates
    example = jax.tree.map(lambda x: x[0], levels)
    key = (agent_cfg, id(env), kind, updates, episodes, horizon, str(jax.tree.map(np.shape, example)))
    if key not in _EVAL_CACHE:
        _EVAL_CACHE[key] = _compiled_eval(agent_cfg, env, example, kind, updates, episodes, horizon)
    fn = _EVAL_CACHE[key]
    keys = jax.random.split(jax.random.PRNGKey(2024), seeds)
    return np.asarray(fn(levels, keys, None if isinstance(rule, str) else rule))


_EVAL_CACHE: dict = {}


def _compiled_eval(agent_cfg, env, example, kind: str, updates: int, episodes: int, horizon: int):
    """One jitted ``(levels, keys, meta) -> returns [L, S]`` per rule kind (learned rules share it)."""
    learner = lpg.make_learner(agent_cfg, env, example)
    hp = lpg.default_hparams(dataclasses.replace(agent_cfg, rule=None))
    rule_fn, ent = None, 0.0
    if kind != "meta":
        hp = hp.replace(alpha_y=jnp.zeros_like(hp.alpha_y))
        rule_fn, ent = lpg.a2c_rule(learner, hp), 0.01
        updates = 0 if kind == "none" else updates

    def one(level, key, meta):
        k_init, k_eval = jax.random.split(key)
        st = learner.init(k_init, hp, level)
        if updates:
            st = M.train_lifetime(learner, hp, meta, level, st, updates, updates, rule_fn, ent)
        return learner.evaluate(st, level, k_eval, episodes, horizon)

    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0, None)), in_axes=(0, None, None)))


def normalised(ret: np.ndarray, a2c: np.ndarray, base: np.ndarray, eps: float = 1e-3):
    """A2C-normalised return per level and seed ``(R - R_init) / (R_A2C - R_init)`` with the
    level means of A2C and of the untrained agent; NaN where A2C does not beat the untrained
    agent by ``eps`` (no scale to normalise by)."""
    lo, hi = base.mean(1, keepdims=True), a2c.mean(1, keepdims=True)
    ok = (hi - lo) > eps
    return np.where(ok, (ret - lo) / np.where(ok, hi - lo, 1.0), np.nan)


def summarise(norm: np.ndarray) -> dict[str, Any]:
    """Per-seed mean over levels (CI over seeds), and the fraction of levels whose seed-mean is
    below 75% of A2C."""
    from rlsuite.core import stats

    valid = ~np.isnan(norm[:, 0])
    per_seed = np.nanmean(norm[valid], axis=0)
    level_mean = norm[valid].mean(1)
    mean, lo, hi = stats.mean_ci(per_seed)
    return {"norm_mean": float(mean), "ci_lo": float(lo), "ci_hi": float(hi), "per_seed": per_seed,
            "below_75": float((level_mean < 0.75).mean()), "levels": int(valid.sum())}
