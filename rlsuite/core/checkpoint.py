"""Orbax checkpoints of a whole learner state (params, optimiser, normalisation stats, envs, RNG).

The one checkpoint format of rlsuite: an orbax ``CheckpointManager`` directory per run::

    run_dir/checkpoints/<step>/        one checkpoint per saved segment boundary (step = updates done)
    run_dir/config.json                written by the runner (agent, env, config, seeds)

Orbax writes each checkpoint under a temporary name and renames it when complete, so a crash
mid-save never hides the previous good checkpoint.  PRNG keys are stored as their raw ``uint32``
data, so a checkpoint does not depend on the key implementation object.

Integrity: after orbax has finished, :func:`save` writes ``<step>/rlsuite_checksum.json`` (last,
atomically: a temporary file renamed into place) holding a SHA-256 of the saved content (every
leaf's path, dtype, shape and bytes, in tree order).  :func:`restore` recomputes it on the
restored state and refuses a mismatch, so flipped bytes, truncated or deleted files fail with
one line (:class:`CorruptCheckpointError`, a ``ValueError``) naming the checkpoint's path.  A
checkpoint without the file is incomplete (the writer died before finishing), unless no
checkpoint of the run has one (written before checksums existed: restored unverified, with a
warning).  ``restore(..., fallback=True)`` (the runner's ``--resume``) falls back to the newest
checkpoint that verifies, says so, and moves the bad ones to ``run_dir/corrupt_checkpoints/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from typing import Any, Callable

import jax
import numpy as np

CHECKSUM_FILE = "rlsuite_checksum.json"


class CorruptCheckpointError(ValueError):
    """A checkpoint that cannot be restored or whose content does not match its checksum."""


def _ckpt_root(run_dir: str) -> str:
    return os.path.join(os.path.abspath(run_dir), "checkpoints")


def _manager(run_dir: str, keep: int | None = None):
    import orbax.checkpoint as ocp

    from rlsuite.core import sharding

    multi = sharding.checkpoint_manager_options()  # None for one process
    if multi is None:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
    else:  # several processes: process 0 saves alone, with no cross-process barrier inside orbax
        os.makedirs(_ckpt_root(run_dir), exist_ok=True)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False, create=False,
                                               multiprocessing_options=multi)
    return ocp.CheckpointManager(_ckpt_root(run_dir), options=options)


def list_checkpoints(run_dir: str) -> list[int]:
    """Steps of the complete checkpoints in ``run_dir``, oldest first."""
    root = _ckpt_root(run_dir)
    if not os.path.isdir(root):
        return []
    return sorted(int(d) for d in os.listdir(root) if d.isdigit())


def latest_step(run_dir: str) -> int | None:
    steps = list_checkpoints(run_dir)
    return steps[-1] if steps else None


def start_run(run_dir: str, record: dict | None, metrics_path: str | None = None,
              hint: str = "resume it") -> None:
    """Begin a new run in ``run_dir`` (the runner and every meta runner): refuse a directory that
    already has checkpoints, create it, drop a stale metrics file and write ``config.json``
    (``record`` plus its creation time; ``None``: write nothing, as on processes other than 0)."""
    import datetime as _dt

    if latest_step(run_dir) is not None:
        raise ValueError(f"run directory {run_dir!r} already has checkpoints; {hint} or use a new directory")
    os.makedirs(run_dir, exist_ok=True)
    if record is None:
        return
    if metrics_path is not None and os.path.exists(metrics_path):
        os.remove(metrics_path)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({**record, "created": _dt.datetime.now(_dt.timezone.utc).isoformat()}, f, indent=2)


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def content_digest(state: Any) -> str:
    """SHA-256 of a state's content: every leaf's tree path, dtype, shape and bytes (keys as data)."""
    h = hashlib.sha256()
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    for path, x in leaves:
        if _is_key(x):
            x = jax.random.key_data(x)
        a = np.ascontiguousarray(np.asarray(x))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _file_digests(path: str) -> dict[str, str]:
    """SHA-256 of every file of a checkpoint directory (but the checksum file), by relative path."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel in (CHECKSUM_FILE, f".{CHECKSUM_FILE}.tmp"):
                continue
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[rel] = h.hexdigest()
    return dict(sorted(out.items()))


def _write_checksum(path: str, digest: str) -> None:
    tmp = os.path.join(path, f".{CHECKSUM_FILE}.tmp")
    record = {"content_sha256": digest, "files_sha256": _file_digests(path),
              "algorithm": "content: sha256 over (tree path, dtype, shape, bytes) of every leaf; files: sha256 of each"}
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(path, CHECKSUM_FILE))


def _read_checksum(path: str) -> dict | None:
    try:
        with open(os.path.join(path, CHECKSUM_FILE)) as f:
            rec = json.load(f)
        if not isinstance(rec.get("content_sha256"), str) or not isinstance(rec.get("files_sha256"), dict):
            return None
        return rec
    except (OSError, ValueError, AttributeError):
        return None


def _check_files(path: str, expected: dict[str, str]) -> None:
    actual = _file_digests(path)
    missing = sorted(set(expected) - set(actual))
    if missing:
        raise CorruptCheckpointError(f"checkpoint {path!r} is damaged: file {missing[0]} is missing")
    changed = sorted(k for k in expected if actual[k] != expected[k])
    if changed:
        raise CorruptCheckpointError(f"checkpoint {path!r} is corrupt: file {changed[0]} does not match its checksum")


def has_checksum(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CHECKSUM_FILE))


class _Quiet:
    """Silence orbax/absl/tensorstore logging while restoring (their errors become one line)."""

    def __enter__(self):
        self._levels = []
        for name in ("absl", "orbax", "orbax.checkpoint", "tensorstore", "asyncio", "jax"):
            lg = logging.getLogger(name)
            self._levels.append((lg, lg.level))
            lg.setLevel(logging.CRITICAL + 1)
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        for lg, level in self._levels:
            lg.setLevel(level)
        return False


def save(run_dir: str, step: int, state: Any, keep: int | None = 2) -> str:
    """Save ``state`` as checkpoint ``step``; keep the newest ``keep`` checkpoints (``None``: all).

    The checksum file is written last (atomically), after orbax has committed the checkpoint.
    """
    import orbax.checkpoint as ocp

    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    digest = content_digest(state)
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise ValueError(f"keep_checkpoints must be a positive integer or None (keep all), got {keep!r}")
    mngr = _manager(run_dir, None)  # retention below, after the checksum: never delete before the new one is whole
    mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)
    mngr.wait_until_finished()
    mngr.close()
    path = os.path.join(_ckpt_root(run_dir), str(int(step)))
    _write_checksum(path, digest)
    if keep is not None:
        for old in [s for s in list_checkpoints(run_dir) if s != int(step)][: max(0, len(list_checkpoints(run_dir)) - keep)]:
            shutil.rmtree(os.path.join(_ckpt_root(run_dir), str(old)), ignore_errors=True)
    return path


def restore(run_dir: str, target: Any, step: int | None = None, fallback: bool = False,
            say: Callable[[str], Any] | None = None) -> tuple[Any, int]:
    """Restore the checkpoint ``step`` (default: latest) into the structure of ``target``, verified.

    ``target`` may be a concrete state or its ``jax.eval_shape``.  Raises ``FileNotFoundError``
    if there is none and :class:`CorruptCheckpointError` (a ``ValueError``, one line naming the
    checkpoint's path) if it is damaged, incomplete or does not match ``target``.  With
    ``fallback=True`` (and no ``step``) the newest checkpoint that verifies is restored instead;
    ``say`` (default: print to stderr) reports each one skipped, and the skipped ones are moved to
    ``run_dir/corrupt_checkpoints/`` so the run can write those steps again.
    """
    steps = list_checkpoints(run_dir)
    if step is None and not steps or step is not None and int(step) not in steps:
        where = f"checkpoint {int(step)} not" if step is not None else "no checkpoint"
        raise FileNotFoundError(f"{where} found in {os.path.abspath(run_dir)!r} (looked in {_ckpt_root(run_dir)!r})")
    if step is not None or not fallback:
        return _restore_one(run_dir, target, int(step) if step is not None else steps[-1], steps), (
            int(step) if step is not None else steps[-1])
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    errors = []
    for s in reversed(steps):
        try:
            state = _restore_one(run_dir, target, s, steps)
        except CorruptCheckpointError as e:
            errors.append((s, str(e)))
            continue
        for bad, msg in errors:
            dest = os.path.join(os.path.abspath(run_dir), "corrupt_checkpoints", str(bad))
            if os.path.exists(dest):
                shutil.rmtree(dest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.move(os.path.join(_ckpt_root(run_dir), str(bad)), dest)
            say(f"rlsuite: {msg}; moved it to {dest!r}")
        if errors:
            say(f"rlsuite: falling back to checkpoint {s}, the newest one that verifies")
        return state, s
    raise CorruptCheckpointError(
        f"no checkpoint in {_ckpt_root(run_dir)!r} verifies: " + "; ".join(m for _, m in errors))


def _restore_one(run_dir: str, target: Any, step: int, steps: list[int]) -> Any:
    import orbax.checkpoint as ocp

    path = os.path.join(_ckpt_root(run_dir), str(step))
    expected = _read_checksum(path)
    if expected is None:
        legacy = not any(has_checksum(os.path.join(_ckpt_root(run_dir), str(s))) for s in steps)
        if not legacy or has_checksum(path):
            raise CorruptCheckpointError(f"checkpoint {path!r} is incomplete or damaged (its checksum file "
                                         f"{CHECKSUM_FILE} is missing or unreadable)")
        warnings.warn(f"checkpoint {path!r} predates checksums; restored without verification", stacklevel=3)
    else:
        _check_files(path, expected["files_sha256"])

    def _abstract(x):
        if isinstance(x, jax.ShapeDtypeStruct):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return jax.eval_shape(jax.random.key_data, x)
            return x
        if _is_key(x):
            return jax.ShapeDtypeStruct(jax.random.key_data(x).shape, np.uint32)
        return jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)

    abstract = jax.tree.map(_abstract, target)
    try:
        with _Quiet():
            mngr = _manager(run_dir)
            try:
                restored = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
            finally:
                mngr.close()
    except Exception as e:  # orbax / tensorstore raise many types for a mismatched or damaged checkpoint
        text = str(e).strip()
        first = text.splitlines()[0] if text else ""
        if len(first) > 160 or "{" in first:  # tensorstore spec dumps: keep the kind only
            first = ""
        why = f"{type(e).__name__}{': ' + first if first else ''}"
        raise CorruptCheckpointError(
            f"checkpoint {path!r} is corrupt or does not match this run's config ({why})") from None
    if expected is not None and content_digest(restored) != expected["content_sha256"]:
        raise CorruptCheckpointError(f"checkpoint {path!r} is corrupt: its content does not match its checksum")
    return restored
