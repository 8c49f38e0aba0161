"""The agent protocol: one contract shared by every rlsuite agent, the runner and the meta engine.

Every agent module (online, trajectory-based, offline or policy-evaluation) exposes

- a frozen ``Config`` dataclass: shape-setting fields, one docstring each (``--help`` shows them);
- an ``HParams`` pytree (``flax.struct``) of traced numeric hyper-parameters and
  ``default_hparams(config) -> HParams``;
- ``make(config, env, env_params, data=None) -> Agent``; offline agents receive their dataset as
  ``data`` (an :class:`rlsuite.data.Dataset`, or ``{"dataset": ..., "expert": ...}`` for imitation).

An :class:`Agent` is a bundle of pure functions:

- ``init(key, hparams) -> state``: the whole learner state (params, optimiser, env carry, RNG);
- ``segment(state, hparams, num_updates) -> (state, metrics)``: ``num_updates`` (a Python int)
  updates in one ``lax.scan``; every metric leaf has leading axis ``[num_updates]``;
- ``evaluate(state, key) -> metrics``: scalars whose keys start with ``eval_`` (the headline one is
  ``agent.score``, by default ``eval_return``).

Shared metric keys, so the runner, plots and the meta engine need no per-agent code:

- ``env_steps`` (online / trajectory agents) or ``samples`` (offline agents): the cumulative count
  after each update (``agent.counter`` names which one);
- ``loss/<name>``: the losses the update minimised;
- ``episode_return`` and ``episodes``: mean undiscounted return of the training episodes that
  finished in the update (0 when none did) and their number;
- anything else (``grad_norm``, ``entropy``, ...) is reported as-is.  Metrics are always finite
  for a healthy run: the runner stops on the first non-finite scalar.

:func:`make_train` composes ``init`` and ``segment`` into one jittable ``train(key, hparams)``,
vmappable over keys (seeds) and hparams (sweeps, ES populations); it first checks its inputs
(:func:`check_train_inputs`: a PRNG key, hparams shaped like the agent's, documented ranges for
concrete values) so a wrong argument fails with one message, not inside a JAX trace; with ``eval_every`` it also
evaluates before training and every ``eval_every`` updates, with the same evaluation keys as the
runner (:func:`eval_key`), so a sweep and ``rlsuite train`` report the same ``eval_return``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rlsuite.core import validate as V

COUNTERS = ("env_steps", "samples")
EVAL_STREAM = 0x5E1  # fold_in tag separating evaluation keys from the training stream


class Agent(NamedTuple):
    """Pure functions of one configured agent (see the module docstring)."""

    init: Callable[[jax.Array, Any], Any]
    segment: Callable[[Any, Any, int], tuple[Any, dict]]
    evaluate: Callable[[Any, jax.Array], dict]
    num_updates: int
    """Updates in a full run."""
    steps_per_update: int
    """Environment steps (or dataset samples) consumed by one update, per seed."""
    counter: str = "env_steps"
    """``env_steps`` or ``samples``: the name of the cumulative count in the metrics."""
    score: str = "eval_return"
    """The headline evaluation metric (a key of ``evaluate``'s output)."""
    higher_is_better: bool = True
    """Whether a larger ``score`` is better (False for errors, e.g. martingale's value error)."""
    hparams_template: Any = None
    """Shapes / dtypes of the agent's ``HParams`` (``jax.ShapeDtypeStruct`` leaves); the registry
    fills it in, and :func:`make_train` then checks the hparams it is given against it."""
    hparam_ranges: Any = None
    """The module's ``HPARAM_RANGES`` (name -> :class:`rlsuite.core.validate.Range`)."""


def scan_segment(update: Callable[[Any, Any], tuple[Any, dict]]):
    """``segment(state, hparams, num_updates)`` scanning ``update(state, hparams)``."""

    def segment(state, hparams, num_updates: int):
        n = V.require_positive_int("num_updates", num_updates)
        return jax.lax.scan(lambda s, _: update(s, hparams), state, None, length=n)

    return segment


def jit_per_length(segment: Callable[..., tuple[Any, dict]], build: Callable[[Callable], Callable] | None = None,
                   ) -> Callable[[int], Callable]:
    """``get(n)``: the compiled ``lambda *args: segment(*args, n)``, built once per segment length
    ``n`` and reused, so equal segments share one program (the runner's and the meta runners'
    host loops).  ``build`` turns the function into the callable (default ``jax.jit``; the runner
    passes :meth:`rlsuite.core.sharding.Runs.jit_vmap`).  Each length compiles once per run;
    :class:`CompileWatch` counts it."""
    cache: dict[int, Callable] = {}
    build = build or jax.jit

    def get(n: int) -> Callable:
        if n not in cache:
            cache[n] = build(lambda *args: segment(*args, n))
        return cache[n]

    return get


class CompileWatch:
    """Counts XLA compilations and their time while active (``with CompileWatch() as cw: ...``).

    It listens to JAX's own monitoring events: tracing, lowering and backend compilation
    (``/jax/core/compile/*``) and persistent-cache hits.  :attr:`compiles` lists
    ``(function name, seconds, cache_hit)`` per backend compilation (a hit loads the program from
    the persistent compilation cache instead of compiling it); :attr:`seconds` is the total time
    spent tracing, lowering and compiling (or loading).
    """

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        self.compiles: list[tuple[str, float, bool]] = []
        self.seconds = 0.0
        self._hit = False

    def _duration(self, event: str, secs: float, **kw) -> None:
        if event not in self.EVENTS:
            return
        self.seconds += float(secs)
        if event == self.EVENTS[2]:
            self.compiles.append((str(kw.get("fun_name", "?")), float(secs), self._hit))
            self._hit = False

    def _event(self, event: str, **kw) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            self._hit = True

    def __enter__(self) -> "CompileWatch":
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)
        return self

    def __exit__(self, *exc) -> bool:
        jax.monitoring.unregister_event_duration_listener(self._duration)
        jax.monitoring.unregister_event_listener(self._event)
        return False

    def count(self, name: str, misses_only: bool = False) -> int:
        """Backend compilations of functions whose name contains ``name`` (``misses_only``: not
        loaded from the persistent cache)."""
        return sum(1 for f, _, hit in self.compiles if name in f and not (misses_only and hit))


def eval_key(key: jax.Array, update) -> jax.Array:
    """The evaluation key of seed key ``key`` after ``update`` updates (runner and ``make_train``)."""
    return jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), update)


def check_agent(agent: Agent) -> Agent:
    """Validate an :class:`Agent` bundle built by a module's ``make`` (one message per problem)."""
    V.require_positive_int("Agent.num_updates", agent.num_updates)
    V.require_positive_int("Agent.steps_per_update", agent.steps_per_update)
    if agent.counter not in COUNTERS:
        raise ValueError(f"Agent.counter must be one of {COUNTERS}, got {agent.counter!r}")
    if not agent.score.startswith("eval_"):
        raise ValueError(f"Agent.score must name an eval_ metric, got {agent.score!r}")
    return agent


def _key_template():
    return jax.eval_shape(lambda: jax.random.PRNGKey(0))


def check_key(key: Any, label: str = "key") -> None:
    """``key`` must be a PRNG key: ``jax.random.PRNGKey(seed)`` (raw ``uint32`` data) or
    ``jax.random.key(seed)`` (typed), not a plain integer seed."""
    shape, dtype = getattr(key, "shape", None), getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if shape == ():
            return
    else:
        t = _key_template()
        if shape == t.shape and dtype == t.dtype:
            return
    what = f"{type(key).__name__} {key!r}" if shape is None else f"an array of shape {shape} and dtype {dtype}"
    raise ValueError(f"{label} must be a PRNG key (jax.random.PRNGKey(seed): uint32{list(_key_template().shape)}, "
                     f"or jax.random.key(seed)), got {what}")


def check_hparams(template: Any, hparams: Any) -> None:
    """``hparams`` must have ``template``'s pytree structure (same type and fields) and each leaf
    its shape and a float dtype; one ``ValueError`` names the field and the expected shape.  Works
    on concrete values and on tracers (inside ``jit`` / ``vmap`` the per-example shape counts)."""
    import numpy as np

    if template is None:
        return
    name = type(template).__name__
    if type(hparams) is not type(template):
        raise ValueError(f"hparams must be a {name} (the agent's default_hparams(config), changed with "
                         f".replace(...)), got {type(hparams).__name__}")
    want = dict(jax.tree_util.tree_flatten_with_path(template)[0])
    try:
        got_leaves = jax.tree_util.tree_flatten_with_path(hparams)[0]
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"hparams is not a valid {name} pytree: {e}") from None
    got = dict(got_leaves)
    fmt = jax.tree_util.keystr
    missing, extra = [p for p in want if p not in got], [p for p in got if p not in want]
    if missing or extra:
        p = (missing or extra)[0]
        exp = f"expected a leaf of shape {tuple(want[p].shape)}" if p in want else "not a field of the template"
        raise ValueError(f"hparams{fmt(p)} does not match {name}: {exp} (structure differs from default_hparams)")
    for p, t in want.items():
        x = got[p]
        shape = tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)
        dtype = getattr(x, "dtype", None)
        if isinstance(x, (str, bytes)) or x is None or (dtype is None and not isinstance(x, (int, float))):
            raise ValueError(f"hparams{fmt(p)} must be a number / array of shape {tuple(t.shape)}, got {x!r}")
        if dtype is not None and not (jax.dtypes.issubdtype(dtype, jnp.floating) or jax.dtypes.issubdtype(dtype, jnp.integer)):
            raise ValueError(f"hparams{fmt(p)} must be a float array of shape {tuple(t.shape)}, got dtype {dtype}")
        if shape != tuple(t.shape):
            raise ValueError(f"hparams{fmt(p)} must have shape {tuple(t.shape)}, got shape {shape}"
                             + (" (vmap over a sweep axis instead of passing it stacked)" if shape[1:] == tuple(t.shape)
                                else ""))


def check_train_inputs(agent: Agent, key: Any, hparams: Any) -> None:
    """What ``train(key, hparams)`` checks first: the key, the hparams' structure and shapes, and
    (for concrete values) the documented ranges."""
    check_key(key)
    check_hparams(agent.hparams_template, hparams)
    if agent.hparam_ranges:
        V.check_ranges(hparams, agent.hparam_ranges, lambda n: f"hparams.{n}")


def make_train(agent: Agent, eval_every: int | None = None):
    """``train(key, hparams) -> (state, metrics)``: a whole run as one pure, jittable function.

    Without ``eval_every``: ``init`` then one ``segment`` of ``agent.num_updates`` updates;
    metric leaves are ``[num_updates]``.  With ``eval_every`` (must divide ``num_updates``): the
    run is a scan of segments of ``eval_every`` updates, ``evaluate`` runs at the start and after
    every segment, and the metrics gain ``eval_*`` leaves of length ``num_updates / eval_every + 1``
    plus ``eval_update`` (updates done at each evaluation).
    """
    if eval_every is None:

        def train(key, hparams):
            check_train_inputs(agent, key, hparams)
            return agent.segment(agent.init(key, hparams), hparams, agent.num_updates)

        return train

    every = V.require_positive_int("eval_every", eval_every)
    if agent.num_updates % every:
        raise ValueError(f"eval_every={every} must divide the agent's num_updates={agent.num_updates}")
    n_seg = agent.num_updates // every

    def train_with_eval(key, hparams):
        check_train_inputs(agent, key, hparams)
        state = agent.init(key, hparams)
        ev0 = agent.evaluate(state, eval_key(key, 0))

        def body(st, i):
            st, m = agent.segment(st, hparams, every)
            return st, (m, agent.evaluate(st, eval_key(key, (i + 1) * every)))

        state, (m, ev) = jax.lax.scan(body, state, jnp.arange(n_seg))
        metrics = jax.tree.map(lambda x: x.reshape((n_seg * every,) + x.shape[2:]), m)
        for k, v in ev.items():
            metrics[k] = jnp.concatenate([jnp.asarray(ev0[k])[None], v])
        metrics["eval_update"] = jnp.arange(n_seg + 1) * every
        return state, metrics

    return train_with_eval
