"""Sweeps: many training runs as one ``vmap``.

Every agent's ``train(key, hparams)`` is pure, so

- seeds are a ``vmap`` over keys (:func:`seed_keys`: seed ``s`` is ``PRNGKey(s)``, so run ``i`` of a
  sweep equals a separate run with that seed);
- a hyper-parameter grid is a ``vmap`` over a stacked hparams pytree (:func:`grid`);
- :func:`run_sweep` runs ``train`` over the product of both, optionally in chunks when memory is
  short (one compiled ``vmap`` of ``chunk_size`` runs, called once per chunk; the last chunk is
  padded), and shards the run axis over the available devices when there is more than one.
  (``lax.map(..., batch_size=...)`` was tried for chunking and stalled the XLA CPU runtime on
  jax 0.10.2, so chunks are dispatched from the host.)
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.core.validate import require_positive_int


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """``[S, 2]`` keys, ``PRNGKey(s)`` for each seed."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must contain at least one seed")
    return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def grid(base_hparams, **values: Sequence[float]):
    """Cartesian grid over hparams fields: returns ``(stacked_hparams [G], points)``.

    ``grid(hp, lr=[1e-4, 3e-4], gamma=[0.99, 0.999])`` gives 4 points; every other field keeps
    its value from ``base_hparams``.
    """
    for name, vals in values.items():
        if not hasattr(base_hparams, name):
            raise ValueError(f"{type(base_hparams).__name__} has no field {name!r}")
        if len(vals) == 0:
            raise ValueError(f"grid values for {name!r} are empty")
    names = list(values)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(points),) + jnp.shape(x)), base_hparams)
    stacked = stacked.replace(**{n: jnp.asarray([p[n] for p in points], jnp.float32) for n in names})
    return stacked, points


def run_sweep(
    train: Callable[[jax.Array, Any], Any],
    keys: jax.Array,
    hparams,
    chunk_size: int | None = None,
    shard: bool = True,
):
    """``train`` for every (hparams point, seed) pair: outputs have leading axes ``[G, S]``.

    ``hparams`` is stacked with leading axis ``G`` (see :func:`grid`); ``keys`` is ``[S, 2]``.
    ``chunk_size`` bounds how many runs execute at once (``lax.map`` over chunks).
    """
    g = jax.tree.leaves(hparams)[0].shape[0]
    s = keys.shape[0]
    flat_keys = jnp.tile(keys, (g, 1))
    flat_hp = jax.tree.map(lambda x: jnp.repeat(x, s, axis=0), hparams)
    if chunk_size is not None:
        require_positive_int("chunk_size", chunk_size)
    if shard and jax.device_count() > 1 and (g * s) % jax.device_count() == 0:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("runs",))
        spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
        flat_keys, flat_hp = jax.device_put((flat_keys, flat_hp), spec)
    fn = jax.jit(jax.vmap(train))
    if chunk_size is None or int(chunk_size) >= g * s:
        out = fn(flat_keys, flat_hp)
    else:
        c, n = int(chunk_size), g * s
        pad = (-n) % c
        padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), (flat_keys, flat_hp))
        chunks = [fn(*jax.tree.map(lambda x: x[i : i + c], padded)) for i in range(0, n + pad, c)]
        out = jax.tree.map(lambda *xs: jnp.concatenate(xs)[:n], *chunks)
    return jax.tree.map(lambda x: x.reshape((g, s) + x.shape[1:]), out)
