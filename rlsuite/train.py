"""Runs that survive: segmented training of a step-batched agent over several seeds.

``run_training`` trains ``len(seeds)`` seeds at once (``vmap`` over keys) in jitted segments.
After each segment, on the host, it appends to ``metrics.jsonl``, advances the progress bar and
saves an orbax checkpoint of the full vmapped state.  A resumed run restores the last checkpoint
and continues with the same compiled segment, so it ends with exactly the parameters an
uninterrupted run reaches.  A non-finite loss stops the run with a clear error before anything
is saved, so the last good checkpoint stays the latest.

Run directory::

    config.json  metrics.jsonl  checkpoints/<update>/  results.md  summary.json  learning_curve.png
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import math
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.core import checkpoint
from rlsuite.core.logging import MetricsWriter, Progress
from rlsuite.core.results import device_description, markdown_table

ALGORITHMS = {"ppo": ("rlsuite.agents.ppo", "PPOConfig"), "a2c": ("rlsuite.agents.a2c", "A2CConfig")}


class NonFiniteError(RuntimeError):
    """Training produced a NaN/inf loss; the run directory keeps the last good checkpoint."""


def algorithm(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    mod_name, cfg_name = ALGORITHMS[name]
    mod = importlib.import_module(mod_name)
    return mod, getattr(mod, cfg_name)


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache (repeated runs skip XLA compilation)."""
    path = path or os.environ.get("RLSUITE_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rlsuite", "jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


def _config_to_json(config) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _config_from_json(cfg_cls, d: dict[str, Any]):
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"config.json has fields {unknown} that {cfg_cls.__name__} does not know")
    return cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _segment_stats(m: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-seed statistics of one segment's metrics (leaves ``[S, K]``)."""
    valid = m["valid"]
    eps = (m["episodes"] * valid).sum(1)
    ret = np.where(eps > 0, (m["return_sum"] * valid).sum(1) / np.maximum(eps, 1), np.nan)
    out = {"episode_return": ret, "episodes": eps}
    for k in ("actor_loss", "value_loss", "entropy"):
        out[k] = (m[k] * valid).sum(1) / np.maximum(valid.sum(1), 1)
    return out


def run_training(
    algo: str,
    env_id: str,
    config=None,
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    segments: int = 10,
    env_kwargs: dict[str, Any] | None = None,
    eval_episodes: int = 16,
    progress: bool = True,
    resume: bool = False,
    max_segments: int | None = None,
) -> dict[str, Any] | None:
    """Train (or, with ``resume=True``, continue) a run; returns the summary dict.

    Args:
        algo: ``"ppo"`` or ``"a2c"``.
        env_id: any id ``rlsuite.envs.make`` accepts (JAX envs only).
        config: the algorithm's config dataclass (ignored when resuming: ``config.json`` wins).
        seeds: one training run per seed, vmapped; seed ``s`` uses ``PRNGKey(s)``, so seed 3 of
            a multi-seed run equals a single run with seed 3.
        run_dir: where config, metrics, checkpoints and results go (default ``runs/<algo>-<env>-<time>``).
        segments: number of jitted segments (= checkpoints and progress updates).
        max_segments: stop after this many segments in this invocation (a time-boxed job);
            the run continues later with ``resume=True``.  Returns ``None`` when stopped early.
    """
    from rlsuite.envs import make

    if resume:
        if run_dir is None or not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise FileNotFoundError(f"cannot resume: no config.json in run directory {run_dir!r}")
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
        algo, env_id, seeds = saved["algo"], saved["env_id"], saved["seeds"]
        segments, env_kwargs = saved["segments"], saved.get("env_kwargs", {})
        mod, cfg_cls = algorithm(algo)
        config = _config_from_json(cfg_cls, saved["config"])
    else:
        mod, cfg_cls = algorithm(algo)
        config = config if config is not None else cfg_cls()
        if not isinstance(config, cfg_cls):
            raise ValueError(f"config for {algo!r} must be a {cfg_cls.__name__}, got {type(config).__name__}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if int(segments) <= 0:
        raise ValueError(f"segments must be positive, got {segments}")
    env_kwargs = dict(env_kwargs or {})
    env, env_params = make(env_id, **env_kwargs)
    if getattr(env, "is_host", False):
        raise ValueError(f"{env_id!r} is a host (gymnasium) env; `rlsuite train` needs a JAX env (gymnax:, brax:, ...)")
    mod.validate(config)
    num_updates = config.num_updates
    ups = math.ceil(num_updates / int(segments))
    n_segments = math.ceil(num_updates / ups)
    init_fn, segment_fn = mod.make_segments(config, env, env_params, ups)
    hp = mod.default_hparams(config)
    steps_per_update = config.num_envs * config.num_steps

    if run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join("runs", f"{algo}-{env_id.replace(':', '_').replace('/', '_')}-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    writer = MetricsWriter(os.path.join(run_dir, "metrics.jsonl"))

    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    init_v = jax.jit(jax.vmap(init_fn, in_axes=(0, None)))
    seg_v = jax.jit(jax.vmap(segment_fn, in_axes=(0, None)))
    done_segments = 0
    if resume:
        state, step = checkpoint.restore(run_dir, jax.eval_shape(init_v, keys, hp))
        done_segments = step // ups
        writer.truncate_after("update", step)
    else:
        state = init_v(keys, hp)
        if checkpoint.latest_step(run_dir) is not None:
            raise ValueError(f"run directory {run_dir!r} already has checkpoints; use --resume or a new directory")
        meta = {
            "algo": algo, "env_id": env_id, "env_kwargs": env_kwargs, "seeds": seeds, "segments": int(segments),
            "config": _config_to_json(config), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        }
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(meta, f, indent=2)

    total_steps = num_updates * steps_per_update
    bar = Progress(total_steps, f"{algo} {env_id} x{len(seeds)} seeds", min(done_segments * ups, num_updates) * steps_per_update, progress)
    t_start = time.perf_counter()
    try:
        last = n_segments if max_segments is None else min(n_segments, done_segments + int(max_segments))
        for seg in range(done_segments, last):
            new_state, m = seg_v(state, hp)
            m = jax.tree.map(np.asarray, m)
            stats = _segment_stats(m)
            for k in ("actor_loss", "value_loss"):
                if not np.all(np.isfinite(stats[k])):
                    bad = [s for s, v in zip(seeds, stats[k]) if not np.isfinite(v)]
                    raise NonFiniteError(
                        f"non-finite {k} in segment {seg + 1}/{n_segments} (seeds {bad}); stopped. "
                        f"The last good checkpoint in {run_dir!r} is update {checkpoint.latest_step(run_dir)}."
                    )
            state = new_state
            update = min((seg + 1) * ups, num_updates)
            ret = stats["episode_return"]
            writer.write({
                "update": update, "env_steps": update * steps_per_update,
                "wall_s": time.perf_counter() - t_start, **stats,
            })
            checkpoint.save(run_dir, update, state)
            bar.update(update * steps_per_update, float(np.nanmean(ret)) if np.isfinite(ret).any() else None)
    finally:
        bar.close()
    wall = time.perf_counter() - t_start
    if last < n_segments:
        return None

    eval_v = jax.jit(jax.vmap(lambda s, k: mod.evaluate(config, env, env_params, s, k, eval_episodes)))
    eval_ret = np.asarray(eval_v(state, jax.random.split(jax.random.PRNGKey(12345), len(seeds))))
    summary = {
        "algo": algo, "env_id": env_id, "seeds": seeds, "env_steps": total_steps,
        "eval_return_per_seed": eval_ret.mean(1).tolist(),
        "eval_return_mean": float(eval_ret.mean()), "eval_return_std_over_seeds": float(eval_ret.mean(1).std()),
        "wall_s_this_invocation": wall, "device": device_description(), "run_dir": os.path.abspath(run_dir),
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    write_report(run_dir, summary)
    return summary


def write_report(run_dir: str, summary: dict[str, Any]) -> None:
    """``results.md`` (table) and ``learning_curve.png`` from ``metrics.jsonl`` and the summary."""
    records = MetricsWriter(os.path.join(run_dir, "metrics.jsonl")).read()
    rows = [(s, f"{r:.1f}") for s, r in zip(summary["seeds"], summary["eval_return_per_seed"])]
    table = markdown_table(["seed", "eval return (deterministic)"], rows)
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(f"# {summary['algo']} on {summary['env_id']}\n\n")
        f.write(f"- env steps per seed: {summary['env_steps']}\n- device: {summary['device']}\n")
        f.write(f"- eval return: {summary['eval_return_mean']:.1f} ± {summary['eval_return_std_over_seeds']:.1f} (over seeds)\n\n")
        f.write(table + "\n")
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([r["env_steps"] for r in records])
    y = np.array([[np.nan if v is None else v for v in r["episode_return"]] for r in records], float)
    fig, ax = plt.subplots(figsize=(6, 4))
    with np.errstate(all="ignore"):
        mean = np.nanmean(y, 1)
        ax.plot(x, mean, label=f"mean over {y.shape[1]} seeds")
        ax.fill_between(x, np.nanmin(y, 1), np.nanmax(y, 1), alpha=0.25, label="min-max")
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("episode return (training)")
    ax.set_title(f"{summary['algo']} on {summary['env_id']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "learning_curve.png"), dpi=100)
    plt.close(fig)


def evaluate_run(run_dir: str, episodes: int = 32, seed: int = 0) -> dict[str, Any]:
    """Evaluate the latest checkpoint of a run directory with the deterministic policy."""
    from rlsuite.envs import make

    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} is not a run directory (no config.json)")
    with open(path) as f:
        saved = json.load(f)
    mod, cfg_cls = algorithm(saved["algo"])
    config = _config_from_json(cfg_cls, saved["config"])
    env, env_params = make(saved["env_id"], **saved.get("env_kwargs", {}))
    init_fn, _ = mod.make_segments(config, env, env_params, 1)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in saved["seeds"]])
    target = jax.eval_shape(jax.vmap(init_fn, in_axes=(0, None)), keys, mod.default_hparams(config))
    state, step = checkpoint.restore(run_dir, target)
    eval_v = jax.jit(jax.vmap(lambda s, k: mod.evaluate(config, env, env_params, s, k, episodes)))
    ret = np.asarray(eval_v(state, jax.random.split(jax.random.PRNGKey(seed), len(saved["seeds"]))))
    return {"run_dir": run_dir, "update": step, "seeds": saved["seeds"], "return_per_seed": ret.mean(1).tolist(),
            "return_mean": float(ret.mean())}
