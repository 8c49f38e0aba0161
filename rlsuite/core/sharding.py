"""The run axis (seeds, hyper-parameter points, population members) over devices and hosts.

Every training run of a multi-seed ``rlsuite train``, and every (member, seed, task) run of a
meta-discovery generation, is independent of the others, so the leading "runs" axis is split over
all devices with ``jax.shard_map`` on a one-axis :class:`jax.sharding.Mesh` (``("runs",)``): each
device runs ``vmap`` over its own block of runs; nothing is communicated inside a run.  Over
several hosts the mesh holds every process's devices and JAX's own multi-controller runtime
(``jax.distributed.initialize``: a coordinator address, the number of processes and this
process's id, or a cluster's standard environment) joins them; there is no scheduler or RPC of
ours.

- The axis is padded to a multiple of the device count by repeating its last run (its results
  are dropped), so any number of seeds runs on any number of devices.
- With one device (the default on a CPU or one-GPU machine) nothing changes: :class:`Runs` then
  compiles exactly the plain ``jit(vmap(f))`` programs (same persistent-cache entries).
- Results equal the unsharded run with the same keys: a run's computation does not depend on
  which other runs share its ``vmap`` (tests/test_sharding.py checks bit equality on 8 virtual
  CPU devices for PPO and for an ES generation).
- Host values (:meth:`Runs.to_host`) are gathered from every process (``process_allgather``), so
  every process sees the same metrics; only process 0 writes files (:func:`is_writer`).
- Bit-identity: evaluation / episode returns are bit-identical to the unsharded run; float metrics
  and parameters agree to rounding only, because XLA's CPU kernels sum in an order that depends on
  the batch shape a device sees (the same caveat as a multi-seed ``vmap`` against single runs).
- Several *CPU* devices (``--xla_force_host_platform_device_count``, for tests) and jaxlib 0.10.2:
  when several device programs run a batched LAPACK call at once (e.g. the QR of orthogonal
  initialisers, vmapped over 2+ runs per device) the CPU runtime can deadlock (every thread parked
  in ``ParallelBatchMap``).  The runner therefore initialises unsharded and shards the state; an ES
  whose fitness initialises such networks should keep one run per virtual CPU device.  GPUs / TPUs
  and the default single CPU device are not affected.

Command-line options (``rlsuite train`` and ``rlsuite meta ...``; :func:`parse_flags`)::

    --devices N|all                          local devices per process (default all)
    --coordinator HOST:PORT --num-processes K --process-id I    several processes / hosts

or the environment variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID`` (and, with none of these, Slurm / Open MPI / TPU auto-detection through
``RLSUITE_DISTRIBUTED=auto``).  This module imports jax only inside functions, so the CLI stays
cheap.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

AXIS = "runs"
ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@dataclasses.dataclass(frozen=True)
class Scale:
    """Where runs go: how many local devices, and the multi-process coordinates (all or none)."""

    devices: int | None = None
    """Local devices per process (``None``: all of them)."""
    coordinator: str | None = None
    """``HOST:PORT`` of process 0's coordinator service."""
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False
    """``jax.distributed.initialize()`` with cluster auto-detection (Slurm, Open MPI, TPU)."""
    cpu_threads: int | None = None
    """Threads of jaxlib's CPU runtime (``None``: one per core); see :func:`set_cpu_threads`."""

    @property
    def distributed(self) -> bool:
        return self.coordinator is not None or self.auto


def _int(flag: str, value: Any, lo: int) -> int:
    try:
        v = int(str(value).strip())
        if str(v) != str(value).strip().lstrip("+"):
            raise ValueError
    except ValueError:
        v = None
    if v is None or v < lo:
        what = "a positive integer" if lo == 1 else "a non-negative integer"
        raise ValueError(f"{flag} must be {what}, got {value!r}")
    return v


def check_devices(value: Any) -> int | None:
    """``"all"`` / ``None`` -> ``None``; otherwise a positive int (one clear error otherwise)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    if isinstance(value, bool):
        raise ValueError(f"--devices must be a positive integer or 'all', got {value!r}")
    try:
        return _int("--devices", value, 1)
    except ValueError:
        raise ValueError(f"--devices must be a positive integer or 'all', got {value!r}") from None


def make_scale(devices: Any = None, coordinator: str | None = None, num_processes: Any = None,
               process_id: Any = None, cpu_threads: Any = None, environ: dict | None = None) -> Scale:
    """A validated :class:`Scale`; missing multi-process values come from ``JAX_COORDINATOR_ADDRESS``,
    ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` (``RLSUITE_DISTRIBUTED=auto``: cluster auto-detection)."""
    threads = None if cpu_threads is None else _int("--cpu-threads", cpu_threads, 1)
    return dataclasses.replace(_make_scale(devices, coordinator, num_processes, process_id, environ),
                               cpu_threads=threads)


def _make_scale(devices, coordinator, num_processes, process_id, environ) -> Scale:
    env = os.environ if environ is None else environ
    coordinator = coordinator if coordinator is not None else env.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else env.get("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else env.get("JAX_PROCESS_ID")
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    n_dev = check_devices(devices)
    if all(v is None for v in given.values()):
        return Scale(n_dev, auto=env.get("RLSUITE_DISTRIBUTED", "").lower() == "auto")
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"several processes need --coordinator, --num-processes and --process-id together "
                         f"(or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID); missing {missing}")
    host, sep, port = str(coordinator).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator must be HOST:PORT (e.g. 10.0.0.1:1234), got {coordinator!r}")
    k = _int("--num-processes", num_processes, 1)
    i = _int("--process-id", process_id, 0)
    if i >= k:
        raise ValueError(f"--process-id must be in [0, {k - 1}] for --num-processes {k}, got {i}")
    return Scale(n_dev, str(coordinator), k, i)


_FLAGS = {"--devices": "devices", "--coordinator": "coordinator", "--num-processes": "num_processes",
          "--process-id": "process_id", "--cpu-threads": "cpu_threads"}


def parse_flags(argv: Sequence[str], environ: dict | None = None) -> tuple[Scale, list[str]]:
    """Take the scale-out flags out of ``argv`` (``--flag V`` or ``--flag=V``); returns the
    :class:`Scale` and the remaining arguments.  The one parser of ``rlsuite train`` and
    ``rlsuite meta ...``; no jax import."""
    found: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        if flag in _FLAGS:
            if eq:
                value = inline
                i += 1
            else:
                if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                    raise ValueError(f"{flag} needs a value")
                value = argv[i + 1]
                i += 2
            if _FLAGS[flag] in found:
                raise ValueError(f"{flag} given twice")
            found[_FLAGS[flag]] = value
        else:
            rest.append(argv[i])
            i += 1
    return make_scale(**found, environ=environ), rest


HELP = """scale-out options (any `rlsuite train` / `rlsuite meta` command):
  --devices N|all          local devices the run axis (seeds / population) is sharded over (default all)
  --coordinator HOST:PORT  process 0's address; with --num-processes K --process-id I joins K processes
                           (jax.distributed; or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)
  --cpu-threads N          threads of the CPU runtime (default one per core; 1 is faster for small networks,
                           e.g. PPO on CartPole: see the README's "Benchmarks")
"""


# ----------------------------------------------------------------------------- runtime


def set_cpu_threads(n: int) -> None:
    """Run jaxlib's CPU runtime on ``n`` threads (it reads ``PJRT_NPROC`` when its CPU backend
    starts, so call this before the first JAX computation; one clear error after it).

    The default is one thread per core.  Programs made of many small ops (PPO / A2C with 64-unit
    networks: per-op cost, not FLOPs) run faster on one thread, since every op handed between
    threads costs a wake-up: PPO CartPole-v1 500k steps took 0.85x the time at 1 seed and 0.79x at
    16 vmapped seeds with ``n=1`` on a 2-core machine (``results/benchmarks/ppo_vs_rejax.md``),
    while programs of big matmuls (O-DICE's 1024-unit policy) lose the second core.  With one thread
    the jaxlib scheduler deadlock that ``import rlsuite`` works around does not occur
    (``results/benchmarks/xla_scheduler_hang.md``)."""
    n = _int("--cpu-threads", n, 1)
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized() and os.environ.get("PJRT_NPROC") != str(n):
        raise RuntimeError(f"--cpu-threads {n}: JAX's backend has already started; set it before the "
                           f"first JAX computation (or export PJRT_NPROC={n})")
    os.environ["PJRT_NPROC"] = str(n)


def initialize(scale: Scale, timeout_s: int = 300) -> None:
    """``jax.distributed.initialize`` for a multi-process ``scale`` (before any computation); a no-op
    for one process or when already initialised.  On CPU, cross-process collectives use gloo.
    ``scale.cpu_threads`` is applied first (:func:`set_cpu_threads`)."""
    if scale.cpu_threads is not None:
        set_cpu_threads(scale.cpu_threads)
    if not scale.distributed:
        return
    import jax

    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if scale.auto:
        jax.distributed.initialize(initialization_timeout=timeout_s)
    else:
        jax.distributed.initialize(scale.coordinator, scale.num_processes, scale.process_id,
                                   initialization_timeout=timeout_s)


def is_writer() -> bool:
    """Whether this process writes files (checkpoints, metrics, reports): process 0 only."""
    import jax

    return jax.process_index() == 0


def mesh_devices(devices: int | None = None) -> list:
    """The mesh's devices: the first ``devices`` local devices of every process (all by default)."""
    import jax

    n_local = jax.local_device_count()
    if devices is not None and devices > n_local:
        raise ValueError(f"--devices {devices}: this process has only {n_local} {jax.default_backend()} device(s)")
    per = n_local if devices is None else devices
    by_proc: dict[int, list] = {}
    for d in jax.devices():
        by_proc.setdefault(d.process_index, []).append(d)
    return [d for p in sorted(by_proc) for d in sorted(by_proc[p], key=lambda d: d.id)[:per]]


def pad_rows(tree, n: int):
    """Leading axis of every leaf padded to ``n`` rows by repeating the last row (host or device)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def pad(x):
        k = n - x.shape[0]
        if k == 0:
            return x
        xp = np if isinstance(x, np.ndarray) else jnp
        return xp.concatenate([x, xp.repeat(x[-1:], k, axis=0)])

    return jax.tree.map(pad, tree)


def _fetch(x):
    import numpy as np

    if not hasattr(x, "is_fully_addressable") or x.is_fully_addressable:
        return np.asarray(x)
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


class Runs:
    """``n`` independent runs on the leading axis, sharded over a mesh of devices (or not).

    ``Runs(n, devices)`` builds the mesh (:func:`mesh_devices`); with one device in it every method
    is the plain single-device one.  Typical use (the runner)::

        r = Runs(len(seeds))
        init = r.jit_vmap(agent.init, in_axes=(0, None))        # jit(shard_map(vmap(f)))
        state = init(r.rows(keys), r.replicated(hparams))       # padded, on the mesh
        metrics = r.to_host(metrics)                            # numpy, gathered, [n, ...]
    """

    def __init__(self, n: int, devices: int | None = None):
        self.n = int(n)
        self.mesh = make_mesh(devices)
        self.num_devices = 1 if self.mesh is None else self.mesh.size
        self.padded = -(-self.n // self.num_devices) * self.num_devices

    @property
    def sharded(self) -> bool:
        return self.mesh is not None

    def describe(self) -> str:
        if not self.sharded:
            return "1 device"
        import jax

        pad = f", padded to {self.padded}" if self.padded != self.n else ""
        procs = f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""
        return f"{self.n} runs over {self.num_devices} devices{procs}{pad}"

    def rows(self, tree):
        """A host / single-device pytree with leading axis ``n``: padded and split over the mesh."""
        if not self.sharded:
            return tree
        from jax.sharding import PartitionSpec as P

        return _put(pad_rows(_host(tree), self.padded), self.mesh, P(AXIS))

    def replicated(self, tree):
        """A pytree every run shares (e.g. hparams), on every device of the mesh."""
        if not self.sharded:
            return tree
        from jax.sharding import PartitionSpec as P

        return _put(_host(tree), self.mesh, P())

    def jit_vmap(self, fn: Callable, in_axes: Sequence[int | None], name: str | None = None):
        """``jit(vmap(fn, in_axes))``, each device vmapping its block of runs when sharded.
        Arguments with ``in_axes`` 0 come from :meth:`rows` (or an earlier output), ``None`` ones
        from :meth:`replicated`; every output has the runs axis first."""
        import jax

        f = jax.vmap(fn, in_axes=tuple(in_axes))
        if name:
            f.__name__ = f.__qualname__ = name
        if not self.sharded:
            return jax.jit(f)
        from jax.sharding import PartitionSpec as P

        specs = tuple(P(AXIS) if a == 0 else P() for a in in_axes)
        g = jax.shard_map(f, mesh=self.mesh, in_specs=specs, out_specs=P(AXIS), check_vma=False)
        if name:
            g.__name__ = g.__qualname__ = name
        return jax.jit(g)

    def to_host(self, tree):
        """NumPy copy of an output with leading axis ``padded``, trimmed to ``n`` (every process
        gets the whole axis)."""
        import jax

        out = jax.tree.map(_fetch, tree)
        if self.padded == self.n:
            return out
        return jax.tree.map(lambda x: x[: self.n], out)


def _host(tree):
    import jax
    import numpy as np

    return jax.tree.map(lambda x: _fetch(x) if hasattr(x, "shape") else np.asarray(x), tree)


def map_runs(fn: Callable, xs, mesh=None, chunk: int | None = None):
    """``vmap(fn)(xs)`` inside a jitted program (``xs``: pytree with leading axis ``R``), split over
    ``mesh``'s devices when given (``R`` padded to a multiple of them); ``chunk`` bounds the runs a
    device evaluates at once (``lax.map(..., batch_size=chunk)`` over its block)."""
    import jax

    def local(x):
        r = jax.tree.leaves(x)[0].shape[0]
        if chunk is None or chunk >= r:
            return jax.vmap(fn)(x)
        return jax.lax.map(fn, x, batch_size=chunk)

    if mesh is None or mesh.size == 1:
        return local(xs)
    from jax.sharding import PartitionSpec as P

    r = jax.tree.leaves(xs)[0].shape[0]
    n = -(-r // mesh.size) * mesh.size
    out = jax.shard_map(local, mesh=mesh, in_specs=P(AXIS), out_specs=P(AXIS), check_vma=False)(pad_rows(xs, n))
    return jax.tree.map(lambda y: y[:r], out)


def _put(tree, mesh, spec):
    import jax
    import numpy as np

    sharding = jax.sharding.NamedSharding(mesh, spec)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def replicate(tree, mesh):
    """``tree`` (host values) as arrays replicated on every device of ``mesh`` (a no-op without one):
    the input form a multi-process ``jit`` over ``mesh`` needs."""
    if mesh is None or mesh.size == 1:
        return tree
    from jax.sharding import PartitionSpec as P

    return _put(_host(tree), mesh, P())


def to_host(tree):
    """NumPy copy of any output (replicated, sharded or on another process's devices)."""
    return _host(tree)


def make_mesh(devices: int | None = None):
    """A one-axis ``("runs",)`` mesh over :func:`mesh_devices`, or ``None`` for a single device."""
    import jax
    import numpy as np

    devs = mesh_devices(devices)
    return jax.sharding.Mesh(np.array(devs), (AXIS,)) if len(devs) > 1 else None


def from_argv(argv: Sequence[str]) -> tuple[Scale, list[str]]:
    """The CLIs' one entry: take the scale-out flags out of ``argv`` (:func:`parse_flags`) and, for
    several processes, join them (:func:`initialize`, before any JAX computation)."""
    scale, rest = parse_flags(argv)
    initialize(scale)
    return scale, rest


def sync(name: str) -> None:
    """All processes wait here (a no-op for one process): e.g. after process 0 wrote a checkpoint
    that the others may read next."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def checkpoint_manager_options():
    """orbax ``MultiprocessingOptions`` for the checkpoints of a multi-process run: every process is
    its own primary host, so process 0 alone saves (the state it saves is the gathered host copy)
    and each process restores on its own, with no cross-process barrier inside orbax.  ``None``
    for one process.  (orbax then needs ``create=False`` and an existing root directory.)"""
    import jax

    if jax.process_count() == 1:
        return None
    import orbax.checkpoint as ocp

    i = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=i, active_processes={i})
