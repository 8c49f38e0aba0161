"""GROOVE's level buffer (PLR-style curation) and level scores, as pure JAX functions.

Jackson et al., "Discovering General Reinforcement Learning Algorithms with Adversarial
Environment Design" (GROOVE, NeurIPS 2023); prioritisation and staleness from Jiang et al.,
"Prioritized Level Replay" (PLR, ICML 2021).  Spec: ``../shared/papers/meta_discovery.md`` §2, §8.
Reference: ``EmptyJackson/groove`` ``environments/level_sampler.py``.  The GROOVE meta-training
loop (LPG agents, the A2C antagonist) lives with the LPG code; this module only curates levels.

The buffer (:class:`LevelBuffer`) is a fixed-capacity pytree: ``levels`` (any pytree with leading
axis ``C``, e.g. a stacked :class:`rlsuite.envs.gridworld.GridLevel`, or ``(level, lifetime)``),
``score [C]``, ``last_sampled [C]`` (the buffer clock when last handed out), and flags
``filled`` (slot holds a level), ``new`` (level never evaluated) and ``active`` (an agent is
training on it now).  A level is *replayable* when filled, evaluated (not new) and inactive.

One GROOVE curation step for a batch of ``B`` agents (:func:`curate`, the reference's
``LevelSampler.sample``):

1. :func:`reset_lowest_scoring`: write ``B`` fresh levels (from the generator, e.g.
   ``gridworld.sample_levels``) over the empty / new / lowest-scoring replayable slots (never
   active ones), so at least ``B`` new, inactive levels exist.
2. :func:`update_scores`: the terminated agents' levels get their score (e.g. algorithmic regret)
   and become evaluated and inactive.
3. :func:`sample`: per agent, Bernoulli(``p_replay``): replay a replayable level by priority
   (only if at least ``B`` are replayable), otherwise take a new one; distinct levels in one call;
   the handed-out levels become active and are time-stamped.

Prioritisation over replayable levels, ``P = (1 - rho) P_S + rho P_C`` (PLR):

- ``score_transform="rank"`` (sheet's rlsuite default): ``P_S(i) ∝ (1 / rank_i)^(1 / T)``,
  rank 1 = highest score; sampled stochastically without replacement.
- ``"topk"``: the reference's "rank": the ``B`` highest scores, deterministically.
- ``"proportional"``: the reference's "proportional": ``P_S ∝ exp(score / T)`` (a softmax, so
  negative scores such as negative regret are fine).
- staleness ``P_C(i) ∝ clock - last_sampled_i`` with weight ``rho = staleness_coef`` (PLR;
  the reference has none, so the default is 0).

A PLR-style insertion of an already evaluated level is :func:`insert` (an empty slot, else
replace the lowest-scoring replayable level only if the new score is higher); :func:`evict`
empties slots.

Deviations from the reference, with reasons:

- The flag bug (§8.4): the reference's ``_reset_lowest_scoring`` writes
  ``new = active.at[reset_ids].set(True)``, copying every other level's *active* flag into its
  *new* flag.  Here only the reset slots' flags change (tested).
- ``rank`` samples stochastically by PLR's rank prioritisation (sheet's default); the
  reference's deterministic top-k is ``"topk"``.
- Staleness mixing is available (``staleness_coef``), off by default as in the reference.
- Empty slots and :func:`insert` / :func:`evict` (PLR's buffer operations) exist besides the
  reference's always-full buffer of new levels; the reference flow never needs them.
- The reference replays only when at least ``B`` levels are replayable; we keep that, and also
  require ``capacity >= 2 B`` up front so a reset can never overwrite an active level (the
  reference silently could).

Level scores: :func:`algorithmic_regret` (antagonist return minus learned-rule agent return, the
GROOVE default), :func:`positive_value_loss` (PLR: mean of the positive parts of the GAE
advantages) and :func:`random_scores`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlsuite.core.validate import (
    require_choice,
    require_in_range,
    require_positive,
    require_positive_int,
)

SCORE_TRANSFORMS = ("rank", "topk", "proportional")
SCORE_FUNCTIONS = ("alg_regret", "positive_value_loss", "random")


@dataclasses.dataclass(frozen=True)
class BufferConfig:
    """Level-buffer settings (GROOVE defaults, sheet §2)."""

    capacity: int = 4000
    """number of level slots (sheet §7: 64 for the CPU smoke scale)"""
    p_replay: float = 0.5
    """probability that a terminated agent replays a buffered level instead of taking a new one"""
    score_transform: str = "rank"
    """'rank' (PLR, stochastic), 'topk' (the reference's deterministic rank) or 'proportional' (softmax)"""
    temperature: float = 1.0
    """prioritisation temperature T"""
    staleness_coef: float = 0.0
    """rho: weight of the staleness distribution (PLR); 0 in the reference"""

    def __post_init__(self):
        require_positive_int("BufferConfig.capacity", self.capacity)
        require_in_range("BufferConfig.p_replay", self.p_replay, 0.0, 1.0)
        require_choice("BufferConfig.score_transform", self.score_transform, SCORE_TRANSFORMS)
        require_positive("BufferConfig.temperature", self.temperature)
        require_in_range("BufferConfig.staleness_coef", self.staleness_coef, 0.0, 1.0)


@struct.dataclass
class LevelBuffer:
    """Fixed-capacity level buffer (see the module docstring); every leaf has leading axis ``C``
    except ``clock`` (int32 ``[]``, number of :func:`sample` calls so far)."""

    levels: Any
    score: jax.Array
    last_sampled: jax.Array
    filled: jax.Array
    new: jax.Array
    active: jax.Array
    clock: jax.Array

    @property
    def capacity(self) -> int:
        return self.score.shape[0]

    @property
    def replayable(self) -> jax.Array:
        """bool ``[C]``: filled, evaluated and inactive."""
        return self.filled & ~self.new & ~self.active


def _capacity_of(levels) -> int:
    leaves = jax.tree.leaves(levels)
    if not leaves:
        raise ValueError("levels must be a pytree with at least one array leaf")
    n = leaves[0].shape[0] if leaves[0].ndim else 0
    if n == 0 or any(x.ndim == 0 or x.shape[0] != n for x in leaves):
        raise ValueError(f"levels must share a leading (slot) axis; got leaf shapes {[x.shape for x in leaves]}")
    return n


def init_buffer(levels) -> LevelBuffer:
    """A full buffer of fresh, unevaluated levels (the reference's start): ``levels`` has axis ``C``."""
    c = _capacity_of(levels)
    return LevelBuffer(levels=levels, score=jnp.zeros((c,), jnp.float32), last_sampled=jnp.zeros((c,), jnp.int32),
                       filled=jnp.ones((c,), bool), new=jnp.ones((c,), bool), active=jnp.zeros((c,), bool),
                       clock=jnp.asarray(0, jnp.int32))


def empty_buffer(template_level, capacity: int) -> LevelBuffer:
    """An empty buffer of ``capacity`` slots shaped like one unbatched ``template_level``."""
    capacity = require_positive_int("capacity", capacity)
    levels = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (capacity,) + jnp.shape(x)), template_level)
    return init_buffer(levels).replace(filled=jnp.zeros((capacity,), bool), new=jnp.zeros((capacity,), bool))


def get_levels(buffer: LevelBuffer, ids: jax.Array):
    """The levels in slots ``ids`` (leading axis ``len(ids)``)."""
    return jax.tree.map(lambda x: x[ids], buffer.levels)


def _write(buffer: LevelBuffer, ids: jax.Array, levels, mask: jax.Array | None = None) -> LevelBuffer:
    """Write ``levels`` (axis ``len(ids)``) into slots ``ids`` where ``mask``."""
    if mask is None:
        return buffer.replace(levels=jax.tree.map(lambda b, x: b.at[ids].set(x), buffer.levels, levels))

    def put(b, x):
        m = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        return b.at[ids].set(jnp.where(m, x, b[ids]))

    return buffer.replace(levels=jax.tree.map(put, buffer.levels, levels))


def _check_batch(buffer: LevelBuffer, batch: int) -> None:
    if buffer.capacity < 2 * batch:
        raise ValueError(f"level buffer capacity {buffer.capacity} must be at least twice the batch of "
                         f"{batch} agents (active levels plus as many new ones)")


def reset_lowest_scoring(buffer: LevelBuffer, fresh_levels) -> LevelBuffer:
    """Write the ``B`` fresh levels over the empty, then new, then lowest-scoring replayable
    slots (never active ones); they become new, inactive, score 0.  Other slots' flags are
    untouched (the reference's flag bug, §8.4, is not reproduced)."""
    b = _capacity_of(fresh_levels)
    _check_batch(buffer, b)
    key = jnp.where(buffer.filled & ~buffer.new, buffer.score, -jnp.inf)
    key = jnp.where(buffer.active, jnp.inf, key)
    ids = jnp.argsort(key)[:b]
    buffer = _write(buffer, ids, fresh_levels)
    return buffer.replace(
        score=buffer.score.at[ids].set(0.0),
        filled=buffer.filled.at[ids].set(True),
        new=buffer.new.at[ids].set(True),
        active=buffer.active.at[ids].set(False),
    )


def update_scores(buffer: LevelBuffer, ids: jax.Array, scores: jax.Array, mask: jax.Array | None = None) -> LevelBuffer:
    """Levels ``ids`` (of the agents where ``mask``, e.g. terminated lifetimes) get ``scores`` and
    become evaluated and inactive; the others are untouched."""
    mask = jnp.ones(ids.shape, bool) if mask is None else mask
    return buffer.replace(
        score=buffer.score.at[ids].set(jnp.where(mask, scores.astype(jnp.float32), buffer.score[ids])),
        new=buffer.new.at[ids].set(jnp.where(mask, False, buffer.new[ids])),
        active=buffer.active.at[ids].set(jnp.where(mask, False, buffer.active[ids])),
    )


def replay_distribution(buffer: LevelBuffer, config: BufferConfig) -> jax.Array:
    """``P [C]`` over replayable levels: ``(1 - rho) P_S + rho P_C`` (zero elsewhere; all zero
    when nothing is replayable).  For ``topk`` the score part is the rank distribution with T."""
    ok = buffer.replayable
    t = config.temperature
    if config.score_transform == "proportional":
        z = jnp.where(ok, buffer.score / t, -jnp.inf)
        w = jnp.where(ok, jnp.exp(z - jnp.max(jnp.where(ok, z, jnp.finfo(jnp.float32).min))), 0.0)
    else:
        order = jnp.argsort(jnp.where(ok, -buffer.score, jnp.inf))  # best first, stable
        rank = jnp.empty_like(order).at[order].set(jnp.arange(1, order.shape[0] + 1))
        w = jnp.where(ok, (1.0 / rank) ** (1.0 / t), 0.0)
    p_s = w / jnp.maximum(w.sum(), 1e-30)
    stale = jnp.where(ok, (buffer.clock - buffer.last_sampled).astype(jnp.float32), 0.0)
    p_c = jnp.where(stale.sum() > 0, stale / jnp.maximum(stale.sum(), 1e-30), ok / jnp.maximum(ok.sum(), 1))
    rho = config.staleness_coef
    return (1.0 - rho) * p_s + rho * p_c if rho > 0 else p_s


def _gumbel_top_k(key, logp: jax.Array, k: int) -> jax.Array:
    """``k`` distinct indices sampled without replacement with probabilities ``exp(logp)`` (in draw order)."""
    return jax.lax.top_k(logp + jax.random.gumbel(key, logp.shape), k)[1]


def sample(buffer: LevelBuffer, key: jax.Array, config: BufferConfig, mask: jax.Array | None = None,
           batch_size: int | None = None) -> tuple[LevelBuffer, jax.Array, jax.Array]:
    """Hand out levels to ``B`` agents: ``(buffer, ids [B], replayed [B])``.

    ``mask [B]`` marks the agents that need a level (default all; give ``batch_size`` instead of a
    mask for all).  Per agent, Bernoulli(``p_replay``) picks replay (by :func:`replay_distribution`,
    or top-k) when at least ``B`` levels are replayable, otherwise a uniformly chosen new inactive
    level.  The ``B`` proposals are distinct; only the masked ones are committed (made active and
    time-stamped); ``ids`` / ``replayed`` where ``~mask`` are meaningless.  Call
    :func:`reset_lowest_scoring` first so enough new levels exist.
    """
    if mask is None:
        mask = jnp.ones((require_positive_int("batch_size", batch_size),), bool)
    b = mask.shape[0]
    _check_batch(buffer, b)
    k_replay, k_new, k_coin = jax.random.split(key, 3)
    p = replay_distribution(buffer, config)
    if config.score_transform == "topk":
        replay_ids = jax.lax.top_k(jnp.where(buffer.replayable, buffer.score, -jnp.inf), b)[1]
    else:
        replay_ids = _gumbel_top_k(k_replay, jnp.where(p > 0, jnp.log(jnp.maximum(p, 1e-38)), -jnp.inf), b)
    fresh = buffer.filled & buffer.new & ~buffer.active
    new_ids = _gumbel_top_k(k_new, jnp.where(fresh, 0.0, -jnp.inf), b)
    can_replay = buffer.replayable.sum() >= b
    replayed = jax.random.bernoulli(k_coin, config.p_replay, (b,)) & can_replay
    ids = jnp.where(replayed, replay_ids, new_ids)
    buffer = buffer.replace(
        active=buffer.active.at[ids].set(buffer.active[ids] | mask),
        last_sampled=buffer.last_sampled.at[ids].set(jnp.where(mask, buffer.clock, buffer.last_sampled[ids])),
        clock=buffer.clock + 1,
    )
    return buffer, ids, replayed


def curate(buffer: LevelBuffer, key: jax.Array, config: BufferConfig, fresh_levels, old_ids: jax.Array,
           scores: jax.Array, terminated: jax.Array) -> tuple[LevelBuffer, jax.Array, jax.Array]:
    """One GROOVE step for ``B`` agents on levels ``old_ids`` whose lifetimes ``terminated`` with
    ``scores``: reset the lowest-scoring slots to ``fresh_levels`` (``B`` of them), record the
    scores, and hand out levels.  Returns ``(buffer, ids [B], replayed [B])``: ``ids`` equals
    ``old_ids`` where not terminated; ``replayed`` is False there."""
    buffer = reset_lowest_scoring(buffer, fresh_levels)
    buffer = update_scores(buffer, old_ids, scores, terminated)
    buffer, ids, replayed = sample(buffer, key, config, terminated)
    return buffer, jnp.where(terminated, ids, old_ids), replayed & terminated


def insert(buffer: LevelBuffer, level, score: jax.Array) -> tuple[LevelBuffer, jax.Array]:
    """PLR insertion of one evaluated ``level`` (unbatched) with ``score``: into the first empty
    slot, else over the lowest-scoring replayable level if ``score`` is higher, else dropped.
    Returns ``(buffer, slot)`` with ``slot = -1`` when dropped."""
    empty = ~buffer.filled
    low_key = jnp.where(buffer.replayable, buffer.score, jnp.inf)
    lowest = jnp.argmin(low_key)
    slot = jnp.where(empty.any(), jnp.argmax(empty), jnp.where(score > low_key[lowest], lowest, -1))
    ok = slot >= 0
    i = jnp.maximum(slot, 0)
    one = jax.tree.map(lambda x: jnp.asarray(x)[None], level)
    buffer = _write(buffer, i[None], one, ok[None])
    buffer = buffer.replace(
        score=buffer.score.at[i].set(jnp.where(ok, score, buffer.score[i])),
        filled=buffer.filled.at[i].set(buffer.filled[i] | ok),
        new=buffer.new.at[i].set(jnp.where(ok, False, buffer.new[i])),
        active=buffer.active.at[i].set(jnp.where(ok, False, buffer.active[i])),
        last_sampled=buffer.last_sampled.at[i].set(jnp.where(ok, buffer.clock, buffer.last_sampled[i])),
    )
    return buffer, slot


def evict(buffer: LevelBuffer, ids: jax.Array) -> LevelBuffer:
    """Empty slots ``ids`` (their flags cleared, score 0); other slots are untouched."""
    return buffer.replace(
        score=buffer.score.at[ids].set(0.0),
        filled=buffer.filled.at[ids].set(False),
        new=buffer.new.at[ids].set(False),
        active=buffer.active.at[ids].set(False),
    )


# ----------------------------------------------------------------------------- level scores


def algorithmic_regret(antagonist_return: jax.Array, agent_return: jax.Array) -> jax.Array:
    """GROOVE's AR(level) = V(antagonist, e.g. A2C trained on the level for the same number of
    updates) - V(learned-rule agent): mean evaluation returns, any matching shapes."""
    return jnp.asarray(antagonist_return, jnp.float32) - jnp.asarray(agent_return, jnp.float32)


def positive_value_loss(advantages: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """PLR's positive value loss: the mean over steps of ``max(A_t, 0)`` for GAE advantages
    ``[T, ...]`` of one level (``mask``: 1 on valid steps).  vmap over levels for a batch."""
    pos = jnp.maximum(jnp.asarray(advantages, jnp.float32), 0.0)
    if mask is None:
        return pos.mean()
    mask = jnp.asarray(mask, jnp.float32)
    return (pos * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def random_scores(key: jax.Array, num: int) -> jax.Array:
    """Uniform [0, 1) scores for ``num`` levels (the 'random' baseline: replay without priority)."""
    return jax.random.uniform(key, (require_positive_int("num", num),))
