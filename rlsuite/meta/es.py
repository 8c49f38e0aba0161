"""Evolution strategies whose fitness is a whole training run (evosax 0.3).

The engine evolves any meta-parameter pytree (an agent's hyper-parameters, a learned
objective's network, ...).  The caller gives a pure ``fitness(meta_params, key) -> scalar``
(higher is better; with ``tasks``: ``fitness(meta_params, key, task)``) and a template pytree::

    es = make_es(ESConfig(population=8, generations=20), fitness, template)
    summary = run_es(es, init_params, run_dir="runs/my-es")        # progress, checkpoints, report
    mean = es.mean(restored_state)                                  # the search distribution's centre

One generation (:attr:`ES.step`) is ``ask`` -> evaluate every (member, seed, task) run in one
``vmap`` (or, with ``ESConfig.chunk``, ``lax.map(..., batch_size=chunk)`` over them) ->
``tell``; :attr:`ES.segment` scans generations (``lax.scan``), and :func:`run_es` runs jitted
segments with host work in between: a progress line, ``metrics.jsonl`` (one line per
generation), an orbax checkpoint of the whole :class:`ESState` (strategy state + RNG key) and an
optional ``on_checkpoint(mean_params, generation)`` hook.  A resumed run restores the latest
checkpoint and runs the same compiled segments, so it ends bit-identical to an uninterrupted run.

Choices (the papers' ES recipes, meta_discovery.md §3-§5):

- evosax minimises; the engine maximises: it negates the fitness before ``tell``.
- A non-finite fitness (NaN / +-inf, e.g. a diverged inner run; any seed of a member failing
  fails the member) counts as the worst of its generation for every shaping and never becomes
  the best-so-far.
- Antithetic sampling (Open_ES optional, PGPE always): evosax orders the population as
  ``[mean + sigma z, mean - sigma z]``, so members ``i`` and ``i + P/2`` are a pair; the engine
  gives both the same evaluation keys (task and agent initialisation), as in TA-LPG.  Without
  antithetic sampling every member has its own keys.
- Fitness shaping (``centered_rank``, ``z_score`` or ``pairwise``: winner 1 / loser 0 within an
  antithetic pair, TA-LPG) replaces Open_ES/PGPE/SimpleGA's own; SNES and CMA_ES apply their
  rank-based recombination weights on top of it (ranks are unchanged by the monotone shapings).
- ``lr`` / ``sigma`` are explicit (evosax's defaults, ``sgd(1e-3)`` and sigma 1, are nobody's
  paper values).  Defaults follow the modern LPO re-run: Open_ES, population 64, Adam lr 0.03,
  sigma 0.03, centred ranks.  TA-LPG: lr 1e-2 (decay 0.999, floor 1e-5), sigma 0.1 constant,
  ``pairwise`` shaping.  Original LPO: population 32, z-score shaping.
- SimpleGA has no mean: :attr:`ES.mean` returns its best member so far (initially the given
  initial parameters, which seed the whole first population).

Also here: :func:`tune_hparams` (any registered agent's scalar hyper-parameters, searched in an
unconstrained space mapped into bounds) and :func:`evolve_hparam_field` (a pytree field of an
agent's hparams, e.g. the learned drift of ``lpo`` / ``ta-lpo``), both with fitness = the final
evaluation score of a full training run averaged over ``ESConfig.seeds`` seeds, and
:func:`resume_run`.  Run directory::

    config.json  metrics.jsonl  checkpoints/<generation>/  summary.json  results.md  fitness_curve.png
    objective.msgpack (evolve_hparam_field: the mean field, rewritten at every checkpoint)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlsuite.core import checkpoint, sharding
from rlsuite.core import validate as V
from rlsuite.core.agent import CompileWatch, jit_per_length

STRATEGIES = ("Open_ES", "SNES", "CMA_ES", "PGPE", "SimpleGA")
SHAPINGS = ("centered_rank", "z_score", "pairwise")
OPTIMIZERS = ("adam", "sgd")
MAPPINGS = ("sigmoid", "clip")
_ANTITHETIC = {"Open_ES": "optional", "PGPE": "always"}  # the others sample without pairs


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Evolution-strategy settings (defaults: the modern LPO re-run, meta_discovery.md §3)."""

    strategy: str = "Open_ES"
    """evosax strategy: Open_ES, SNES, CMA_ES, PGPE or SimpleGA."""
    population: int = 64
    """Members per generation (even with antithetic sampling). LPO: 32 (original) / 64; TA-LPG 1024."""
    generations: int = 100
    """Generations to run (LPO 500-1025, TA-LPG 2500)."""
    lr: float = 0.03
    """Learning rate of the optimiser of the mean (Open_ES, PGPE, SNES; CMA_ES and SimpleGA have
    none). LPO re-run 0.03; TA-LPG 1e-2."""
    lr_decay: float = 1.0
    """Multiplicative lr decay per generation (LPO re-run 0.99, TA-LPG 0.999; 1 = constant)."""
    lr_floor: float = 0.0
    """Lower bound of the decayed lr (TA-LPG 1e-5)."""
    sigma: float = 0.03
    """Initial perturbation std (SimpleGA: mutation std). LPO re-run 0.03; TA-LPG 0.1."""
    sigma_decay: float = 1.0
    """Multiplicative sigma decay per generation (Open_ES, SimpleGA; LPO re-run 0.99). SNES,
    CMA_ES and PGPE adapt sigma themselves."""
    sigma_floor: float = 0.0
    """Lower bound of the decayed sigma."""
    optimizer: str = "adam"
    """Optimiser of the mean: adam or sgd."""
    antithetic: bool | None = None
    """Mirrored pairs (i, i + P/2) sharing evaluation keys. None: the strategy's default (Open_ES
    and PGPE yes, the others cannot)."""
    fitness_shaping: str = "centered_rank"
    """centered_rank (ranks in [-0.5, 0.5]), z_score (original LPO) or pairwise (TA-LPG: winner
    of each antithetic pair 1, loser 0)."""
    seeds: int = 1
    """Training runs (seeds) per member; the member's fitness is their mean."""
    chunk: int | None = None
    """Runs (member x seed x task) evaluated at once (lax.map batch size) when memory is short;
    None: all of them in one vmap."""
    segments: int = 10
    """Jitted segments (lax.scan over generations): a progress line, metrics and an orbax
    checkpoint after each."""
    seed: int = 0
    """Seed of the ES's RNG (sampling and evaluation keys)."""


def antithetic(config: ESConfig) -> bool:
    """Whether ``config`` samples antithetic pairs (resolving ``antithetic=None``)."""
    return _ANTITHETIC.get(config.strategy) is not None if config.antithetic is None else bool(config.antithetic)


def validate_config(config: ESConfig) -> ESConfig:
    """One ``ValueError`` naming the first bad field of ``config``."""
    V.choice(config, "strategy", STRATEGIES)
    V.positive_ints(config, "population", "generations", "seeds", "segments")
    V.positive(config, "lr", "sigma")
    V.in_range(config, "lr_decay", 0.0, 1.0, lo_open=True)
    V.in_range(config, "sigma_decay", 0.0, 1.0, lo_open=True)
    V.in_range(config, "lr_floor", 0.0, config.lr)
    V.in_range(config, "sigma_floor", 0.0, config.sigma)
    V.choice(config, "optimizer", OPTIMIZERS)
    V.choice(config, "fitness_shaping", SHAPINGS)
    if config.chunk is not None:
        V.positive_ints(config, "chunk")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        raise ValueError(f"ESConfig.seed must be an integer, got {config.seed!r}")
    mode = _ANTITHETIC.get(config.strategy)
    if config.antithetic is True and mode is None:
        raise ValueError(f"ESConfig.antithetic=True: strategy {config.strategy!r} has no antithetic sampling "
                         f"(only {sorted(_ANTITHETIC)} do)")
    if config.antithetic is False and mode == "always":
        raise ValueError(f"ESConfig.antithetic=False: strategy {config.strategy!r} always samples antithetic pairs")
    anti = antithetic(config)
    if anti and config.population % 2:
        raise ValueError(f"ESConfig.population={config.population} must be even with antithetic sampling "
                         "(pairs i, i + P/2)")
    if config.strategy in ("CMA_ES", "SimpleGA") and config.population < 2:
        raise ValueError(f"ESConfig.population={config.population}: {config.strategy} needs at least 2 members")
    if config.fitness_shaping == "pairwise" and not anti:
        raise ValueError("ESConfig.fitness_shaping='pairwise' needs antithetic pairs "
                         f"(strategy {config.strategy!r}, antithetic={config.antithetic!r})")
    return config


def config_from_json(d: Mapping[str, Any]) -> ESConfig:
    from rlsuite.train import config_from_json as from_json

    return from_json(ESConfig, d)


# ----------------------------------------------------------------------------- fitness shaping


def shape_fitness(kind: str, f: jax.Array) -> jax.Array:
    """Shaped values of minimisation fitness ``f`` ``[P]`` (lower is better; failures are +inf).

    Failed members come out worst: the highest rank, the worst finite z-score + 1, or the pair's
    loser (two failures in a pair tie at 0.5).
    """
    ok = jnp.isfinite(f)
    if kind == "centered_rank":
        ranks = jax.scipy.stats.rankdata(jnp.where(ok, f, jnp.inf)) - 1.0
        return ranks / max(f.shape[0] - 1, 1) - 0.5
    if kind == "z_score":
        n = jnp.maximum(ok.sum(), 1)
        mean = jnp.where(ok, f, 0.0).sum() / n
        std = jnp.sqrt(jnp.where(ok, (f - mean) ** 2, 0.0).sum() / n)
        z = jnp.where(ok, (f - mean) / (std + 1e-8), 0.0)
        worst = jnp.max(jnp.where(ok, z, -jnp.inf))
        return jnp.where(ok, z, jnp.where(jnp.any(ok), worst + 1.0, 0.0))
    if kind == "pairwise":
        h = f.shape[0] // 2
        a, b = jnp.where(ok, f, jnp.inf)[:h], jnp.where(ok, f, jnp.inf)[h:]
        first = jnp.where(a < b, 0.0, jnp.where(a > b, 1.0, 0.5))  # evosax minimises: winner 0
        return jnp.concatenate([first, 1.0 - first])
    raise ValueError(f"fitness_shaping={kind!r} is unknown; choose one of {SHAPINGS}")


# ----------------------------------------------------------------------------- the engine


@struct.dataclass
class ESState:
    """Everything a generation needs: the evosax state, the RNG key and the generation count."""

    strategy: Any
    key: jax.Array
    generation: jax.Array


class ES(NamedTuple):
    """A configured ES (pure functions; see :func:`make_es`)."""

    config: ESConfig
    strategy: Any
    """The evosax algorithm object (its ``default_params`` with our sigma are ``strategy_params``)."""
    strategy_params: Any
    init: Callable[[jax.Array, Any], ESState]
    """``init(key, mean_params) -> ESState``."""
    step: Callable[[ESState], tuple[ESState, dict]]
    """One generation: ``ask``, evaluate, ``tell``; metrics are scalars plus ``fitness [P]``."""
    segment: Callable[[ESState, int], tuple[ESState, dict]]
    """``segment(state, n)``: ``n`` generations in one ``lax.scan`` (metrics gain a leading ``[n]``)."""
    member_keys: Callable[[jax.Array], jax.Array]
    """``member_keys(key) -> [P, seeds, tasks, 2]`` evaluation keys (pairs share theirs)."""
    run_fitness: Callable[[Any, jax.Array], jax.Array]
    """``run_fitness(population, keys) -> [P, seeds, tasks]``: every run's fitness, one vmap (or chunked)."""
    mean: Callable[[ESState], Any]
    """The centre of the search (distribution mean; SimpleGA: best member so far), unravelled."""
    best: Callable[[ESState], tuple[Any, jax.Array]]
    """``(best member so far, its fitness)`` (fitness -inf before any finite evaluation)."""
    mesh: Any = None
    """The ``("runs",)`` device mesh the population's runs are split over (``None``: one device)."""


def _strong(tree):
    """``tree`` without weak types (evosax starts from Python scalars), so every segment call has the
    same signature and compiles once."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), tree)


def _schedule(value: float, decay: float, floor: float):
    import optax

    if decay == 1.0:
        return optax.constant_schedule(value)
    return optax.exponential_decay(value, transition_steps=1, decay_rate=decay, end_value=floor or None)


def _strategy(config: ESConfig, template, shaping_fn):
    """The evosax algorithm of ``config`` (each strategy has its own constructor signature)."""
    import optax
    from evosax import algorithms as A

    lr = _schedule(config.lr, config.lr_decay, config.lr_floor)
    opt = optax.adam(lr) if config.optimizer == "adam" else optax.sgd(lr)
    sigma = _schedule(config.sigma, config.sigma_decay, config.sigma_floor)
    P, name = config.population, config.strategy
    if name == "Open_ES":
        es = A.Open_ES(P, template, use_antithetic_sampling=antithetic(config), optimizer=opt,
                       std_schedule=sigma, fitness_shaping_fn=shaping_fn)
        return es, es.default_params
    if name == "PGPE":
        es = A.PGPE(P, template, optimizer=opt, fitness_shaping_fn=shaping_fn)
        return es, es.default_params.replace(std_init=config.sigma)
    if name == "SimpleGA":
        es = A.SimpleGA(P, template, std_schedule=sigma, fitness_shaping_fn=shaping_fn)
        return es, es.default_params
    from evosax.core.fitness_shaping import weights_fitness_shaping_fn

    weighted = lambda pop, f, s, p: weights_fitness_shaping_fn(pop, shaping_fn(pop, f, s, p), s, p)
    if name == "SNES":
        es = A.SNES(P, template, optimizer=opt, fitness_shaping_fn=weighted)
    else:
        es = A.CMA_ES(P, template, fitness_shaping_fn=weighted)
    return es, es.default_params.replace(std_init=jnp.asarray(config.sigma, jnp.float32))


def make_es(config: ESConfig, fitness: Callable, template, tasks=None, devices: int | str | None = None) -> ES:
    """Build the ES of ``config`` over pytrees shaped like ``template``.

    Args:
        fitness: pure ``fitness(meta_params, key) -> scalar`` (higher is better), or with
            ``tasks`` ``fitness(meta_params, key, task)``.  One call is typically a whole training
            run: ``key`` seeds it (task sampling, agent initialisation).
        template: a pytree of float arrays (the meta-parameters' structure; values unused).
        tasks: optional pytree with a leading task axis ``[T, ...]``: every member is evaluated on
            every task (and ``config.seeds`` seeds); its fitness is the mean over both.
        devices: local devices the generation's ``P * seeds * tasks`` runs are split over
            (``None`` / ``"all"``: all; :func:`rlsuite.core.sharding.map_runs`, the runs axis padded to
            a multiple of the device count; with ``chunk`` each device evaluates its block in chunks).
            Everything else of a generation (ask, tell) runs replicated on every device.
    """
    validate_config(config)
    mesh = sharding.make_mesh(sharding.check_devices(devices))
    leaves = jax.tree.leaves(template)
    if not leaves or not all(jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) for x in leaves):
        raise ValueError("the ES template must be a non-empty pytree of float arrays")
    template = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), template)
    n_tasks = 1
    if tasks is not None:
        sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(tasks)}
        if len(sizes) != 1 or None in sizes or 0 in sizes:
            raise ValueError(f"tasks must be a pytree whose leaves share a non-zero leading task axis, got sizes {sizes}")
        n_tasks = sizes.pop()
    P, S, T = config.population, config.seeds, n_tasks
    anti = antithetic(config)
    shaping = config.fitness_shaping
    es, params = _strategy(config, template, lambda pop, f, s, p: shape_fitness(shaping, f))
    population_based = config.strategy == "SimpleGA"

    def init(key, mean) -> ESState:
        mean = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), mean)
        if jax.tree.structure(mean) != jax.tree.structure(template) or any(
                jnp.shape(a) != jnp.shape(b) for a, b in zip(jax.tree.leaves(mean), jax.tree.leaves(template))):
            raise ValueError("the initial meta-parameters do not have the template's structure and shapes")
        k_es, key = jax.random.split(key)
        if population_based:  # the first population: P copies of the initial point, not yet evaluated
            pop = jax.tree.map(lambda x: jnp.broadcast_to(x, (P,) + x.shape), mean)
            s = es.init(k_es, pop, jnp.full((P,), jnp.inf), params)
        else:
            s = es.init(k_es, mean, params)
        return _strong(ESState(s, key, jnp.zeros((), jnp.int32)))

    def member_keys(key) -> jax.Array:
        n = P // 2 if anti else P
        keys = jax.random.split(key, n * S * T).reshape(n, S, T, -1)
        return jnp.concatenate([keys, keys]) if anti else keys

    def run_fitness(pop, keys) -> jax.Array:
        R = P * S * T
        flat_pop = jax.tree.map(lambda x: jnp.repeat(x, S * T, axis=0), pop)
        flat = (flat_pop, keys.reshape(R, -1), jnp.tile(jnp.arange(T), P * S))

        def one(args):
            p, k, t = args
            f = fitness(p, k) if tasks is None else fitness(p, k, jax.tree.map(lambda x: x[t], tasks))
            return jnp.asarray(f, jnp.float32).reshape(())

        return sharding.map_runs(one, flat, mesh, config.chunk).reshape(P, S, T)

    def step(state: ESState):
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        pop, s = es.ask(k_ask, state.strategy, params)
        fit = run_fitness(pop, member_keys(k_eval)).mean(axis=(1, 2))  # [P]; NaN if any run failed
        ok = jnp.isfinite(fit)
        s, _ = es.tell(k_tell, pop, jnp.where(ok, -fit, jnp.inf), s, params)
        n_ok = jnp.maximum(ok.sum(), 1)
        metrics = {
            "fitness": fit,
            "best_fitness": jnp.max(jnp.where(ok, fit, -jnp.inf)),
            "mean_fitness": jnp.where(ok.any(), jnp.where(ok, fit, 0.0).sum() / n_ok, jnp.nan),
            "failed": P - ok.sum(),
            "best_so_far": -s.best_fitness,
        }
        return ESState(s, key, state.generation + 1), metrics

    def segment(state: ESState, n: int):
        n = V.require_positive_int("generations per segment", n)
        state, metrics = jax.lax.scan(lambda st, _: step(st), state, None, length=n)
        return _strong(state), metrics

    def mean(state: ESState):
        if population_based:
            return es._unravel_solution(state.strategy.best_solution)
        return es.get_mean(state.strategy)

    def best(state: ESState):
        return es._unravel_solution(state.strategy.best_solution), -state.strategy.best_fitness

    return ES(config, es, params, init, step, segment, member_keys, run_fitness, mean, best, mesh)


# ----------------------------------------------------------------------------- host driver


def _is_finite_tree(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(tree))


def run_es(
    es: ES,
    init_params,
    run_dir: str | None = None,
    *,
    resume: bool = False,
    max_segments: int | None = None,
    progress: bool = True,
    env_steps_per_run: int | None = None,
    on_checkpoint: Callable[[Any, int], Any] | None = None,
    describe: Callable[[Any], Mapping[str, Any]] | None = None,
    run_info: Mapping[str, Any] | None = None,
    title: str = "ES",
    keep_checkpoints: int | None = 2,
) -> dict[str, Any] | None:
    """Run (or with ``resume=True`` continue) ``es`` from ``init_params``; returns the summary.

    Args:
        run_dir: config, metrics, checkpoints and report (default ``runs/es-<time>``).
        max_segments: stop after this many segments in this invocation (returns ``None``);
            continue later with ``resume=True`` (same ``es`` and ``init_params``).
        env_steps_per_run: environment steps of one fitness call (for the env-steps/s rate).
        on_checkpoint: ``on_checkpoint(mean_params, generation)`` after every checkpoint (e.g.
            save a learned objective); its return value, if a string, is reported as a path.
        describe: ``describe(mean_params) -> {name: value}`` for the report (e.g. the hparams).
        run_info: JSON-able description written into ``config.json`` (what :func:`resume_run`
            needs to rebuild ``es``).
    """
    from rlsuite.core.logging import MetricsWriter
    from rlsuite.train import schedule

    config = es.config
    if max_segments is not None:
        V.require_positive_int("max_segments", max_segments)
    bounds = schedule(config.generations, config.segments)
    if run_dir is None:
        run_dir = os.path.join("runs", f"es-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    writer = MetricsWriter(os.path.join(run_dir, "metrics.jsonl"))
    key0 = jax.random.PRNGKey(config.seed)
    init_fn = jax.jit(es.init)
    writes = sharding.is_writer()
    if resume:
        state, gen = checkpoint.restore(run_dir, jax.eval_shape(init_fn, key0, init_params))
        # orbax returns committed arrays, which lower to a program with sharding annotations; plain
        # arrays run the very program (and compilation-cache entry) of the uninterrupted run
        state = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), state)
        if gen not in bounds:
            raise ValueError(f"checkpoint generation {gen} of {run_dir!r} is not a segment boundary of {bounds}")
        done = bounds.index(gen) + 1
        if writes:
            writer.truncate_after("generation", gen)
    else:
        checkpoint.start_run(run_dir, {**dict(run_info or {}), "es": dataclasses.asdict(config)} if writes else None,
                             writer.path)
        state, gen, done = init_fn(key0, init_params), 0, 0

    seg_fn = jit_per_length(es.segment)
    watch = CompileWatch().__enter__()
    try:
        return _run_es_loop(es, state, gen, done, bounds, run_dir, writer, seg_fn, watch, writes, resume=resume,
                            max_segments=max_segments, progress=progress, env_steps_per_run=env_steps_per_run,
                            on_checkpoint=on_checkpoint, describe=describe, title=title,
                            keep_checkpoints=keep_checkpoints)
    finally:
        watch.__exit__(None, None, None)


def _run_es_loop(es, state, gen, done, bounds, run_dir, writer, seg_fn, watch, writes, *, resume, max_segments,
                 progress, env_steps_per_run, on_checkpoint, describe, title, keep_checkpoints):
    from rlsuite.train import NonFiniteError

    config = es.config
    key0 = jax.random.PRNGKey(config.seed)
    progress = progress and writes
    runs_per_gen = config.population * config.seeds * int(es.member_keys(key0).shape[2])
    last = len(bounds) if max_segments is None else min(len(bounds), done + int(max_segments))
    t0 = time.perf_counter()
    artifact = None
    for i in range(done, last):
        n = bounds[i] - gen
        t_seg = time.perf_counter()
        new_state, m = seg_fn(n)(sharding.replicate(state, es.mesh))
        m = sharding.to_host(m)
        if es.mesh is not None:  # replicated over the mesh (and processes): a host copy for the next segment
            new_state = sharding.to_host(new_state)
        seg_s = time.perf_counter() - t_seg
        mean = es.mean(new_state)
        if not _is_finite_tree(mean):
            good = checkpoint.latest_step(run_dir)
            raise NonFiniteError(f"the ES mean became non-finite in generations {gen + 1}-{bounds[i]}; stopped "
                                 f"(last good checkpoint in {run_dir!r}: generation {good})")
        state, wall = new_state, time.perf_counter() - t0
        gen = bounds[i]
        if writes:
            for j in range(n):
                writer.write({"generation": gen - n + j + 1, **{k: v[j] for k, v in m.items()},
                              "runs": (gen - n + j + 1) * runs_per_gen, "wall_s": wall})
            checkpoint.save(run_dir, gen, state, keep_checkpoints)
            if on_checkpoint is not None:
                artifact = on_checkpoint(mean, gen) or artifact
        if progress:
            rate = n / max(seg_s, 1e-9)  # this segment's (the first one includes compilation)
            steps = f"  {rate * runs_per_gen * env_steps_per_run:,.0f} env steps/s" if env_steps_per_run else ""
            print(f"[{title}] gen {gen}/{config.generations}  best {m['best_fitness'][-1]:.4g}  "
                  f"mean {m['mean_fitness'][-1]:.4g}  best so far {m['best_so_far'][-1]:.4g}  "
                  f"failed {int(m['failed'][-1])}  {rate:.3g} gen/s{steps}", file=sys.stderr, flush=True)
    if last < len(bounds):
        return None

    if not writes:  # another process of a multi-process run: process 0 writes the report
        return {"run_dir": os.path.abspath(run_dir), "generations": config.generations, "process_writes": False}
    if resume and artifact is None and on_checkpoint is not None:  # finished earlier: refresh the artifact
        artifact = on_checkpoint(es.mean(state), gen)
    records = writer.read()
    _, best_f = es.best(state)
    summary = {
        "title": title, "strategy": config.strategy, "population": config.population, "seeds": config.seeds,
        "generations": config.generations, "runs_per_generation": runs_per_gen,
        "env_steps_per_run": env_steps_per_run,
        "final_best_fitness": records[-1]["best_fitness"], "final_mean_fitness": records[-1]["mean_fitness"],
        "best_fitness_so_far": float(best_f),
        "mean_params": dict(describe(es.mean(state))) if describe is not None else None,
        "artifact": artifact, "wall_s_this_invocation": time.perf_counter() - t0,
        "compile_s_this_invocation": watch.seconds,
        "compiles_this_invocation": [{"function": f, "s": round(t, 3), "persistent_cache_hit": hit}
                                     for f, t, hit in watch.compiles],
        "devices": 1 if es.mesh is None else int(es.mesh.size),
        "run_dir": os.path.abspath(run_dir),
    }
    from rlsuite.core.results import device_description

    summary["device"] = device_description()
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    write_report(run_dir, summary, records, config)
    return summary


def write_report(run_dir: str, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 config: ESConfig) -> None:
    """``results.md`` (settings, final fitness, the mean's description) and ``fitness_curve.png``."""
    from rlsuite.core.results import markdown_table

    fmt = lambda v: "nan" if v is None else f"{v:.4g}"
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(f"# {summary['title']}\n\n")
        f.write(f"- strategy: {config.strategy}, population {config.population} x {config.seeds} seeds, "
                f"{config.generations} generations, lr {config.lr:g} (decay {config.lr_decay:g}), "
                f"sigma {config.sigma:g} (decay {config.sigma_decay:g}), {config.fitness_shaping} shaping, "
                f"antithetic {antithetic(config)}\n")
        f.write(f"- device: {summary['device']}\n")
        f.write(f"- final generation: best fitness {fmt(summary['final_best_fitness'])}, "
                f"mean fitness {fmt(summary['final_mean_fitness'])}\n")
        f.write(f"- best fitness so far: {fmt(summary['best_fitness_so_far'])}\n")
        if summary.get("artifact"):
            f.write(f"- mean meta-parameters saved to: {summary['artifact']}\n")
        if summary.get("mean_params"):
            f.write("\nThe ES mean after the last generation:\n\n")
            f.write(markdown_table(["name", "value"], [[k, v] for k, v in summary["mean_params"].items()]) + "\n")
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.array([r["generation"] for r in records], float)
    col = lambda k: np.array([np.nan if r.get(k) is None else r[k] for r in records], float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(g, col("best_fitness"), label="best of generation")
    ax.plot(g, col("mean_fitness"), label="population mean")
    ax.plot(g, col("best_so_far"), "--", label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(summary["title"], fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "fitness_curve.png"), dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- agents as fitness


def final_score_fn(agent) -> Callable[[jax.Array, Any], jax.Array]:
    """``score(key, hparams)``: a full training run's final evaluation, oriented so higher is better.

    ``init``, one ``segment`` of all ``agent.num_updates`` updates, then ``evaluate`` with the
    runner's evaluation key (:func:`rlsuite.core.agent.eval_key`), i.e. the last ``agent.score`` of
    ``make_train(agent, eval_every=agent.num_updates)`` (without its extra evaluation at update 0);
    negated when ``agent.higher_is_better`` is False.
    """
    from rlsuite.core.agent import eval_key

    sign = 1.0 if agent.higher_is_better else -1.0

    def score(key, hparams):
        state, _ = agent.segment(agent.init(key, hparams), hparams, agent.num_updates)
        return sign * agent.evaluate(state, eval_key(key, agent.num_updates))[agent.score]

    return score


@dataclasses.dataclass(frozen=True)
class Bound:
    """Search interval of one scalar hyper-parameter (``log``: searched in log space)."""

    low: float
    high: float
    log: bool = False

    def spec(self) -> str:
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")


def parse_bounds(specs: Sequence[str] | Mapping[str, Any]) -> dict[str, Bound]:
    """``["lr=1e-5:1e-2:log", "clip_eps=0.1:0.4"]`` (or a mapping of ``Bound`` / spec strings)."""
    items = specs.items() if isinstance(specs, Mapping) else [s.partition("=")[::2] for s in specs]
    out: dict[str, Bound] = {}
    for name, spec in items:
        name = name.strip()
        if isinstance(spec, Bound):
            b = spec
        else:
            parts = str(spec).split(":")
            try:
                if not name or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                    raise ValueError
                b = Bound(float(parts[0]), float(parts[1]), len(parts) == 3)
            except ValueError:
                raise ValueError(f"bad bounds {name}={spec!r}: want NAME=LOW:HIGH or NAME=LOW:HIGH:log") from None
        if not (math.isfinite(b.low) and math.isfinite(b.high)) or b.low >= b.high:
            raise ValueError(f"bad bounds {name}={b.spec()}: need finite LOW < HIGH")
        if b.log and b.low <= 0:
            raise ValueError(f"bad bounds {name}={b.spec()}: log-scale bounds need LOW > 0")
        if name in out:
            raise ValueError(f"bounds for {name!r} given twice")
        out[name] = b
    return out


@dataclasses.dataclass(frozen=True)
class HParamSpace:
    """Unconstrained search coordinates ``{name: u}`` <-> bounded hyper-parameter values.

    ``sigmoid``: value = low + (high - low) * sigmoid(u) (in log space for log bounds), so every
    u is valid and sigma is relative to the interval (sigma 1 ~ a quarter of it near the centre);
    ``clip``: value = low + (high - low) * clip(u, 0, 1), u in interval units.
    """

    bounds: Mapping[str, Bound]
    mapping: str = "sigmoid"

    def _ends(self, b: Bound):
        return (math.log(b.low), math.log(b.high)) if b.log else (b.low, b.high)

    def values(self, u: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        out = {}
        for name, b in self.bounds.items():
            lo, hi = self._ends(b)
            frac = jax.nn.sigmoid(u[name]) if self.mapping == "sigmoid" else jnp.clip(u[name], 0.0, 1.0)
            y = lo + (hi - lo) * frac
            out[name] = (jnp.exp(y) if b.log else y).astype(jnp.float32)
        return out

    def unconstrained(self, values: Mapping[str, float]) -> dict[str, jax.Array]:
        out = {}
        for name, b in self.bounds.items():
            v = float(values[name])
            if not b.low <= v <= b.high:
                raise ValueError(f"the starting value {name}={v:g} is outside its bounds {b.spec()}; widen the "
                                 f"bounds or start inside them (--hparam {name}=...)")
            lo, hi = self._ends(b)
            frac = ((math.log(v) if b.log else v) - lo) / (hi - lo)
            if self.mapping == "sigmoid":
                frac = min(max(frac, 1e-3), 1 - 1e-3)
                out[name] = jnp.asarray(math.log(frac / (1 - frac)), jnp.float32)
            else:
                out[name] = jnp.asarray(frac, jnp.float32)
        return out


def _scalar_fields(hp) -> list[str]:
    return [f.name for f in dataclasses.fields(hp) if jnp.ndim(getattr(hp, f.name)) == 0]


def _build_agent(info: Mapping[str, Any]):
    """(agent, base hparams, agent config) of a run description (registry + env registry)."""
    from rlsuite import agents
    from rlsuite.train import _build, config_from_json

    entry = agents.get(info["agent"])
    if entry.kind == "offline":
        raise ValueError(f"agent {info['agent']!r} is offline; the meta engine trains online agents only")
    config = config_from_json(entry.config_cls, info["config"]) if isinstance(info["config"], Mapping) else info["config"]
    run = _build(info["agent"], info["env_id"], config, [0], info.get("env_kwargs"), None, info.get("hparams"))
    return run.agent, run.hparams, run.config


def _run_info(kind, agent, env_id, config, hparams, env_kwargs, **extra) -> dict[str, Any]:
    from rlsuite import agents
    from rlsuite.train import config_to_json

    entry = agents.get(agent)
    config = entry.config() if config is None else config
    if not isinstance(config, entry.config_cls):
        raise ValueError(f"config for {agent!r} must be a {entry.config_cls.__name__}, got {type(config).__name__}")
    return {"kind": kind, "agent": agent, "env_id": env_id or entry.default_env, "env_kwargs": dict(env_kwargs or {}),
            "config": config_to_json(config), "hparams": dict(hparams or {}), **extra}


def _hparam_problem(info: Mapping[str, Any], es_config: ESConfig, devices=None):
    agent, base, _ = _build_agent(info)
    known = _scalar_fields(base)
    evolve = list(info["evolve"])
    if not evolve:
        raise ValueError("--evolve must name at least one hyper-parameter")
    bad = [n for n in evolve if n not in known]
    if bad:
        raise ValueError(f"unknown hparam(s) {bad} in --evolve for agent {info['agent']!r}; known: {known}")
    if len(set(evolve)) != len(evolve):
        raise ValueError(f"--evolve names a hyper-parameter twice: {evolve}")
    bounds = parse_bounds(info["bounds"])
    extra = sorted(set(bounds) - set(evolve))
    if extra:
        raise ValueError(f"--bounds for {extra}, which --evolve does not name ({evolve})")
    missing = [n for n in evolve if n not in bounds]
    if missing:
        raise ValueError(f"no --bounds for evolved hparam(s) {missing}; give NAME=LOW:HIGH[:log] for each")
    V.require_choice("mapping", info.get("mapping", "sigmoid"), MAPPINGS)
    space = HParamSpace({n: bounds[n] for n in evolve}, info.get("mapping", "sigmoid"))
    init = space.unconstrained({n: float(getattr(base, n)) for n in evolve})
    score = final_score_fn(agent)

    def fitness(u, key):
        return score(key, base.replace(**space.values(u)))

    def describe(u):
        return {n: float(v) for n, v in space.values(u).items()}

    es = make_es(es_config, fitness, init, devices=devices)
    return es, init, describe, agent.num_updates * agent.steps_per_update, None


def _field_problem(info: Mapping[str, Any], es_config: ESConfig, run_dir: str, devices=None):
    import importlib

    agent, base, agent_config = _build_agent(info)
    field = info["field"]
    names = [f.name for f in dataclasses.fields(base)]
    if field not in names:
        raise ValueError(f"agent {info['agent']!r} has no hparams field {field!r}; fields: {names}")
    mod = importlib.import_module(info["module"])
    template = getattr(base, field)
    init = template
    if info.get("init"):
        init = _load_field(mod, field, info["init"], template, agent_config)
    elif hasattr(mod, f"es_start_{field}"):  # e.g. lpo.es_start_drift: a start that is not a saddle
        init = getattr(mod, f"es_start_{field}")(jax.random.PRNGKey(es_config.seed), agent_config)
    score = final_score_fn(agent)

    def fitness(meta, key):
        return score(key, base.replace(**{field: meta}))

    def save(mean, gen):
        return _save_field(mod, field, os.path.join(run_dir, "objective.msgpack"), mean, agent_config)

    def describe(mean):
        n = sum(int(np.size(x)) for x in jax.tree.leaves(mean))
        return {f"{field}: parameters": n, f"{field}: global norm": float(np.sqrt(sum(
            float(np.sum(np.square(np.asarray(x)))) for x in jax.tree.leaves(mean))))}

    es = make_es(es_config, fitness, template, devices=devices)
    return es, init, describe, agent.num_updates * agent.steps_per_update, save


def _with_config(fn, config) -> dict:
    """``{"config": config}`` if ``fn`` takes a ``config`` argument (lpo's save/load_drift do)."""
    import inspect

    return {"config": config} if "config" in inspect.signature(fn).parameters else {}


def _save_field(mod, field: str, path: str, params, config=None) -> str:
    """Save with the agent module's ``save_<field>(path, params[, config])`` if it has one, else
    flax msgpack; returns the path written."""
    params = jax.tree.map(np.asarray, params)
    saver = getattr(mod, f"save_{field}", None)
    if saver is not None:
        out = saver(path, params, **_with_config(saver, config))
        return out if isinstance(out, str) else path
    from flax import serialization

    with open(path, "wb") as f:
        f.write(serialization.to_bytes(params))
    return path


def _load_field(mod, field: str, path: str, template, config=None):
    if not os.path.exists(path):
        raise FileNotFoundError(f"initial {field} file {path!r} does not exist")
    loader = getattr(mod, f"load_{field}", None)
    if loader is not None:
        return loader(path, **_with_config(loader, config))
    from flax import serialization

    with open(path, "rb") as f:
        return serialization.from_bytes(template, f.read())


def tune_hparams(
    agent: str,
    env_id: str | None = None,
    evolve: Sequence[str] = ("lr",),
    bounds: Sequence[str] | Mapping[str, Any] = (),
    es_config: ESConfig = ESConfig(),
    config=None,
    hparams: Mapping[str, float] | None = None,
    mapping: str = "sigmoid",
    run_dir: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    max_segments: int | None = None,
    progress: bool = True,
    devices: int | str | None = None,
) -> dict[str, Any] | None:
    """Evolve the scalar hyper-parameters ``evolve`` of a registered agent within ``bounds``.

    Fitness of a member: the agent's final ``score`` (negated if lower is better) after a full
    training run with its hyper-parameters, averaged over ``es_config.seeds`` seeds.  The search
    starts at the agent's defaults (with ``hparams`` overrides), mapped into the unconstrained
    space of :class:`HParamSpace`.  ``summary["mean_params"]`` holds the evolved values.
    """
    bspec = {k: b.spec() for k, b in parse_bounds(bounds).items()}
    info = _run_info("hparams", agent, env_id, config, hparams, env_kwargs, evolve=list(evolve), bounds=bspec,
                     mapping=mapping)
    es, init, describe, steps, _ = _hparam_problem(info, es_config, devices)
    return run_es(es, init, run_dir or _default_dir(info), max_segments=max_segments, progress=progress,
                  env_steps_per_run=steps, describe=describe, run_info=info,
                  title=f"ES over {info['agent']} hparams ({', '.join(evolve)}) on {info['env_id']}")


def evolve_hparam_field(
    agent: str,
    env_id: str | None = None,
    field: str = "drift",
    es_config: ESConfig = ESConfig(),
    config=None,
    hparams: Mapping[str, float] | None = None,
    init: str | None = None,
    run_dir: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    max_segments: int | None = None,
    progress: bool = True,
    devices: int | str | None = None,
) -> dict[str, Any] | None:
    """Evolve the pytree field ``hparams.<field>`` of a registered agent (e.g. LPO's drift network).

    Starts from ``init`` (a file read with the agent module's ``load_<field>`` if it has one, else
    flax msgpack), else from the module's ``es_start_<field>(key, config)`` if it has one (LPO: a
    drift equal to the default whose antithetic pairs differ), else the field's default value.  The mean is written to
    ``RUN_DIR/objective.msgpack`` at every checkpoint with the module's ``save_<field>`` (or flax
    msgpack).  Fitness as in :func:`tune_hparams`.
    """
    from rlsuite import agents

    info = _run_info("field", agent, env_id, config, hparams, env_kwargs, field=field,
                     module=agents.get(agent).module, init=os.path.abspath(init) if init else None)
    run_dir = run_dir or _default_dir(info)
    es, init_params, describe, steps, save = _field_problem(info, es_config, run_dir, devices)
    return run_es(es, init_params, run_dir, max_segments=max_segments, progress=progress, env_steps_per_run=steps,
                  on_checkpoint=save, describe=describe, run_info=info,
                  title=f"ES over {info['agent']} hparams.{field} on {info['env_id']}")


def resume_run(run_dir: str, max_segments: int | None = None, progress: bool = True,
               devices: int | str | None = None) -> dict[str, Any] | None:
    """Continue a :func:`tune_hparams` / :func:`evolve_hparam_field` run from its latest checkpoint
    (on any number of ``devices``: sharding does not change the results)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"cannot resume: no config.json in meta run directory {run_dir!r}")
    with open(path) as f:
        info = json.load(f)
    es_config = config_from_json(info.pop("es"))
    info.pop("created", None)
    kind = info.get("kind")
    if kind == "hparams":
        es, init, describe, steps, save = _hparam_problem(info, es_config, devices)
        title = f"ES over {info['agent']} hparams ({', '.join(info['evolve'])}) on {info['env_id']}"
    elif kind == "field":
        es, init, describe, steps, save = _field_problem(info, es_config, run_dir, devices)
        title = f"ES over {info['agent']} hparams.{info['field']} on {info['env_id']}"
    else:
        raise ValueError(f"{path!r} is not a meta run of tune_hparams / evolve_hparam_field (kind={kind!r})")
    return run_es(es, init, run_dir, resume=True, max_segments=max_segments, progress=progress,
                  env_steps_per_run=steps, on_checkpoint=save, describe=describe, run_info=info, title=title)


def _default_dir(info: Mapping[str, Any]) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = info["env_id"].replace(":", "_").replace("/", "_")
    what = info.get("field") or "hparams"
    return os.path.join("runs", f"meta-{info['agent']}-{what}-{env}-{stamp}")
