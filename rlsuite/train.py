"""The one runner: any registered agent, several seeds, jitted segments that survive.

``run_training`` builds the agent through the registry (:mod:`rlsuite.agents`) and the protocol
(:mod:`rlsuite.core.agent`), trains ``len(seeds)`` seeds at once (``vmap`` over keys) and splits the
run into segments of ``ceil(num_updates / segments)`` updates (the last one may be shorter: it is
its own compiled segment, never padded).  It evaluates before training and after every segment
with :func:`rlsuite.core.agent.eval_key`, so its ``eval_*`` curve equals
``make_train(agent, eval_every=segment_length)`` of a sweep.  After each segment, on the host, it

- stops with :class:`NonFiniteError` on the first non-finite metric, before anything of that
  segment is written (the last good checkpoint stays the latest);
- appends one line to ``metrics.jsonl`` (per-seed lists), saves an orbax checkpoint of the whole
  vmapped state and advances the progress bar.

A resumed run restores the newest checkpoint that verifies (:mod:`rlsuite.core.checkpoint` keeps a
checksum with each; a damaged one is reported, moved aside and the previous one used), drops the
``metrics.jsonl`` lines written after it and continues with the same compiled segments, so it ends
bit-identical to an uninterrupted run.  Seeds are sharded over all local devices (``devices``; several hosts
with ``jax.distributed``: :mod:`rlsuite.core.sharding`); only process 0 writes files, and
checkpoints hold the gathered, unpadded state, so a run resumes on any device count.  Resuming a finished run is a no-op (with a message); options
that would change a resumed run are refused (only ``progress``, ``max_segments``,
``keep_checkpoints`` and an in-memory ``data`` may be given again).

What holds for seeds: re-running the same command gives bit-identical results (same devices and
JAX version).  Seed ``s`` of a multi-seed run starts from the same key as a single run with seed
``s`` (``PRNGKey(s)``), but ``vmap`` may change float summation order, and training is chaotic:
for short runs the two agree to float tolerance (tests/test_runner.py checks this for every agent
at smoke size); over long runs they can drift apart (e.g. PPO at 300k steps).  At the end: ``summary.json``, ``results.md`` and
``learning_curve.png``.  Run directory::

    config.json  metrics.jsonl  checkpoints/<update>/  summary.json  results.md  learning_curve.png
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
import time
import warnings
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite import agents
from rlsuite.core import checkpoint, sharding
from rlsuite.core import validate as V
from rlsuite.core.agent import CompileWatch, eval_key, jit_per_length
from rlsuite.core.logging import MetricsWriter, Progress
from rlsuite.core.results import device_description, markdown_table
from rlsuite.core.sweep import seed_keys


class NonFiniteError(RuntimeError):
    """Training produced a NaN/inf metric; the run directory keeps the last good checkpoint."""


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache (repeated runs skip XLA compilation)."""
    path = path or os.environ.get("RLSUITE_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rlsuite", "jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


# ----------------------------------------------------------------------------- config.json


def config_to_json(config) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_json(cfg_cls, d: Mapping[str, Any]):
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise ValueError(f"config.json has fields {unknown} that {cfg_cls.__name__} does not know")
    return cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def apply_hparams(hp, overrides: Mapping[str, float] | None, ranges: Mapping[str, Any] | None = None):
    """``hp`` with the named fields replaced (float32 scalars); unknown names and values outside
    the agent's documented ranges (``HPARAM_RANGES`` of its module) are refused."""
    if not overrides:
        return hp
    known = [f.name for f in dataclasses.fields(hp)]
    bad = sorted(set(overrides) - set(known))
    if bad:
        raise ValueError(f"unknown hparam(s) {bad} for {type(hp).__name__}; known: {known}")
    for k, v in overrides.items():
        if not V._is_number(v):
            raise ValueError(f"hparam {k} must be a number, got {v!r}")
    V.check_ranges({k: float(v) for k, v in overrides.items()}, ranges or {}, lambda k: f"hparam {k}")
    return hp.replace(**{k: jnp.asarray(float(v), jnp.float32) for k, v in overrides.items()})


# ----------------------------------------------------------------------------- data


def _data_ref(data) -> Any:
    """What config.json records of ``data`` (paths are reloaded on resume)."""
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, Mapping):
        return {k: _data_ref(v) for k, v in data.items()}
    return {"in_memory": True, "transitions": len(data)}


def _load_data(ref, env, env_params):
    from rlsuite.data import load

    if ref is None:
        return None
    if isinstance(ref, str):
        return load(ref, env, env_params)
    if isinstance(ref, Mapping) and not ref.get("in_memory"):
        return {k: _load_data(v, env, env_params) for k, v in ref.items()}
    return ref  # an in-memory Dataset (or a mapping of them)


# ----------------------------------------------------------------------------- metrics


def segment_stats(m: Mapping[str, np.ndarray], counter: str) -> dict[str, np.ndarray]:
    """Per-seed statistics of one segment's metrics (scalar-per-update leaves ``[S, K]``).

    ``episode_return`` is weighted by ``episodes`` when present (updates without finished
    episodes do not count; NaN when the whole segment had none); ``episodes`` is summed; every
    other scalar is the mean over the segment.  Non-scalar metrics (e.g. parameter traces) are
    not logged.
    """
    out: dict[str, np.ndarray] = {}
    eps = np.asarray(m["episodes"], np.float64).sum(1) if "episodes" in m else None
    for k, v in m.items():
        v = np.asarray(v)
        if v.ndim != 2 or k == counter:
            continue
        if k == "episodes":
            out[k] = eps
        elif k == "episode_return" and eps is not None:
            w = np.asarray(m["episodes"], np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k] = np.where(eps > 0, (v * w).sum(1) / np.maximum(eps, 1e-12), np.nan)
        else:
            out[k] = v.astype(np.float64).mean(1)
    return out


def _non_finite(m: Mapping[str, np.ndarray], seeds: Sequence[int]) -> list[str]:
    bad = []
    for k, v in m.items():
        v = np.asarray(v)
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            axes = tuple(range(1, v.ndim))
            ok = np.all(np.isfinite(v), axis=axes) if axes else np.isfinite(v)
            bad.append(f"{k} (seeds {[s for s, o in zip(seeds, ok) if not o]})")
    return bad


class _TensorBoard:
    """Scalar metrics as TensorBoard event files: ``<key>/mean`` over seeds and ``<key>/seed<s>``."""

    def __init__(self, path: str, seeds: Sequence[int]):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ValueError(f"--tensorboard needs tensorboardX (pip install tensorboardX): {e}") from None
        self.seeds = list(seeds)
        self.w = SummaryWriter(path)

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            v = np.asarray(v, np.float64)
            if v.ndim != 1 or v.shape[0] != len(self.seeds):
                continue
            if np.all(np.isfinite(v)):
                self.w.add_scalar(f"{k}/mean", float(v.mean()), step)
            for s, x in zip(self.seeds, v):
                if math.isfinite(x):
                    self.w.add_scalar(f"{k}/seed{s}", float(x), step)
        self.w.flush()

    def close(self) -> None:
        self.w.close()


class LossWatch:
    """Warns when a value / critic loss grows by orders of magnitude without becoming NaN.

    The reference is the smallest segment mean seen so far (over seeds, of ``|loss|``); a value
    loss ``LossWatch.factor`` (1e3) times above it and above 1 is reported once per key."""

    factor = 1e3
    KEYS = ("loss/v", "loss/value", "loss/q", "loss/critic")

    def __init__(self):
        self.low: dict[str, float] = {}
        self.warned: set[str] = set()

    def check(self, stats: Mapping[str, np.ndarray]) -> list[str]:
        out = []
        for k in self.KEYS:
            if k not in stats:
                continue
            v = float(np.mean(np.abs(np.asarray(stats[k], np.float64))))
            if not math.isfinite(v):
                continue
            low = self.low.get(k)
            if low is not None and v > 1.0 and v > self.factor * max(low, 1e-12) and k not in self.warned:
                self.warned.add(k)
                out.append(f"{k} exploded to {v:.3g} ({v / max(low, 1e-12):.0e}x its lowest segment mean {low:.3g})")
            self.low[k] = v if low is None else min(low, v)
        return out


# ----------------------------------------------------------------------------- runner


@dataclasses.dataclass
class _Run:
    """Everything derived from (agent, env, config, seeds, hparams): shared by train and eval."""

    name: str
    entry: Any
    config: Any
    env_id: str
    agent: Any
    hparams: Any
    keys: jax.Array
    seeds: list[int]


def _build(name, env_id, config, seeds, env_kwargs, data, hparams) -> _Run:
    from rlsuite.envs import make

    entry = agents.get(name)
    config = entry.config() if config is None else config
    seeds = [V.require_nonneg_int(f"seed {s!r}", s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    keys = seed_keys(seeds)
    entry.check_config(config)  # env-free checks first: a bad value answers before any env import
    env, env_params = make(env_id, **dict(env_kwargs or {}))
    if getattr(env, "is_host", False):
        raise ValueError(f"{env_id!r} is a host (gymnasium) env; `rlsuite train` needs a JAX env (gymnax:, brax:, ...)")
    data = _load_data(data, env, env_params)
    agent = entry.make(config, env, env_params, data)
    hp = apply_hparams(entry.default_hparams(config), hparams, getattr(entry.load(), "HPARAM_RANGES", None))
    return _Run(name, entry, config, env_id, agent, hp, keys, seeds)


def _refuse_changes(saved: Mapping[str, Any], **given) -> None:
    """``--resume`` continues the saved run: refuse options that would make it a different run."""
    diff = []
    if given["agent"] is not None and given["agent"] != saved["agent"]:
        diff.append(f"agent {given['agent']!r} (run has {saved['agent']!r})")
    if given["env_id"] is not None and given["env_id"] != saved["env_id"]:
        diff.append(f"env {given['env_id']!r} (run has {saved['env_id']!r})")
    if given["config"] is not None and config_to_json(given["config"]) != saved["config"]:
        changed = sorted(k for k, v in config_to_json(given["config"]).items() if saved["config"].get(k) != v)
        diff.append(f"config fields {changed}")
    seeds = [int(s) for s in given["seeds"]] if given["seeds"] is not None else None
    if seeds is not None and seeds != [0] and seeds != list(saved["seeds"]):
        diff.append(f"seeds {seeds} (run has {saved['seeds']})")
    if given["segments"] not in (None, 10, saved["segments"]):
        diff.append(f"segments={given['segments']} (run has {saved['segments']})")
    if given["env_kwargs"] and dict(given["env_kwargs"]) != dict(saved.get("env_kwargs") or {}):
        diff.append(f"env_kwargs {dict(given['env_kwargs'])} (run has {saved.get('env_kwargs')})")
    if given["hparams"] and {k: float(v) for k, v in given["hparams"].items()} != {
            k: float(v) for k, v in (saved.get("hparams") or {}).items()}:
        diff.append(f"hparams {dict(given['hparams'])} (run has {saved.get('hparams')})")
    ref = saved.get("data")
    if isinstance(given["data"], str) and given["data"] != ref:
        diff.append(f"data {given['data']!r} (run has {ref!r})")
    if diff:
        raise ValueError("resume continues the saved run; these options would change it: " + "; ".join(diff)
                         + " (start a new run directory instead)")


def schedule(num_updates: int, segments: int) -> list[int]:
    """Update counts at the segment boundaries: ``[u_1, ..., u_n = num_updates]``."""
    ups = math.ceil(num_updates / segments)
    return [min(i * ups, num_updates) for i in range(1, math.ceil(num_updates / ups) + 1)]


def run_training(
    agent: str,
    env_id: str | None = None,
    config=None,
    seeds: Sequence[int] = (0,),
    run_dir: str | None = None,
    segments: int = 10,
    env_kwargs: Mapping[str, Any] | None = None,
    data: Any = None,
    progress: bool = True,
    resume: bool = False,
    max_segments: int | None = None,
    hparams: Mapping[str, float] | None = None,
    keep_checkpoints: int | None = 2,
    tensorboard: bool = False,
    devices: int | str | None = None,
) -> dict[str, Any] | None:
    """Train (or, with ``resume=True``, continue) a run; returns the summary dict.

    Args:
        agent: a registered agent name (``rlsuite agents``).
        env_id: any JAX env id ``rlsuite.envs.make`` accepts (default: the agent's default env).
        config: the agent's config dataclass (default: the registry variant's defaults).
        seeds: one training run per seed, vmapped; seed ``s`` uses ``PRNGKey(s)``, so seed 3 of a
            multi-seed run starts from the same key as a single run with seed 3 (the two agree to float
            tolerance for short runs; see the module docstring).
        run_dir: where config, metrics, checkpoints and results go (default ``runs/<agent>-<env>-<time>``).
        segments: number of jitted segments (= checkpoints, evaluations and progress updates).
        data: offline agents: a dataset path / Minari id / :class:`rlsuite.data.Dataset`, or
            ``{"dataset": ..., "expert": ...}`` for imitation.
        hparams: overrides of the agent's default hparams (``{"lr": 1e-3}``).
        max_segments: stop after this many segments in this invocation (a time-boxed job); the
            run continues later with ``resume=True``.  Returns ``None`` when stopped early.
        keep_checkpoints: newest checkpoints kept (``None``: all).
        tensorboard: also write the metrics (mean over seeds, and per seed) as TensorBoard event
            files in ``run_dir/tensorboard/`` (tensorboardX, installed with brax).
        devices: local devices the seeds are sharded over (``None`` / ``"all"``: all of them; see
            :mod:`rlsuite.core.sharding`).  It does not change the results, so a resumed run may use
            another number.  In a multi-process run (``jax.distributed`` initialised first, e.g. by
            ``rlsuite train --coordinator ...``) only process 0 writes files.

    With ``resume=True`` everything but ``run_dir``, ``progress``, ``max_segments``,
    ``keep_checkpoints`` and (for in-memory datasets) ``data`` comes from ``run_dir/config.json``;
    other arguments that differ from it are refused with a ``ValueError`` naming them.

    Compilation: each segment length compiles once per invocation (:func:`jit_per_length`; equal
    segments share it, a shorter last one compiles once more), a resumed run lowers the very
    programs of the uninterrupted one (so JAX's persistent cache serves them), and the summary
    reports ``compile_s_this_invocation`` and ``compiles_this_invocation`` (every compiled program,
    counted by :class:`rlsuite.core.agent.CompileWatch`, with persistent-cache hits).
    """
    n_devices = sharding.check_devices(devices)
    with CompileWatch() as watch:
        return _run_training(agent, env_id, config, seeds, run_dir, segments, env_kwargs, data, progress, resume,
                             max_segments, hparams, keep_checkpoints, tensorboard, n_devices, watch)


def _run_training(agent, env_id, config, seeds, run_dir, segments, env_kwargs, data, progress, resume, max_segments,
                  hparams, keep_checkpoints, tensorboard, n_devices, watch: CompileWatch):
    writes = sharding.is_writer()
    if resume:
        if run_dir is None or not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise FileNotFoundError(f"cannot resume: no config.json in run directory {run_dir!r}")
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
        _refuse_changes(saved, agent=agent, env_id=env_id, config=config, seeds=seeds, segments=segments,
                        env_kwargs=env_kwargs, hparams=hparams, data=data)
        name = saved["agent"]
        entry = agents.get(name)
        config = config_from_json(entry.config_cls, saved["config"])
        ref = saved.get("data")
        if isinstance(ref, Mapping) and ref.get("in_memory") and data is None:
            raise ValueError(f"run {run_dir!r} was trained on an in-memory dataset: pass data= again to resume")
        run = _build(name, saved["env_id"], config, saved["seeds"], saved.get("env_kwargs"),
                     data if data is not None else ref, saved.get("hparams"))
        segments, env_kwargs, hparams = saved["segments"], saved.get("env_kwargs", {}), saved.get("hparams")
    else:
        entry = agents.get(agent)
        if config is not None and type(config) is not entry.config_cls:
            raise ValueError(f"config for {agent!r} must be a {entry.config_cls.__name__}, got {type(config).__name__}")
        V.require_positive_int("segments", segments)
        if not list(seeds):
            raise ValueError("seeds must name at least one seed")
        env_id = env_id or entry.default_env
        run = _build(agent, env_id, config, seeds, env_kwargs, data, hparams)
    if max_segments is not None:
        V.require_positive_int("max_segments", max_segments)
    if keep_checkpoints is not None:
        V.require_positive_int("keep_checkpoints", keep_checkpoints)
    ag = run.agent
    bounds = schedule(ag.num_updates, int(segments))
    counter, spu = ag.counter, ag.steps_per_update

    if run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join("runs", f"{run.name}-{run.env_id.replace(':', '_').replace('/', '_')}-{stamp}")
    writer = MetricsWriter(os.path.join(run_dir, "metrics.jsonl"))
    tb = _TensorBoard(os.path.join(run_dir, "tensorboard"), run.seeds) if tensorboard and writes else None

    runs = sharding.Runs(len(run.seeds), n_devices)
    keys, hps = runs.rows(run.keys), runs.replicated(run.hparams)
    # init runs unsharded (on this process's first device) and its state is then split over the mesh:
    # it is cheap, equals the unsharded run's init, and keeps jaxlib 0.10.2's batched LAPACK calls
    # (orthogonal initialisers' QR) out of multi-device CPU programs, where they can deadlock
    @jax.jit
    def rlsuite_init(k, h):
        return jax.vmap(ag.init, in_axes=(0, None))(k, h)
    eval_v = runs.jit_vmap(lambda s, k, u: ag.evaluate(s, eval_key(k, u)), (0, 0, None), name="rlsuite_evaluate")
    seg_v = jit_per_length(ag.segment, lambda f: runs.jit_vmap(f, (0, None), name="rlsuite_segment"))

    def evaluate(state, update: int) -> dict[str, np.ndarray]:
        return runs.to_host(eval_v(state, keys, runs.replicated(np.int32(update))))

    step = 0
    t_start = time.perf_counter()
    if resume:
        target = jax.eval_shape(jax.vmap(ag.init, in_axes=(0, None)), run.keys, run.hparams)
        state, step = checkpoint.restore(run_dir, target, fallback=True)
        # orbax returns committed arrays, which lower to a program with sharding annotations; plain
        # (or mesh-sharded) arrays run the very programs (and persistent-cache entries) of the
        # uninterrupted run, so a resume does not compile anything new
        state = runs.rows(jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), state))
        if step == ag.num_updates:
            path = os.path.join(run_dir, "summary.json")
            if os.path.isfile(path):
                print(f"run {run_dir!r} already finished ({step} updates); nothing to do", file=sys.stderr)
                with open(path) as f:
                    return json.load(f)
            print(f"run {run_dir!r} has all {step} updates; writing its report", file=sys.stderr)
        elif step not in bounds:
            raise ValueError(f"checkpoint update {step} of {run_dir!r} is not a segment boundary of {bounds}")
        done = bounds.index(step) + 1 if step in bounds else 0
        if writes:
            writer.truncate_after("update", step)
    else:
        meta = {
            "agent": run.name, "env_id": run.env_id, "env_kwargs": dict(env_kwargs or {}), "seeds": run.seeds,
            "segments": int(segments), "config": config_to_json(run.config), "hparams": dict(hparams or {}),
            "data": _data_ref(data),
        }
        checkpoint.start_run(run_dir, meta if writes else None, hint="use --resume")
        state, step, done = runs.rows(rlsuite_init(run.keys, run.hparams)), 0, 0
        ev = evaluate(state, 0)
        bad = _non_finite(ev, run.seeds)
        if bad:
            raise NonFiniteError(f"non-finite {', '.join(bad)} before training; no checkpoint was written in {run_dir!r}")
        if writes:
            writer.write({"update": 0, counter: 0, "wall_s": 0.0, **ev})
        if tb is not None:
            tb.write(0, ev)

    label = ag.score.removeprefix("eval_").replace("_", " ")
    bar = Progress(ag.num_updates * spu, f"{run.name} {run.env_id.split(':', 1)[-1][:18]} x{len(run.seeds)}", step * spu,
                   progress and writes, counter=counter.replace("_", " "), metric=label)
    note = bar.warn if progress and writes else (lambda msg: None)
    if runs.sharded:
        note(f"sharded: {runs.describe()}")
    loss_watch = LossWatch()
    last = len(bounds) if max_segments is None else min(len(bounds), done + int(max_segments))
    try:
        for i in range(done, last):
            prev = bounds[i - 1] if i else 0
            update = bounds[i]
            compiled_before = watch.seconds
            new_state, m = seg_v(update - prev)(state, hps)
            m = runs.to_host(m)
            ev = evaluate(new_state, update)
            bad = _non_finite({**m, **ev}, run.seeds)
            if bad:
                good = step if step > 0 else None  # the last checkpoint saved or restored (verified)
                where = (f"the last good checkpoint in {run_dir!r} is update {good}" if good is not None
                         else f"no checkpoint was written yet in {run_dir!r}")
                raise NonFiniteError(
                    f"non-finite {', '.join(bad)} in segment {i + 1}/{len(bounds)} (updates {prev + 1}-{update}); "
                    f"stopped. {where}."
                )
            state, step = new_state, update
            stats = segment_stats(m, counter)
            if watch.seconds > compiled_before:
                note(f"compiled segment {i + 1}/{len(bounds)} ({update - prev} updates) in "
                         f"{watch.seconds - compiled_before:.2f} s")
            if writes:
                writer.write({"update": update, counter: update * spu, "wall_s": time.perf_counter() - t_start,
                              **stats, **ev})
            if tb is not None:
                tb.write(update * spu, {**stats, **ev})
            for msg in loss_watch.check(stats):
                bar.warn(f"warning: {msg} (segment {i + 1}/{len(bounds)}); check the learning rate")
            host_state = runs.to_host(state) if runs.sharded else state
            if writes:
                checkpoint.save(run_dir, update, host_state, keep_checkpoints)
            sharding.sync(f"rlsuite-checkpoint-{update}")  # the others may read it next (resume)
            score = ev.get(ag.score)
            bar.update(update * spu, float(np.mean(score)) if score is not None else None)
    finally:
        bar.close()
        if tb is not None:
            tb.close()
    if last < len(bounds):
        return None

    if last < done + 1 and jax.process_count() > 1:  # nothing ran here: every process evaluates (a collective)
        ev = evaluate(state, step)
    if writes or os.path.isfile(writer.path):
        final = writer.read()[-1]
    else:  # another host's process: the last evaluation (the writer's file is not visible here)
        final = {k: np.asarray(v).tolist() for k, v in ev.items()}
    evals = {k: final[k] for k in final if k.startswith("eval_")}
    score = np.asarray(evals[ag.score], np.float64)
    summary = {
        "agent": run.name, "env_id": run.env_id, "seeds": run.seeds, counter: ag.num_updates * spu,
        "counter": counter, "updates": ag.num_updates, "score": ag.score, "higher_is_better": ag.higher_is_better,
        "score_mean": float(score.mean()), "score_std_over_seeds": float(score.std()),
        "final": evals, "wall_s_this_invocation": time.perf_counter() - t_start,
        "compile_s_this_invocation": watch.seconds,
        "compiles_this_invocation": [{"function": f, "s": round(t, 3), "persistent_cache_hit": hit}
                                     for f, t, hit in watch.compiles],
        "sharding": runs.describe(),
        "device": device_description(), "run_dir": os.path.abspath(run_dir),
    }
    if writes:
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        write_report(run_dir, summary)
    return summary


# ----------------------------------------------------------------------------- report


def write_report(run_dir: str, summary: dict[str, Any]) -> None:
    """``results.md`` (per-seed final evaluation) and ``learning_curve.png`` from ``metrics.jsonl``."""
    records = MetricsWriter(os.path.join(run_dir, "metrics.jsonl")).read()
    counter, score = summary["counter"], summary["score"]
    keys = sorted(summary["final"])
    rows = [[s] + [f"{summary['final'][k][i]:.4g}" if summary["final"][k][i] is not None else "nan" for k in keys]
            for i, s in enumerate(summary["seeds"])]
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(f"# {summary['agent']} on {summary['env_id']}\n\n")
        f.write(f"- {counter.replace('_', ' ')} per seed: {summary[counter]} ({summary['updates']} updates)\n")
        f.write(f"- device: {summary['device']}\n")
        f.write(f"- {score}: {summary['score_mean']:.4g} ± {summary['score_std_over_seeds']:.4g} (std over seeds)\n\n")
        f.write(markdown_table(["seed"] + keys, rows) + "\n")
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key):
        pts = [(r[counter], r[key]) for r in records if key in r and counter in r]
        x = np.array([p[0] for p in pts], float)
        y = np.array([[np.nan if v is None else v for v in p[1]] for p in pts], float)
        return x, y

    train_key = "episode_return" if any("episode_return" in r for r in records) else next(
        (k for r in records for k in r if k.startswith("loss/")), None)
    panels = [(score, "evaluation")] + ([(train_key, "training")] if train_key else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        x, y = series(key)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.plot(x, np.nanmean(y, 1), label=f"mean over {y.shape[1]} seeds")
            ax.fill_between(x, np.nanmin(y, 1), np.nanmax(y, 1), alpha=0.25, label="min-max")
        ax.set_xlabel(f"{counter.replace('_', ' ')} (per seed)")
        ax.set_ylabel(key)
        ax.set_title(f"{summary['agent']} on {summary['env_id']}: {title}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "learning_curve.png"), dpi=100)
    plt.close(fig)


def evaluate_run(run_dir: str, episodes: int | None = None, seed: int | None = None, data: Any = None) -> dict[str, Any]:
    """Evaluate the latest checkpoint of a run directory (``episodes`` overrides ``eval_episodes``).

    Protocol: by default the runner's own (per training seed ``s``, the key
    ``eval_key(PRNGKey(s), update)`` and the run's ``eval_episodes``), so the numbers equal the
    ``eval_*`` of ``results.md`` / ``metrics.jsonl`` at that checkpoint.  With ``seed`` the keys are
    ``split(PRNGKey(seed), n_seeds)`` instead (fresh evaluation episodes).  The result's
    ``protocol`` says which was used.
    """
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} is not a run directory (no config.json)")
    with open(path) as f:
        saved = json.load(f)
    entry = agents.get(saved["agent"])
    config = config_from_json(entry.config_cls, saved["config"])
    if seed is not None:
        V.require_nonneg_int("seed", seed)
    if episodes is not None:
        V.require_positive_int("episodes", episodes)
        if not hasattr(config, "eval_episodes"):
            raise ValueError(f"agent {saved['agent']!r} has no eval_episodes to override")
        config = dataclasses.replace(config, eval_episodes=int(episodes))
    ref = saved.get("data")
    if isinstance(ref, Mapping) and ref.get("in_memory") and data is None:
        raise ValueError(f"run {run_dir!r} was trained on an in-memory dataset: pass data= to evaluate it")
    run = _build(saved["agent"], saved["env_id"], config, saved["seeds"], saved.get("env_kwargs"),
                 data if data is not None else ref, saved.get("hparams"))
    target = jax.eval_shape(jax.vmap(run.agent.init, in_axes=(0, None)), run.keys, run.hparams)
    state, step = checkpoint.restore(run_dir, target)
    n_ep = getattr(run.config, "eval_episodes", None)
    if seed is None:
        keys = jax.vmap(eval_key, in_axes=(0, None))(run.keys, step)
        protocol = (f"runner protocol: per training seed s, key eval_key(PRNGKey(s), update={step})"
                    + (f", {n_ep} episodes" if n_ep else "")
                    + (" (same as results.md / metrics.jsonl at this checkpoint)" if episodes is None else ""))
    else:
        keys = jax.random.split(jax.random.PRNGKey(seed), len(run.seeds))
        protocol = f"fresh keys split(PRNGKey({seed}), {len(run.seeds)})" + (f", {n_ep} episodes" if n_ep else "")
    ev = jax.jit(jax.vmap(run.agent.evaluate))(state, keys)
    out = {"run_dir": run_dir, "update": step, "seeds": run.seeds, "protocol": protocol}
    for k, v in ev.items():
        v = np.asarray(v, np.float64)
        out[f"{k}_per_seed"] = v.tolist()
        out[f"{k}_mean"] = float(v.mean())
    return out
