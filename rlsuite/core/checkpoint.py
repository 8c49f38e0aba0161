"""Orbax checkpoints of a whole learner state (params, optimiser, normalisation stats, envs, RNG).

Layout inside a run directory::

    run_dir/checkpoints/<update>/      one orbax checkpoint per saved segment boundary
    run_dir/config.json                written by the runner (algorithm, env, config, seeds)

A checkpoint is written to a temporary name and renamed when complete, so a crash mid-save
never hides the previous good checkpoint.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import numpy as np


def _ckpt_root(run_dir: str) -> str:
    return os.path.join(os.path.abspath(run_dir), "checkpoints")


def list_checkpoints(run_dir: str) -> list[int]:
    root = _ckpt_root(run_dir)
    if not os.path.isdir(root):
        return []
    return sorted(int(d) for d in os.listdir(root) if d.isdigit())


def latest_step(run_dir: str) -> int | None:
    steps = list_checkpoints(run_dir)
    return steps[-1] if steps else None


def save(run_dir: str, step: int, state: Any, keep: int = 2) -> str:
    """Save ``state`` as checkpoint ``step``; keep the newest ``keep`` checkpoints."""
    import orbax.checkpoint as ocp

    root = _ckpt_root(run_dir)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, str(int(step)))
    tmp = os.path.join(root, f"tmp-{int(step)}")
    shutil.rmtree(tmp, ignore_errors=True)
    # Keys are saved as raw uint32 data: portable and independent of the PRNG impl object.
    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(tmp, state)
    ckptr.wait_until_finished()
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(os.path.join(root, str(old)), ignore_errors=True)
    return final


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def restore(run_dir: str, target: Any, step: int | None = None) -> tuple[Any, int]:
    """Restore the checkpoint ``step`` (default: latest) into the structure of ``target``.

    Raises ``FileNotFoundError`` if there is none and ``ValueError`` if it does not match
    ``target`` (a different config or a corrupt checkpoint).
    """
    import orbax.checkpoint as ocp

    step = latest_step(run_dir) if step is None else int(step)
    path = os.path.join(_ckpt_root(run_dir), str(step)) if step is not None else None
    if path is None or not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint found in {os.path.abspath(run_dir)!r} (looked in {_ckpt_root(run_dir)!r})")
    def _abstract(x):
        if isinstance(x, jax.ShapeDtypeStruct):
            return x
        if _is_key(x):
            return jax.ShapeDtypeStruct(jax.random.key_data(x).shape, np.uint32)
        return jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)

    abstract = jax.tree.map(_abstract, target)
    try:
        restored = ocp.StandardCheckpointer().restore(path, abstract)
    except Exception as e:  # orbax raises many types for a mismatched or damaged checkpoint
        raise ValueError(f"checkpoint {path!r} is corrupt or does not match this run's config: {e}") from None
    return restored, step
