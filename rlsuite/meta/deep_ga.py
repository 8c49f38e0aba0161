"""Deep GA with compact seed chains, and GA-NS (novelty search) — Such et al. 2017 (arXiv 1712.06567).

Spec sheet: ``shared/papers/deep_ga.md``.  One generation (:attr:`GA.step`, pure and jittable):

1. every individual of the population ``[N, P]`` is evaluated on ``GAConfig.episodes`` episode(s)
   of the shared engine's fixed-horizon episode mode (:func:`rlsuite.core.rollout.rollout_episodes`),
   ``vmap``-ed over the population (or ``lax.map(..., batch_size=chunk)``);
2. **elitism with re-evaluation**: the top ``elite_candidates`` offspring by one-episode fitness
   plus the previous elite (slot ``N - 1``) are re-evaluated on ``elite_episodes`` more episodes;
   the best mean becomes the elite (its frames count).  ``elite_episodes = 0`` picks the elite by
   the one-episode score instead (the ablation of the sheet's §8);
3. **truncation selection**: the top ``truncation`` (T) individuals by fitness (GA) or novelty
   (GA-NS) are the parents; in the GA the elite is always among them (it replaces the T-th if it
   is not in the top T).  ``N - 1`` offspring: a parent drawn uniformly from the T, plus
   ``sigma * eps`` (absolute sigma, **no crossover**); slot ``N - 1`` is the elite, unmodified.
   ``truncation = 0`` is the **random-search baseline**: every offspring is freshly initialised
   (the validated elite is still carried in slot ``N - 1``, so RS reports its best validated
   individual).

Compact encoding (sheet §2): an individual is its seed chain ``[tau_0, tau_1, ..., tau_n]``, kept as
a fixed-capacity ``int32`` array ``chains[N, generations + 1]`` plus ``lengths[N]``.  With
``key_base = PRNGKey(GAConfig.seed)``::

    theta0(tau) = init(fold_in(fold_in(key_base, 0), tau))          # N(0,1) std/sqrt(fan_in); biases 0
    eps(tau)    = normal(fold_in(fold_in(key_base, 1), tau), (P,))
    theta(chain) = (...(theta0(tau_0) + sigma eps(tau_1)) + ...) + sigma eps(tau_n)   # generation order

:func:`decode` replays a chain with a ``lax.scan`` (masked past its length, adding exact zeros),
with the very ``mutate`` the fast path uses, so it reproduces the evolved parameters bit for bit.
Seeds are unique: ``tau = g * N + i`` for the ``i``-th individual created at generation ``g``
(generation 0: ``0..N-1``).  The fast path keeps the population ``[N, P]`` in memory; checkpoints
hold only the chains (O(N * generations) int32, independent of P), the RNG key and the archive, and
a resumed run rebuilds ``[N, P]`` from them.  sigma is constant (not stored per step).

GA-NS (sheet §4): ``GAConfig.novelty = True`` ranks by novelty: the mean Euclidean distance of an
individual's behaviour characterisation (BC) to its ``novelty_k`` nearest neighbours among the
archive and the rest of the population (:func:`novelty`).  BC: ``bc_fn(final env state) -> [d]``
(default ``"position"``: ``(state.x, state.y)``, the maze robot's final position), read through a
thin env wrapper that appends the BC to the observation (the policy never sees it).  Archive: a
ring buffer ``[archive_size, d]``; each generation ``archive_add`` individuals are inserted, chosen
at random (``archive_mode="random"``, the sheet) or the most novel (``"novel"``).  The elite slot
still holds the validated highest-*reward* individual (reported and exported), but it is not forced
into the parents.

The policy is a plain MLP on a flat parameter vector (``hidden``, ``activation``; the sheet's
initialisation: weights ``N(0,1) * std / sqrt(fan_in)``, std 1 for hidden layers and 0.1 for the
output layer, biases 0); discrete actions take the argmax, Box actions ``tanh`` scaled into the
bounds (deterministic policies, as in the paper).

evosax ``SimpleGA`` for comparison: ``rlsuite.meta.es.make_es(ESConfig(strategy="SimpleGA",
population=N, sigma=sigma), fitness, template)`` with ``fitness = lambda theta, key:
episode_return(theta, key)`` (the engine negates for evosax's minimisation).  Caveats (sheet §5):
evosax keeps the top N/2 as parents, mutates every child (no unmodified elite) and never
re-evaluates.  :func:`es_baseline` runs any :mod:`rlsuite.meta.es` strategy (OpenES for the
equal-frame comparisons of ``experiments/deep_ga/compare.py``) on the GA's policy and evaluation and
also returns the env steps each generation took.

Host driver :func:`run_ga` (the :func:`rlsuite.meta.es.run_es` pattern): ``config.json``,
``metrics.jsonl`` (one line per generation: best / mean / elite fitness, frames), orbax checkpoints
of the compact state at segment boundaries, ``elite.msgpack`` + ``elite.json`` (the elite's
parameters and seed chain), ``summary.json``, ``results.md``, ``fitness_curve.png``; ``resume=True``
ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlsuite.core import checkpoint
from rlsuite.core import validate as V
from rlsuite.core.agent import jit_per_length
from rlsuite.core.rollout import rollout_episodes

ARCHIVE_MODES = ("random", "novel")
ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class GAConfig:
    """Deep GA / GA-NS settings (CPU-scale defaults in the sheet's §8 ranges)."""

    population: int = 128
    """N: individuals per generation (the last slot holds the elite). Atari 1000."""
    truncation: int = 10
    """T: parents are the top T (0 = random-search baseline). Atari 20."""
    sigma: float = 0.02
    """Absolute mutation std. Atari 0.002 (tuned for the DQN net)."""
    generations: int = 50
    """Generations to run."""
    episodes: int = 1
    """Training episodes per individual per generation (paper: 1)."""
    elite_candidates: int = 10
    """Top offspring re-evaluated for the elite (plus the previous elite). Paper 10."""
    elite_episodes: int = 30
    """Extra episodes per elite candidate (paper 30; 0 = pick the elite by the one-episode score)."""
    test_episodes: int = 200
    """Episodes of the final test of the elite (the run's reported score)."""
    horizon: int | None = None
    """Episode step cap (default: the env's max_steps_in_episode)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the MLP policy."""
    activation: str = "tanh"
    """tanh or relu."""
    novelty: bool = False
    """GA-NS: select on novelty of the behaviour characterisation instead of reward."""
    novelty_k: int = 10
    """k of the k-nearest-neighbour novelty."""
    archive_size: int = 1000
    """Capacity of the novelty archive (ring buffer)."""
    archive_add: int = 1
    """Individuals added to the archive per generation."""
    archive_mode: str = "random"
    """random (each generation archive_add random individuals) or novel (the most novel)."""
    bc: str = "position"
    """Behaviour characterisation of the final env state: position = (state.x, state.y)."""
    chunk: int | None = None
    """Individuals evaluated at once (lax.map batch size) when memory is short; None: one vmap."""
    segments: int = 10
    """Jitted segments (lax.scan over generations): progress, metrics and a checkpoint after each."""
    seed: int = 0
    """Run seed: the base key of the seed chains and the evaluation RNG."""


def validate_config(c: GAConfig) -> GAConfig:
    V.positive_ints(c, "population", "generations", "episodes", "test_episodes", "segments", "novelty_k",
                    "archive_size")
    if c.population < 2:
        raise ValueError(f"GAConfig.population={c.population}: needs at least 2 (offspring + the elite slot)")
    for name in ("truncation", "elite_candidates", "elite_episodes", "archive_add"):
        v = getattr(c, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"GAConfig.{name} must be a non-negative integer, got {v!r}")
    if c.truncation > c.population:
        raise ValueError(f"GAConfig.truncation={c.truncation} exceeds the population {c.population}")
    V.positive(c, "sigma")
    if c.horizon is not None:
        V.positive_ints(c, "horizon")
    if c.chunk is not None:
        V.positive_ints(c, "chunk")
    if not c.hidden or any(not isinstance(h, int) or h <= 0 for h in c.hidden):
        raise ValueError(f"GAConfig.hidden must be positive layer sizes, got {c.hidden!r}")
    V.choice(c, "activation", tuple(ACTIVATIONS))
    V.choice(c, "archive_mode", ARCHIVE_MODES)
    if c.archive_add > c.population:
        raise ValueError(f"GAConfig.archive_add={c.archive_add} exceeds the population {c.population}")
    if c.novelty and c.truncation == 0:
        raise ValueError("GAConfig.novelty=True needs truncation > 0 (selection on novelty)")
    if not isinstance(c.seed, int) or isinstance(c.seed, bool):
        raise ValueError(f"GAConfig.seed must be an integer, got {c.seed!r}")
    return c


def config_from_json(d: Mapping[str, Any]) -> GAConfig:
    from rlsuite.train import config_from_json as from_json

    return from_json(GAConfig, d)


# ----------------------------------------------------------------------------- flat MLP policy


class FlatMLP(NamedTuple):
    """An MLP on a flat parameter vector: ``sizes = (in, *hidden, out)``."""

    sizes: tuple[int, ...]
    activation: str = "tanh"

    @property
    def num_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def init(self, key) -> jax.Array:
        """The sheet's init: W ~ N(0, 1) std / sqrt(fan_in) (std 1 hidden, 0.1 output), biases 0."""
        parts = []
        n = len(self.sizes) - 1
        keys = jax.random.split(key, n)
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            std = 0.1 if i == n - 1 else 1.0
            parts += [(jax.random.normal(keys[i], (a * b,)) * std / math.sqrt(a)), jnp.zeros((b,))]
        return jnp.concatenate(parts).astype(jnp.float32)

    def unravel(self, theta) -> list[tuple[jax.Array, jax.Array]]:
        out, o = [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            w = theta[o:o + a * b].reshape(a, b)
            o += a * b
            out.append((w, theta[o:o + b]))
            o += b
        return out

    def apply(self, theta, x):
        layers = self.unravel(theta)
        act = ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(layers):
            x = x @ w + b
            if i < len(layers) - 1:
                x = act(x)
        return x

    def to_pytree(self, theta) -> dict:
        return {f"layer_{i}": {"kernel": np.asarray(w), "bias": np.asarray(b)}
                for i, (w, b) in enumerate(self.unravel(jnp.asarray(theta)))}


def _action_head(space):
    from gymnax.environments import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.n), lambda out: jnp.argmax(out, -1).astype(jnp.int32)
    if isinstance(space, spaces.Box):
        if len(space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {space.shape}")
        lo, hi = np.broadcast_to(space.low, space.shape), np.broadcast_to(space.high, space.shape)
        if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
            lo, hi = jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32)
            return int(space.shape[0]), lambda out: lo + (jnp.tanh(out) + 1.0) * 0.5 * (hi - lo)
        return int(space.shape[0]), lambda out: out
    raise ValueError(f"unsupported action space {type(space).__name__}; expected Discrete or Box")


# ----------------------------------------------------------------------------- behaviour characterisation


BC_FUNCTIONS: dict[str, Callable[[Any], jax.Array]] = {
    "position": lambda s: jnp.stack([jnp.asarray(s.x, jnp.float32), jnp.asarray(s.y, jnp.float32)]),
}


class BCObservation:
    """Env wrapper: the observation gains ``bc_fn(state)`` at its end (the GA policy strips it).

    It lets the one rollout engine report the final state's behaviour characterisation: the
    frozen ``next_obs`` of the last step of ``rollout_episodes`` is the final observation.
    """

    def __init__(self, env, bc_fn):
        self.env, self.bc_fn = env, bc_fn
        self.reset_under_cond = getattr(env, "reset_under_cond", True)

    def _obs(self, obs, state):
        return jnp.concatenate([jnp.ravel(obs).astype(jnp.float32), self.bc_fn(state).astype(jnp.float32)])

    def reset_env(self, key, params):
        obs, state = self.env.reset_env(key, params)
        return self._obs(obs, state), state

    def step_env(self, key, state, action, params):
        obs, state, r, d, info = self.env.step_env(key, state, action, params)
        return self._obs(obs, state), state, r, d, info

    def __getattr__(self, name):
        return getattr(self.env, name)


def novelty(bc: jax.Array, archive: jax.Array, archive_count: jax.Array, k: int) -> jax.Array:
    """Mean distance of each ``bc[i]`` ``[N, d]`` to its ``k`` nearest neighbours among the other
    population members and the first ``min(archive_count, A)`` archive rows ``[A, d]``.

    With fewer than ``k`` neighbours available, the mean runs over those there are.
    """
    n = bc.shape[0]
    d_pop = jnp.linalg.norm(bc[:, None, :] - bc[None, :, :], axis=-1)
    d_pop = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d_pop)
    d_arc = jnp.linalg.norm(bc[:, None, :] - archive[None, :, :], axis=-1)
    d_arc = jnp.where(jnp.arange(archive.shape[0])[None, :] < archive_count, d_arc, jnp.inf)
    d = jnp.concatenate([d_pop, d_arc], axis=1)
    kk = min(int(k), d.shape[1])
    nearest = -jax.lax.top_k(-d, kk)[0]
    ok = jnp.isfinite(nearest)
    return jnp.where(ok, nearest, 0.0).sum(1) / jnp.maximum(ok.sum(1), 1)


# ----------------------------------------------------------------------------- the GA


@struct.dataclass
class GAState:
    """The GA's state.  ``params`` ``[N, P]`` is the fast path; everything else is the compact part
    that checkpoints hold (:func:`compact`)."""

    params: jax.Array
    chains: jax.Array  # [N, G + 1] int32
    lengths: jax.Array  # [N] int32
    key: jax.Array
    generation: jax.Array
    elite_score: jax.Array
    archive: jax.Array  # [A, d]
    archive_count: jax.Array


def compact(state: GAState) -> dict:
    """What a checkpoint holds: the seed chains, RNG key, counters and archive (no parameters)."""
    return {k: getattr(state, k) for k in ("chains", "lengths", "key", "generation", "elite_score", "archive",
                                           "archive_count")}


class GA(NamedTuple):
    """A configured GA (pure functions; see :func:`make_ga`)."""

    config: GAConfig
    net: FlatMLP
    horizon: int
    bc_dim: int
    init: Callable[[], GAState]
    step: Callable[[GAState], tuple[GAState, dict]]
    segment: Callable[[GAState, int], tuple[GAState, dict]]
    evaluate: Callable[[jax.Array, jax.Array, int], tuple[jax.Array, jax.Array, jax.Array]]
    """``evaluate(thetas [M, P], keys [M, 2], episodes) -> (mean return [M], BC [M, d], steps [M])``."""
    decode: Callable[[jax.Array, jax.Array], jax.Array]
    """``decode(chain [G + 1], length) -> theta [P]``."""
    decode_all: Callable[[jax.Array, jax.Array], jax.Array]
    """``decode_all(chains [N, G + 1], lengths [N]) -> [N, P]`` (``lax.map`` of ``decode``)."""
    theta0: Callable[[jax.Array], jax.Array]
    mutate: Callable[[jax.Array, jax.Array], jax.Array]
    policy: Callable
    """``policy(theta, obs[N, obs_dim], key) -> (action, ())`` (obs without the BC columns)."""
    from_compact: Callable[[dict], GAState]


def make_ga(config: GAConfig, env, env_params, bc_fn: Callable | None = None, devices: int | str | None = None) -> GA:
    """Build the GA (or GA-NS) of ``config`` on a gymnax-API ``env``.

    ``bc_fn(final env state) -> [d]`` overrides ``config.bc`` (GA-NS's behaviour characterisation;
    also computed, unused, by the plain GA).  ``devices``: local devices the population's evaluation
    is split over (``None`` / ``"all"``: all; :func:`rlsuite.core.sharding.map_runs`; one process).
    """
    from rlsuite.core import sharding

    c = validate_config(config)
    mesh = sharding.make_mesh(sharding.check_devices(devices))
    if bc_fn is None:
        if c.bc not in BC_FUNCTIONS:
            raise ValueError(f"GAConfig.bc={c.bc!r} is unknown; choose one of {sorted(BC_FUNCTIONS)} or pass bc_fn")
        bc_fn = BC_FUNCTIONS[c.bc]
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    act_dim, head = _action_head(env.action_space(env_params))
    net = FlatMLP((obs_dim, *c.hidden, act_dim), c.activation)
    horizon = c.horizon or int(getattr(env_params, "max_steps_in_episode", 0) or 0)
    if horizon <= 0:
        raise ValueError("the env has no max_steps_in_episode; set GAConfig.horizon")
    _, s0 = env.reset_env(jax.random.PRNGKey(0), env_params)
    try:
        bc_dim = int(np.size(jax.eval_shape(bc_fn, s0)))
        wenv = BCObservation(env, bc_fn)
    except AttributeError:  # no such state fields (e.g. CartPole): plain GA, BC = zeros, no wrapper
        if c.novelty:
            raise ValueError(f"GAConfig.bc={c.bc!r} does not apply to this env's state; pass bc_fn") from None
        bc_dim, wenv = 1, env
    N, T, G, P = c.population, c.truncation, c.generations, net.num_params
    key_base = jax.random.PRNGKey(c.seed)
    k_init, k_mut, k_run = (jax.random.fold_in(key_base, i) for i in range(3))
    sigma = jnp.float32(c.sigma)

    def theta0(seed):
        return net.init(jax.random.fold_in(k_init, seed))

    def mutate(theta, seed):
        # the barrier keeps XLA from fusing the product into an FMA in some programs and not in
        # others, so decode (scan), the vmapped fast path and eager calls round identically
        eps = jax.lax.optimization_barrier(jax.random.normal(jax.random.fold_in(k_mut, seed), (P,), jnp.float32))
        return theta + jax.lax.optimization_barrier(sigma * eps)

    def decode(chain, length):
        def body(theta, xs):
            i, seed = xs
            return jnp.where(i < length, mutate(theta, seed), theta), None

        theta, _ = jax.lax.scan(body, theta0(chain[0]), (jnp.arange(1, chain.shape[0]), chain[1:]))
        return theta

    def policy(theta, obs, key):
        return head(net.apply(theta, obs.reshape(obs.shape[0], -1)[:, :obs_dim].astype(jnp.float32))), ()

    def one(theta, key, episodes):
        traj = rollout_episodes(wenv, env_params, policy, theta, key, episodes, horizon)
        ret = traj.reward.sum(0).mean()
        bc = traj.next_obs[-1, :, obs_dim:].mean(0) if wenv is not env else jnp.zeros((bc_dim,), jnp.float32)
        return jnp.where(jnp.isfinite(ret), ret, -jnp.inf), bc, traj.mask.sum().astype(jnp.int32)

    def evaluate(thetas, keys, episodes):
        f = lambda a: one(a[0], a[1], episodes)  # noqa: E731
        return sharding.map_runs(f, (thetas, keys), mesh, c.chunk)

    def init() -> GAState:
        seeds = jnp.arange(N, dtype=jnp.int32)
        chains = jnp.zeros((N, G + 1), jnp.int32).at[:, 0].set(seeds)
        return GAState(jax.lax.map(theta0, seeds), chains, jnp.ones((N,), jnp.int32), k_run, jnp.zeros((), jnp.int32),
                       jnp.asarray(-jnp.inf, jnp.float32), jnp.zeros((c.archive_size, bc_dim), jnp.float32),
                       jnp.zeros((), jnp.int32))

    def decode_all(chains, lengths):
        return jax.lax.map(lambda a: decode(*a), (chains, lengths))

    def from_compact(d) -> GAState:
        d = {k: jnp.asarray(np.asarray(v)) for k, v in d.items()}
        params = jax.jit(decode_all)(d["chains"], d["lengths"])
        return GAState(params=params, **d)

    C = min(c.elite_candidates, N - 1)

    def step(s: GAState):
        key, k_eval, k_val, k_par, k_arc = jax.random.split(s.key, 5)
        fit, bc, steps = evaluate(s.params, jax.random.split(k_eval, N), c.episodes)
        frames = steps.sum()
        # --- elite: top C offspring by one-episode fitness + the previous elite, re-evaluated
        if c.elite_episodes > 0 and C > 0:
            _, top = jax.lax.top_k(fit[: N - 1], C)
            cand = jnp.concatenate([top, jnp.array([N - 1])])
            val, _, vsteps = evaluate(s.params[cand], jax.random.split(k_val, C + 1), c.elite_episodes)
            best = jnp.argmax(val)
            elite, elite_score = cand[best], val[best]
            frames = frames + vsteps.sum()
        else:
            elite = jnp.argmax(fit)
            elite_score = fit[elite]
        # --- selection (fitness or novelty) and archive
        nov = novelty(bc, s.archive, s.archive_count, c.novelty_k)
        rank = nov if c.novelty else fit
        archive, count = s.archive, s.archive_count
        if c.archive_add > 0:
            if c.archive_mode == "novel":
                _, add = jax.lax.top_k(nov, c.archive_add)
            else:
                add = jax.random.choice(k_arc, N, (c.archive_add,), replace=False)
            rows = (count + jnp.arange(c.archive_add)) % c.archive_size
            archive = archive.at[rows].set(bc[add])
            count = count + c.archive_add
        new_seeds = (s.generation + 1) * N + jnp.arange(N - 1, dtype=jnp.int32)
        if T > 0:
            _, parents = jax.lax.top_k(rank, T)
            if not c.novelty:
                parents = jnp.where(jnp.any(parents == elite), parents, parents.at[T - 1].set(elite))
            pidx = parents[jax.random.randint(k_par, (N - 1,), 0, T)]
            # lax.map, not vmap: each child runs the unbatched mutate that decode replays (bit-identical)
            kids = jax.lax.map(lambda a: mutate(*a), (s.params[pidx], new_seeds))
            kid_chains = s.chains[pidx].at[jnp.arange(N - 1), s.lengths[pidx]].set(new_seeds)
            kid_len = s.lengths[pidx] + 1
        else:  # random search: fresh initialisations
            kids = jax.lax.map(theta0, new_seeds)
            kid_chains = jnp.zeros((N - 1, G + 1), jnp.int32).at[:, 0].set(new_seeds)
            kid_len = jnp.ones((N - 1,), jnp.int32)
        params = jnp.concatenate([kids, s.params[elite][None]])
        chains = jnp.concatenate([kid_chains, s.chains[elite][None]])
        lengths = jnp.concatenate([kid_len, s.lengths[elite][None]])
        ok = jnp.isfinite(fit)
        metrics = {
            "best_fitness": jnp.max(fit),
            "mean_fitness": jnp.where(ok, fit, 0.0).sum() / jnp.maximum(ok.sum(), 1),
            "elite_fitness": elite_score,
            "elite_one_episode": fit[elite],
            "max_novelty": jnp.max(nov),
            "frames": frames,
            "fitness": fit,
            "bc": bc,
        }
        new = GAState(params, chains, lengths, key, s.generation + 1, elite_score.astype(jnp.float32), archive,
                      count)
        return new, metrics

    def segment(s: GAState, n: int):
        n = V.require_positive_int("generations per segment", n)
        return jax.lax.scan(lambda st, _: step(st), s, None, length=n)

    return GA(c, net, horizon, bc_dim, init, step, segment, evaluate, decode, decode_all, theta0, mutate, policy, from_compact)


def es_baseline(ga: GA, es_config):
    """An evolution strategy of :mod:`rlsuite.meta.es` on the GA's policy and evaluation, with frames.

    Returns ``(es, step)``: ``es`` from :func:`rlsuite.meta.es.make_es` (flat ``[P]`` parameters,
    fitness = one episode of ``ga.evaluate``) and ``step(ESState) -> (ESState, {"fitness" [N],
    "frames"})``, one generation as :attr:`ES.step` does it (``ask``, evaluate with
    ``es.member_keys``, ``tell`` on the negated fitness) except that the evaluation also returns the
    env steps it took (the meta engine's fitness is a scalar), so equal-frame comparisons count
    real frames.  ``es.mean(state)`` is the search centre.  Needs ``es_config.seeds == 1``.
    """
    from rlsuite.meta.es import make_es

    if es_config.seeds != 1:
        raise ValueError(f"es_baseline evaluates one episode per member; ESConfig.seeds={es_config.seeds} must be 1")

    def fitness(theta, key):
        return ga.evaluate(theta[None], key[None], 1)[0][0]

    es = make_es(es_config, fitness, jnp.zeros(ga.net.num_params, jnp.float32))

    def step(state):
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        pop, s = es.strategy.ask(k_ask, state.strategy, es.strategy_params)
        fit, _, steps = ga.evaluate(pop, es.member_keys(k_eval)[:, 0, 0], 1)
        s, _ = es.strategy.tell(k_tell, pop, -fit, s, es.strategy_params)  # -inf fitness -> +inf loss
        s = jax.tree.map(lambda x, y: jnp.asarray(x, jnp.asarray(y).dtype), s, state.strategy)  # no weak types
        return state.replace(strategy=s, key=key, generation=state.generation + 1), {"fitness": fit,
                                                                                      "frames": steps.sum()}

    return es, step


def elite_params(state: GAState) -> jax.Array:
    """The elite (slot ``N - 1``) of a state after at least one generation."""
    return state.params[-1]


# ----------------------------------------------------------------------------- host driver


def _write_elite(run_dir: str, ga: GA, state: GAState, generation: int, info: Mapping[str, Any]) -> str:
    from flax import serialization

    path = os.path.join(run_dir, "elite.msgpack")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(serialization.to_bytes(ga.net.to_pytree(elite_params(state))))
    os.replace(tmp, path)
    n = int(state.lengths[-1])
    with open(os.path.join(run_dir, "elite.json"), "w") as f:
        json.dump({"generation": generation, "env_id": info.get("env_id"), "env_kwargs": info.get("env_kwargs", {}),
                   "sizes": list(ga.net.sizes), "activation": ga.net.activation, "seed": ga.config.seed,
                   "sigma": ga.config.sigma, "seed_chain": [int(x) for x in np.asarray(state.chains[-1, :n])],
                   "validated_fitness": float(state.elite_score)}, f, indent=1)
    return path


def run_ga(
    ga: GA,
    run_dir: str | None = None,
    *,
    resume: bool = False,
    max_segments: int | None = None,
    progress: bool = True,
    run_info: Mapping[str, Any] | None = None,
    title: str = "Deep GA",
    keep_checkpoints: int | None = 2,
) -> dict[str, Any] | None:
    """Run (or continue with ``resume=True``) ``ga``; returns the summary (``None`` if stopped early
    by ``max_segments``).  The run directory layout is described in the module docstring."""
    from rlsuite.core.logging import MetricsWriter
    from rlsuite.train import schedule

    c = ga.config
    if max_segments is not None:
        V.require_positive_int("max_segments", max_segments)
    bounds = schedule(c.generations, c.segments)
    run_info = dict(run_info or {})
    if run_dir is None:
        run_dir = os.path.join("runs", f"ga-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    writer = MetricsWriter(os.path.join(run_dir, "metrics.jsonl"))
    if resume:
        target = jax.eval_shape(lambda: compact(ga.init()))
        d, gen = checkpoint.restore(run_dir, target, fallback=True)
        if gen not in bounds:
            raise ValueError(f"checkpoint generation {gen} of {run_dir!r} is not a segment boundary of {bounds}")
        state = ga.from_compact(d)
        done = bounds.index(gen) + 1
        writer.truncate_after("generation", gen)
        frames = sum(int(r["frames"]) for r in writer.read())
    else:
        checkpoint.start_run(run_dir, {**run_info, "ga": dataclasses.asdict(c)}, writer.path)
        state, gen, done, frames = jax.jit(ga.init)(), 0, 0, 0
    seg_fn = jit_per_length(ga.segment)
    last = len(bounds) if max_segments is None else min(len(bounds), done + int(max_segments))
    t0 = time.perf_counter()
    final_fit = final_bc = None
    for i in range(done, last):
        n = bounds[i] - gen
        t_seg = time.perf_counter()
        state, m = seg_fn(n)(state)
        m = jax.tree.map(np.asarray, m)
        seg_s = time.perf_counter() - t_seg
        seg_frames = int(m["frames"].sum())
        for j in range(n):
            frames += int(m["frames"][j])
            writer.write({"generation": gen + j + 1, "frames": int(m["frames"][j]), "total_frames": frames,
                          **{k: float(v[j]) for k, v in m.items() if k not in ("fitness", "bc", "frames")},
                          "wall_s": time.perf_counter() - t0})
        final_fit, final_bc = m["fitness"][-1], m["bc"][-1]
        gen = bounds[i]
        checkpoint.save(run_dir, gen, compact(state), keep_checkpoints)
        _write_elite(run_dir, ga, state, gen, run_info)
        if progress:
            print(f"[{title}] gen {gen}/{c.generations}  best {m['best_fitness'][-1]:.4g}  "
                  f"elite {m['elite_fitness'][-1]:.4g}  mean {m['mean_fitness'][-1]:.4g}  frames {frames:,}  "
                  f"{seg_frames / max(seg_s, 1e-9):,.0f} frames/s", file=sys.stderr, flush=True)
    if last < len(bounds):
        return None
    records = writer.read()
    test = test_elite(ga, state, c.test_episodes)
    summary = {
        "title": title, "population": c.population, "truncation": c.truncation, "sigma": c.sigma,
        "generations": c.generations, "novelty": c.novelty, "num_params": ga.net.num_params,
        "final_best_fitness": records[-1]["best_fitness"], "final_elite_fitness": records[-1]["elite_fitness"],
        "elite_test_return": test["mean_return"], "elite_test_episodes": c.test_episodes,
        "total_frames": records[-1]["total_frames"], "wall_s_this_invocation": time.perf_counter() - t0,
        "chain_bytes": int(np.asarray(state.chains).nbytes + np.asarray(state.lengths).nbytes),
        "params_bytes": int(np.asarray(state.params).nbytes), "run_dir": os.path.abspath(run_dir),
    }
    from rlsuite.core.results import device_description

    summary["device"] = device_description()
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if final_bc is not None:
        np.savez(os.path.join(run_dir, "final_population.npz"), fitness=final_fit, bc=final_bc)
    _write_report(run_dir, summary, records, c)
    return summary


def test_elite(ga: GA, state: GAState, episodes: int, seed: int = 12345) -> dict[str, Any]:
    """The run's reported score: the elite on ``episodes`` fresh test episodes."""
    ret, bc, steps = jax.jit(ga.evaluate, static_argnums=2)(
        elite_params(state)[None], jax.random.PRNGKey(seed)[None], episodes)
    return {"mean_return": float(ret[0]), "bc": np.asarray(bc[0]), "steps": int(steps[0])}


def _write_report(run_dir, summary, records, c: GAConfig) -> None:
    with open(os.path.join(run_dir, "results.md"), "w") as f:
        f.write(f"# {summary['title']}\n\n")
        f.write(f"- {'GA-NS' if c.novelty else 'GA'}: N {c.population}, T {c.truncation}, sigma {c.sigma:g}, "
                f"{c.generations} generations, elite: top {c.elite_candidates} x {c.elite_episodes} episodes\n")
        f.write(f"- device: {summary['device']}\n")
        f.write(f"- final generation: best {summary['final_best_fitness']:.4g}, "
                f"elite (validated) {summary['final_elite_fitness']:.4g}\n")
        f.write(f"- elite test return ({summary['elite_test_episodes']} episodes): {summary['elite_test_return']:.4g}\n")
        f.write(f"- frames: {summary['total_frames']:,}; policy parameters {summary['num_params']:,}; "
                f"seed chains {summary['chain_bytes']:,} bytes vs population params {summary['params_bytes']:,} bytes\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fr = np.array([r["total_frames"] for r in records], float)
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, lab in (("best_fitness", "best (1 episode)"), ("elite_fitness", "elite (validated)"),
                   ("mean_fitness", "population mean")):
        ax.plot(fr, [r[k] for r in records], label=lab)
    ax.set_xlabel("frames")
    ax.set_ylabel("return")
    ax.set_title(summary["title"], fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "fitness_curve.png"), dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- convenience


def build(env_id: str, config: GAConfig, env_kwargs: Mapping[str, Any] | None = None, devices=None) -> GA:
    from rlsuite.envs import make

    env, params = make(env_id, **dict(env_kwargs or {}))
    if params is None:
        raise ValueError(f"{env_id} is a host (gymnasium) env; the GA evaluates JAX envs only")
    return make_ga(config, env, params, devices=devices)


def run(env_id: str, config: GAConfig, run_dir: str | None = None, env_kwargs=None, devices=None,
        **kw) -> dict[str, Any] | None:
    """Build and run a GA (``config.novelty``: GA-NS) on a registered env (population evaluation
    sharded over ``devices`` local devices)."""
    ga = build(env_id, config, env_kwargs, devices)
    info = {"kind": "ga", "env_id": env_id, "env_kwargs": dict(env_kwargs or {})}
    title = f"{'GA-NS' if config.novelty else ('RS' if config.truncation == 0 else 'GA')} on {env_id}"
    return run_ga(ga, run_dir, run_info=info, title=title, **kw)


def resume(run_dir: str, **kw) -> dict[str, Any] | None:
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"cannot resume: no config.json in GA run directory {run_dir!r}")
    with open(path) as f:
        info = json.load(f)
    if info.get("kind") != "ga":
        raise ValueError(f"{path!r} is not a GA run (kind={info.get('kind')!r})")
    config = config_from_json(info.pop("ga"))
    info.pop("created", None)
    ga = build(info["env_id"], config, info.get("env_kwargs"))
    title = f"{'GA-NS' if config.novelty else ('RS' if config.truncation == 0 else 'GA')} on {info['env_id']}"
    return run_ga(ga, run_dir, resume=True, run_info=info, title=title, **kw)


def load_elite(run_dir: str):
    """``(policy, theta, env_id, env_kwargs)`` of a run's exported elite: ``policy(theta, obs, key)``."""
    from flax import serialization

    with open(os.path.join(run_dir, "elite.json")) as f:
        meta = json.load(f)
    net = FlatMLP(tuple(meta["sizes"]), meta["activation"])
    with open(os.path.join(run_dir, "elite.msgpack"), "rb") as f:
        tree = serialization.msgpack_restore(f.read())
    theta = jnp.concatenate([jnp.concatenate([jnp.ravel(tree[f"layer_{i}"]["kernel"]), tree[f"layer_{i}"]["bias"]])
                             for i in range(len(net.sizes) - 1)])
    return net, theta, meta


def evaluate_elite(run_dir: str, episodes: int = 200, seed: int = 12345) -> dict[str, Any]:
    """Evaluate the exported elite of a GA run dir on ``episodes`` fresh episodes (engine episode mode)."""
    net, theta, meta = load_elite(run_dir)
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = config_from_json(json.load(f)["ga"])
    ga = build(meta["env_id"], cfg, meta.get("env_kwargs"))
    state_like = type("S", (), {"params": theta[None]})
    return test_elite(ga, state_like, episodes, seed)
