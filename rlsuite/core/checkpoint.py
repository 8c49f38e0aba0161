"""Orbax checkpoints of a whole learner state (params, optimiser, normalisation stats, envs, RNG).

The one checkpoint format of rlsuite: an orbax ``CheckpointManager`` directory per run::

    run_dir/checkpoints/<step>/        one checkpoint per saved segment boundary (step = updates done)
    run_dir/config.json                written by the runner (agent, env, config, seeds)

Orbax writes each checkpoint under a temporary name and renames it when complete, so a crash
mid-save never hides the previous good checkpoint.  PRNG keys are stored as their raw ``uint32``
data, so a checkpoint does not depend on the key implementation object.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


def _ckpt_root(run_dir: str) -> str:
    return os.path.join(os.path.abspath(run_dir), "checkpoints")


def _manager(run_dir: str, keep: int | None = None):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
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


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def save(run_dir: str, step: int, state: Any, keep: int | None = 2) -> str:
    """Save ``state`` as checkpoint ``step``; keep the newest ``keep`` checkpoints (``None``: all)."""
    import orbax.checkpoint as ocp

    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    mngr = _manager(run_dir, keep)
    mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)
    mngr.wait_until_finished()
    mngr.close()
    return os.path.join(_ckpt_root(run_dir), str(int(step)))


def restore(run_dir: str, target: Any, step: int | None = None) -> tuple[Any, int]:
    """Restore the checkpoint ``step`` (default: latest) into the structure of ``target``.

    ``target`` may be a concrete state or its ``jax.eval_shape``.  Raises ``FileNotFoundError``
    if there is none and ``ValueError`` if it does not match ``target`` (a different config or a
    damaged checkpoint).
    """
    import orbax.checkpoint as ocp

    step = latest_step(run_dir) if step is None else int(step)
    path = os.path.join(_ckpt_root(run_dir), str(step)) if step is not None else None
    if path is None or not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint found in {os.path.abspath(run_dir)!r} (looked in {_ckpt_root(run_dir)!r})")

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
        mngr = _manager(run_dir)
        restored = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
        mngr.close()
    except Exception as e:  # orbax raises many types for a mismatched or damaged checkpoint
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ValueError(f"checkpoint {path!r} is corrupt or does not match this run's config ({first})") from None
    return restored, step
