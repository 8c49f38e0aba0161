"""Parameterised tabular grid worlds of LPG (Oh et al., 2020) and GROOVE (Jackson et al., 2023).

Spec: ``../shared/papers/meta_discovery.md`` §1 (training levels), §2 (level distribution,
observation), §7 (scale).  Reference: ``EmptyJackson/groove`` ``environments/gridworld``.

**A level is the env-params pytree** (:class:`GridLevel`, fixed-size arrays padded to a maximum
grid side ``S`` and a maximum object count ``K``), so thousands of levels are one ``jax.vmap``
over params; :func:`stack_levels` pads a list of levels to common ``(S, K)`` and stacks them.

Level fields (``S`` = padded side, ``K`` = padded object count):

- ``size``: int32 ``[]``, the level's side (``<= S``); cells with row or column ``>= size`` are walls.
- ``walls``: bool ``[S, S]``, ``True`` where the agent cannot go (includes the padding).
- ``start``: int32 ``[2]``, (row, col) of the agent at reset.
- ``obj_pos``: int32 ``[K, 2]``, (row, col) of each object (fixed: objects respawn in place,
  unless ``random_respawn``).
- ``obj_reward``, ``obj_p_terminate``, ``obj_p_respawn``: float32 ``[K]``, per object
  ``[reward, p_terminate, p_respawn]`` as in the sheet's tables.
- ``obj_mask``: bool ``[K]``, which object slots are used.
- ``random_respawn``: bool ``[]``, objects reset / respawn on random free cells (the
  ``rand_*`` LPG levels); ``False`` for every tabular level.
- ``max_steps_in_episode``: int32 ``[]``, the time limit (truncation).

Dynamics (one step): the agent moves (actions 0 up, 1 down, 2 left, 3 right, 4 stay; a move
into a wall or off the level is cancelled); every present object on the agent's new cell is
collected (its reward is paid, it disappears, and the episode terminates with probability
``p_terminate``); every absent, used object that was not just collected respawns with
probability ``p_respawn``.  Episodes truncate at ``max_steps_in_episode``.

Observation (static option ``obs_mode`` of :class:`GridWorld`):

- ``"tabular"`` (default, the sheet's §2 and the groove code): one-hot over
  ``position x 2^K`` object-present patterns (index ``row * S + col + S^2 * sum_i present_i 2^i``)
  plus ``time * 0.001``: ``S^2 * 2^K + 1`` floats.  A bias-free linear agent on it is tabular.
- ``"features"`` (for levels with ``random_respawn``, where positions vary): one-hot position
  ``[S^2]``, then per object slot a one-hot of its cell if present ``[K * S^2]``, plus
  ``time * 0.001``.

Named levels (``NAMED_LEVELS``; ``make("grid:<name>")``): the five LPG tabular levels ``dense``,
``sparse``, ``long``, ``longer``, ``long_dense`` and the five LPG random levels ``rand_dense``,
``rand_long``, ``rand_small``, ``rand_sparse``, ``rand_very_dense`` (``random_respawn`` and
``"features"`` observations).  Held-out maze-like levels (``held_out_levels()``, ids
``grid:maze_<name>``).  The random level distributions (``DISTRIBUTIONS``: ``all``, ``debug``,
...) are sampled by :func:`sample_level`.

Many levels at once: :func:`stack_levels` / :func:`sample_levels` give a batch (leading axis
``L``); :func:`rollout_levels` and :func:`evaluate_levels` vmap the engine over it;
:func:`bare_rollout_steps_per_second` is the random-policy throughput baseline for meta-training.
:meth:`GridWorld.tabular_index` gives the tabular observation's hot index (for table lookups).

Choices where the sheet is silent or unsure, and deviations from the groove code:

- Start and object cells of the named levels: the sheet gives none and groove draws them at
  random every time a named level is sampled (only its ``default_params`` fix ``dense``).  Here a
  named level is one fixed pytree: ``dense`` uses groove's default layout, the others are placed
  by hand (the ASCII maps in ``_SPECS``).  Random placements: :func:`sample_level`.
- ``longer`` has the paper's 5 negative objects (groove: 3); the walls of ``longer`` (a wall down
  the middle with two gaps) and ``long_dense`` (four rooms) follow the groove code (sheet silent).
- Objects are per slot ``(reward, p_terminate, p_respawn)`` instead of groove's object types
  plus type ids (the same levels, one fewer indirection).
- Collecting draws termination with probability ``sum(p_terminate of collected objects)`` and a
  collected object cannot respawn on the same step (as groove).  Respawn draws use one key per
  object slot, so padding a level does not change its random dynamics (tested).
- :func:`sample_level` puts the start and objects on distinct cells of the level first and then
  the walls among the other cells of the padded grid; groove draws the walls first and the
  positions among non-wall cells (the same up to conditioning, and it can never run out of cells).
  Walls may cut a level into parts (as in groove).
- ``rand_*`` levels: objects re-drawn on free cells at every reset and respawn, the start fixed;
  observation ``"features"`` with one position grid per object slot (groove: per object type).
- Held-out levels: our own five hand-drawn mazes with fixed object parameters (groove's
  ``custom_mazes`` re-sample the object parameters per draw, so they are not fixed levels).
- Not here: the 5 delayed chain MDPs of the original LPG training set (not grid worlds), groove's
  explicit-collect action (a TODO there) and its value-iteration ``optimal_return``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time as _time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.core.rollout import init_rollout, rollout, rollout_episodes
from rlsuite.core.validate import require_choice, require_positive_int
from rlsuite.envs.registry import register

NUM_ACTIONS = 5
ACTIONS = ("up", "down", "left", "right", "stay")
OBS_MODES = ("tabular", "features")
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.int32)
TIME_SCALE = 0.001
"""observation's time feature: ``time * TIME_SCALE`` (groove)"""


@struct.dataclass
class GridLevel:
    """One level = the env params (see the module docstring for shapes)."""

    size: jax.Array
    walls: jax.Array
    start: jax.Array
    obj_pos: jax.Array
    obj_reward: jax.Array
    obj_p_terminate: jax.Array
    obj_p_respawn: jax.Array
    obj_mask: jax.Array
    random_respawn: jax.Array
    max_steps_in_episode: jax.Array

    @property
    def max_size(self) -> int:
        """The padded side ``S``."""
        return self.walls.shape[-1]

    @property
    def max_objects(self) -> int:
        """The padded object count ``K``."""
        return self.obj_mask.shape[-1]


@struct.dataclass
class GridState:
    """pos int32 [2]; obj_pos int32 [K, 2]; present bool [K]; terminated bool []; time int32 []."""

    pos: jax.Array
    obj_pos: jax.Array
    present: jax.Array
    terminated: jax.Array
    time: jax.Array


# ----------------------------------------------------------------------------- level distributions


@dataclasses.dataclass(frozen=True)
class LevelDistribution:
    """A random level distribution (the groove ``all`` / ``debug`` modes, sheet §2 / §7).

    Sampled levels have padded side ``max_size`` and ``max_objects`` slots.
    """

    min_size: int = 4
    """smallest grid side (inclusive)"""
    max_size: int = 10
    """largest grid side (inclusive); also the padded side S of sampled levels"""
    min_objects: int = 1
    """fewest objects (inclusive)"""
    max_objects: int = 5
    """most objects (inclusive); also the padded object count K"""
    min_episode_steps: int = 20
    """episode length: log-uniform integer in [min_episode_steps, max_episode_steps]"""
    max_episode_steps: int = 750
    """see min_episode_steps"""
    num_walls: int = 15
    """random wall cells among the max_size x max_size cells (outside the level they do nothing)"""
    p_terminate: tuple[float, float] = (0.01, 1.0)
    """log-uniform range of each object's termination probability"""
    p_respawn: tuple[float, float] = (1e-3, 0.1)
    """log-uniform range of each object's respawn probability"""

    def __post_init__(self):
        for f in ("min_size", "max_size", "min_objects", "max_objects", "min_episode_steps", "max_episode_steps"):
            require_positive_int(f"LevelDistribution.{f}", getattr(self, f))
        if self.min_size > self.max_size:
            raise ValueError(f"LevelDistribution.min_size={self.min_size} exceeds max_size={self.max_size}")
        if self.min_objects > self.max_objects:
            raise ValueError(f"LevelDistribution.min_objects={self.min_objects} exceeds max_objects={self.max_objects}")
        if self.min_episode_steps > self.max_episode_steps:
            raise ValueError(f"LevelDistribution.min_episode_steps={self.min_episode_steps} exceeds "
                             f"max_episode_steps={self.max_episode_steps}")
        if self.min_size**2 < self.max_objects + 1:
            raise ValueError(f"LevelDistribution.min_size={self.min_size} is too small for the start and "
                             f"max_objects={self.max_objects} objects on distinct cells")
        free = self.max_size**2 - self.max_objects - 1
        if isinstance(self.num_walls, bool) or not isinstance(self.num_walls, int) or not 0 <= self.num_walls <= free:
            raise ValueError(f"LevelDistribution.num_walls must be an integer in [0, {free}], got {self.num_walls!r}")
        for f in ("p_terminate", "p_respawn"):
            lo, hi = getattr(self, f)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"LevelDistribution.{f} must satisfy 0 < lo <= hi <= 1, got {(lo, hi)!r}")


DISTRIBUTIONS: dict[str, LevelDistribution] = {
    # The GROOVE `all` modes (all_shortlife / all_vrandlife differ only in the lifetime).
    "all": LevelDistribution(),
    # The groove code's size-bucketed modes.
    "small": LevelDistribution(4, 6, 1, 3, 20, 100, num_walls=7),
    "medium": LevelDistribution(6, 8, 2, 4, 100, 250, num_walls=10),
    "large": LevelDistribution(8, 10, 2, 5, 250, 750, num_walls=15),
    # Sheet §7 CPU smoke: grids 3-4, episodes 5-10 steps, 1-2 objects, 4 walls in a 4 x 4 grid.
    "debug": LevelDistribution(3, 4, 1, 2, 5, 10, num_walls=4),
}


def _log_uniform(key, shape, lo, hi):
    return jnp.exp(jax.random.uniform(key, shape, minval=math.log(lo), maxval=math.log(hi)))


def _random_cells(key, free: jax.Array, n: int):
    """``n`` distinct cells of the ``[S, S]`` mask ``free`` (uniform without replacement, Gumbel top-k).

    Returns ``(cells int32 [n, 2], ok bool [n])``; ``ok`` is False where too few cells were free.
    """
    flat = free.reshape(-1)
    scores = jnp.where(flat, jax.random.gumbel(key, flat.shape), -jnp.inf)
    _, idx = jax.lax.top_k(scores, n)
    s = free.shape[-1]
    return jnp.stack([idx // s, idx % s], -1).astype(jnp.int32), flat[idx]


def _as_distribution(dist: LevelDistribution | str) -> LevelDistribution:
    if isinstance(dist, LevelDistribution):
        return dist
    require_choice("level distribution", dist, tuple(DISTRIBUTIONS))
    return DISTRIBUTIONS[dist]


def sample_level(key: jax.Array, dist: LevelDistribution | str = "all") -> GridLevel:
    """One level from a random distribution (jit / vmap over keys for a batch; ``dist`` is static).

    The sheet's §2 table: side U{min..max}, episode length log-uniform integer, U{min..max}
    objects with reward U[-1, 1] (the first U[0, 1], so a positive object always exists),
    p_terminate and p_respawn log-uniform; start and objects on distinct cells of the level, then
    ``num_walls`` wall cells drawn among the other cells of the padded ``S x S`` grid.
    """
    d = _as_distribution(dist)
    s, k = d.max_size, d.max_objects
    ks = jax.random.split(key, 8)
    size = jax.random.randint(ks[0], (), d.min_size, d.max_size + 1)
    n_obj = jax.random.randint(ks[1], (), d.min_objects, d.max_objects + 1)
    steps = jnp.round(_log_uniform(ks[2], (), d.min_episode_steps, d.max_episode_steps)).astype(jnp.int32)
    reward = jax.random.uniform(ks[3], (k,), minval=-1.0, maxval=1.0)
    reward = reward.at[0].set(jnp.abs(reward[0]))  # |U[-1, 1]| = U[0, 1]
    p_term = _log_uniform(ks[4], (k,), *d.p_terminate)
    p_resp = _log_uniform(ks[5], (k,), *d.p_respawn)
    rows, cols = jnp.meshgrid(jnp.arange(s), jnp.arange(s), indexing="ij")
    inside = (rows < size) & (cols < size)
    cells, _ = _random_cells(ks[6], inside, k + 1)  # min_size^2 >= K + 1: always enough cells
    occupied = jnp.zeros((s, s), bool).at[cells[:, 0], cells[:, 1]].set(True)
    wall_cells, _ = _random_cells(ks[7], ~occupied, max(d.num_walls, 1))
    walls = jnp.zeros((s, s), bool)
    if d.num_walls:
        walls = walls.at[wall_cells[:, 0], wall_cells[:, 1]].set(True)
    return GridLevel(
        size=size.astype(jnp.int32),
        walls=walls | ~inside,
        start=cells[0],
        obj_pos=cells[1:],
        obj_reward=reward.astype(jnp.float32),
        obj_p_terminate=p_term.astype(jnp.float32),
        obj_p_respawn=p_resp.astype(jnp.float32),
        obj_mask=jnp.arange(k) < n_obj,
        random_respawn=jnp.asarray(False),
        max_steps_in_episode=steps,
    )


def sample_levels(key: jax.Array, num: int, dist: LevelDistribution | str = "all") -> GridLevel:
    """``num`` levels stacked (leading axis ``num``)."""
    num = require_positive_int("num", num)
    d = _as_distribution(dist)
    return jax.vmap(lambda k: sample_level(k, d))(jax.random.split(key, num))


# ----------------------------------------------------------------------------- padding and batches


def pad_level(level: GridLevel, max_size: int, max_objects: int) -> GridLevel:
    """Pad an unbatched level to side ``max_size`` (walls) and ``max_objects`` (unused slots).

    Dynamics are unchanged (per-object random draws use per-slot keys), except the random cells
    of ``random_respawn`` levels; the tabular observation changes its index layout.
    """
    s, k = level.max_size, level.max_objects
    if level.walls.ndim != 2:
        raise ValueError(f"pad_level takes one level (walls [S, S]), got walls of shape {level.walls.shape}")
    require_positive_int("max_size", max_size)
    require_positive_int("max_objects", max_objects)
    if max_size < s or max_objects < k:
        raise ValueError(f"cannot pad a level of side {s} with {k} object slots to max_size={max_size}, "
                         f"max_objects={max_objects} (smaller)")
    ds, dk = max_size - s, max_objects - k
    return level.replace(
        walls=jnp.pad(level.walls, ((0, ds), (0, ds)), constant_values=True),
        obj_pos=jnp.pad(level.obj_pos, ((0, dk), (0, 0))),
        obj_reward=jnp.pad(level.obj_reward, (0, dk)),
        obj_p_terminate=jnp.pad(level.obj_p_terminate, (0, dk)),
        obj_p_respawn=jnp.pad(level.obj_p_respawn, (0, dk)),
        obj_mask=jnp.pad(level.obj_mask, (0, dk)),
    )


def stack_levels(levels: Sequence[GridLevel] | Mapping[str, GridLevel], max_size: int | None = None,
                 max_objects: int | None = None) -> GridLevel:
    """Pad unbatched levels (a list, or a dict's values in order) to common shapes (at least
    ``max_size`` / ``max_objects`` when given) and stack them along a new axis 0."""
    levels = list(levels.values()) if isinstance(levels, Mapping) else list(levels)
    if not levels:
        raise ValueError("stack_levels needs at least one level, got none")
    s = max([lv.max_size for lv in levels] + [max_size or 0])
    k = max([lv.max_objects for lv in levels] + [max_objects or 0])
    padded = [pad_level(lv, s, k) for lv in levels]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def index_level(levels: GridLevel, i) -> GridLevel:
    """Level ``i`` of a stacked batch."""
    return jax.tree.map(lambda x: x[i], levels)


# ----------------------------------------------------------------------------- the environment


class GridWorld(environment.Environment[GridState, GridLevel]):
    """Grid world on a :class:`GridLevel` (a gymnax ``Environment``: ``reset`` / ``step`` with auto-reset).

    Array shapes follow the params' shapes, so one instance serves every level of any padding;
    ``level`` only sets :attr:`default_params`.  ``obs_mode`` (static) picks the observation.
    """

    def __init__(self, level: GridLevel | None = None, obs_mode: str = "tabular", name: str = "grid"):
        super().__init__()
        self.obs_mode = require_choice("obs_mode", obs_mode, OBS_MODES)
        self._level = level
        self._name = name

    @property
    def default_params(self) -> GridLevel:
        return named_level("dense") if self._level is None else self._level

    # --- the functional core
    def reset_env(self, key, params: GridLevel):
        k = params.max_objects
        free = ~params.walls.at[params.start[0], params.start[1]].set(True)
        cells, ok = _random_cells(key, free, k)
        obj_pos = jnp.where((params.random_respawn & ok)[:, None], cells, params.obj_pos)
        state = GridState(pos=params.start.astype(jnp.int32), obj_pos=obj_pos.astype(jnp.int32),
                          present=params.obj_mask, terminated=jnp.asarray(False), time=jnp.asarray(0, jnp.int32))
        return self.get_obs(state, params), state

    def step_env(self, key, state: GridState, action, params: GridLevel):
        """``(obs, state, reward, terminated, info)``; truncation via :meth:`is_truncated`."""
        k_term, k_resp, k_cells = jax.random.split(key, 3)
        s, k = params.max_size, params.max_objects
        # Move; off the level or into a wall cancels the move.
        new = state.pos + jnp.asarray(_MOVES)[jnp.clip(jnp.asarray(action, jnp.int32), 0, NUM_ACTIONS - 1)]
        inside = jnp.all((new >= 0) & (new < s))
        new_c = jnp.clip(new, 0, s - 1)
        pos = jnp.where(inside & ~params.walls[new_c[0], new_c[1]], new_c, state.pos)
        # Collect.
        collected = state.present & jnp.all(state.obj_pos == pos, -1)
        reward = jnp.sum(jnp.where(collected, params.obj_reward, 0.0))
        p_term = jnp.clip(jnp.sum(jnp.where(collected, params.obj_p_terminate, 0.0)), 0.0, 1.0)
        terminated = state.terminated | (jax.random.uniform(k_term) < p_term)
        # Respawn absent objects (per-slot keys: padding does not change the draws).
        u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(k_resp, i)))(jnp.arange(k))
        respawn = ~state.present & params.obj_mask & (u < params.obj_p_respawn)
        present = (state.present & ~collected) | respawn
        # random_respawn: a respawning object moves to a random cell free of walls, agent, objects.
        occ = jnp.zeros((s, s), bool).at[state.obj_pos[:, 0], state.obj_pos[:, 1]].set(params.obj_mask)
        free = ~(params.walls | occ).at[pos[0], pos[1]].set(True)
        cells, ok = _random_cells(k_cells, free, k)
        move = (params.random_respawn & respawn & ok)[:, None]
        obj_pos = jnp.where(move, cells, state.obj_pos)
        new_state = GridState(pos=pos, obj_pos=obj_pos, present=present, terminated=terminated,
                              time=state.time + 1)
        info = {"collected": collected}
        return self.get_obs(new_state, params), new_state, reward.astype(jnp.float32), terminated, info

    def tabular_index(self, state: GridState, params: GridLevel) -> jax.Array:
        """int32 index of the tabular observation's hot entry, ``row * S + col + S^2 * sum_i present_i 2^i``
        (a tabular agent can index its table with it instead of multiplying the one-hot)."""
        s, k = params.max_size, params.max_objects
        pattern = jnp.sum(jnp.where(state.present, 2 ** jnp.arange(k), 0))
        return (state.pos[0] * s + state.pos[1] + s * s * pattern).astype(jnp.int32)

    def get_obs(self, state: GridState, params: GridLevel | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        s, k = params.max_size, params.max_objects
        cell = state.pos[0] * s + state.pos[1]
        t = (state.time * TIME_SCALE).astype(jnp.float32)[None]
        if self.obs_mode == "tabular":
            onehot = jax.nn.one_hot(self.tabular_index(state, params), s * s * 2**k, dtype=jnp.float32)
            return jnp.concatenate([onehot, t])
        obj_cells = state.obj_pos[:, 0] * s + state.obj_pos[:, 1]
        objs = jax.nn.one_hot(obj_cells, s * s, dtype=jnp.float32) * state.present[:, None]
        return jnp.concatenate([jax.nn.one_hot(cell, s * s, dtype=jnp.float32), objs.reshape(-1), t])

    def is_terminated(self, state: GridState, params: GridLevel) -> jax.Array:
        return state.terminated

    def is_truncated(self, state: GridState, params: GridLevel) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    def is_terminal(self, state: GridState, params: GridLevel) -> jax.Array:
        return self.is_terminated(state, params) | self.is_truncated(state, params)

    def obs_dim(self, params: GridLevel | None = None) -> int:
        """Observation length for levels shaped like ``params`` (batched or not)."""
        params = self.default_params if params is None else params
        s, k = params.max_size, params.max_objects
        return s * s * 2**k + 1 if self.obs_mode == "tabular" else s * s * (k + 1) + 1

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params=None) -> spaces.Box:
        params = self.default_params if params is None else params
        high = max(1.0, TIME_SCALE * float(np.max(np.asarray(params.max_steps_in_episode))))
        return spaces.Box(0.0, high, (self.obs_dim(params),), jnp.float32)


# ----------------------------------------------------------------------------- ASCII levels


def level_from_ascii(rows: Sequence[str], objects: Sequence[tuple[float, float, float]], max_steps_in_episode: int,
                     random_respawn: bool = False, max_size: int | None = None,
                     max_objects: int | None = None) -> GridLevel:
    """Build a level from a square ASCII map: ``#`` wall, ``.`` free, ``S`` start, ``a``, ``b``, ...
    the objects (``a`` = ``objects[0]``); ``objects`` are ``(reward, p_terminate, p_respawn)``."""
    n = len(rows)
    if n == 0 or any(len(r) != n for r in rows):
        raise ValueError(f"level map must be square (n rows of n characters), got row lengths {[len(r) for r in rows]}")
    require_positive_int("max_steps_in_episode", max_steps_in_episode)
    letters = [chr(ord("a") + i) for i in range(len(objects))]
    pos: dict[str, tuple[int, int]] = {}
    walls = np.zeros((n, n), bool)
    for i, row in enumerate(rows):
        for j, ch in enumerate(row):
            if ch == "#":
                walls[i, j] = True
            elif ch == "S" or ch in letters:
                if ch in pos:
                    raise ValueError(f"level map has {ch!r} twice (at {pos[ch]} and {(i, j)})")
                pos[ch] = (i, j)
            elif ch != ".":
                raise ValueError(f"level map character {ch!r} at {(i, j)} is not '#', '.', 'S' or one of {letters}")
    missing = [c for c in ["S"] + letters if c not in pos]
    if missing:
        raise ValueError(f"level map lacks {missing} (one 'S' and one letter per object)")
    for o in objects:
        if len(o) != 3 or not (0 <= o[1] <= 1 and 0 <= o[2] <= 1):
            raise ValueError(f"object {o!r} must be (reward, p_terminate in [0, 1], p_respawn in [0, 1])")
    obj = np.asarray(objects, np.float32).reshape(-1, 3)
    level = GridLevel(
        size=jnp.asarray(n, jnp.int32),
        walls=jnp.asarray(walls),
        start=jnp.asarray(pos["S"], jnp.int32),
        obj_pos=jnp.asarray([pos[c] for c in letters], jnp.int32).reshape(-1, 2),
        obj_reward=jnp.asarray(obj[:, 0]),
        obj_p_terminate=jnp.asarray(obj[:, 1]),
        obj_p_respawn=jnp.asarray(obj[:, 2]),
        obj_mask=jnp.ones((len(objects),), bool),
        random_respawn=jnp.asarray(random_respawn),
        max_steps_in_episode=jnp.asarray(max_steps_in_episode, jnp.int32),
    )
    if max_size is not None or max_objects is not None:
        level = pad_level(level, max_size or n, max_objects or len(objects))
    return level


# ----------------------------------------------------------------------------- named levels

_POS, _NEG = "positive", "negative"
_E11 = ["..........."] * 11


def _put(rows: Sequence[str], marks: Mapping[tuple[int, int], str]) -> list[str]:
    out = [list(r) for r in rows]
    for (i, j), ch in marks.items():
        out[i][j] = ch
    return ["".join(r) for r in out]


@dataclasses.dataclass(frozen=True)
class _Spec:
    rows: tuple[str, ...]
    objects: tuple[tuple[float, float, float], ...]
    max_steps: int
    description: str
    random_respawn: bool = False

    @property
    def obs_mode(self) -> str:
        return "features" if self.random_respawn else "tabular"


_DENSE = _Spec(tuple(_put(_E11, {(0, 0): "S", (1, 3): "a", (3, 7): "b", (8, 7): "c", (9, 2): "d"})),
               ((1.0, 0.0, 0.05), (1.0, 0.0, 0.05), (-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)), 500,
               "LPG tabular 'dense': 11x11, 2x[+1, 0, 0.05], [-1, 0.5, 0.1], [-1, 0, 0.5], 500 steps")
_LONG = _Spec(tuple(_put(_E11, {(5, 5): "S", (0, 10): "a", (10, 0): "b", (2, 2): "c", (8, 8): "d"})),
              ((1.0, 0.0, 0.01), (1.0, 0.0, 0.01), (-1.0, 0.5, 1.0), (-1.0, 0.5, 1.0)), 1000,
              "LPG tabular 'long': 11x11, 2x[+1, 0, 0.01], 2x[-1, 0.5, 1], 1000 steps")

_SPECS: dict[str, _Spec] = {
    "dense": _DENSE,
    "sparse": _Spec(tuple(_put(["............."] * 13, {(6, 6): "S", (1, 10): "a", (10, 2): "b"})),
                    ((1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)), 50,
                    "LPG tabular 'sparse': 13x13, [+1, 1, 0], [-1, 1, 0], 50 steps"),
    "long": _LONG,
    "longer": _Spec(("....#...a", ".....c...", "..f.#....", "....#....", "S...#.e..", "....#....", "..g.#....",
                     ".....d...", "....#...b"),
                    ((1.0, 0.1, 0.01),) * 2 + ((-1.0, 0.8, 1.0),) * 5, 2000,
                    "LPG tabular 'longer': 9x9, wall down the middle with 2 gaps, 2x[+1, 0.1, 0.01], "
                    "5x[-1, 0.8, 1] (the paper's 5; groove uses 3), 2000 steps"),
    "long_dense": _Spec(("...........", ".a...#...b.", ".....#.....", ".....#.....", "##.#####.##", "S....#.....",
                         ".....#.....", "...........", ".....#.....", ".c...#...d.", ".....#....."),
                        ((1.0, 0.0, 0.005),) * 4, 2000,
                        "LPG tabular 'long_dense': 11x11, four rooms, 4x[+1, 0, 0.005], 2000 steps"),
    "rand_dense": dataclasses.replace(_DENSE, random_respawn=True,
                                      description="LPG random 'dense': as dense, objects at random cells"),
    "rand_long": dataclasses.replace(_LONG, random_respawn=True,
                                     description="LPG random 'long': as long, objects at random cells"),
    "rand_small": _Spec(("S......", "..#..a.", ".b.....", "....#..", "c......", "......d", "......."),
                        ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.1),) * 2, 500,
                        "LPG random 'small': 7x7, 2 walls, 2x[+1, 0, 0.05], 2x[-1, 0.5, 0.1], random cells, 500 steps",
                        True),
    "rand_sparse": _Spec(("S......", ".......", "...a...", ".......", ".b.....", ".....c.", "......."),
                         ((1.0, 1.0, 1.0),) + ((-1.0, 1.0, 1.0),) * 2, 50,
                         "LPG random 'small-sparse': 7x7, [+1, 1, 1], 2x[-1, 1, 1], random cells, 50 steps", True),
    "rand_very_dense": _Spec(tuple(_put(_E11, {(0, 0): "S", (5, 5): "a"})), ((1.0, 0.0, 1.0),), 2000,
                             "LPG random 'very-dense': 11x11, [+1, 0, 1], random cells, 2000 steps", True),
}
NAMED_LEVELS: tuple[str, ...] = tuple(_SPECS)
TABULAR_LEVELS: tuple[str, ...] = ("dense", "sparse", "long", "longer", "long_dense")

_GOAL, _TRAP = (1.0, 1.0, 0.0), (-1.0, 0.5, 0.1)
_HELD_OUT: dict[str, _Spec] = {
    "maze_open": _Spec(("S........", ".........", "....b....", ".........", ".........", ".........", ".........",
                        ".......c.", "........a"), (_GOAL, (0.2, 0.0, 0.05), _TRAP), 50,
                       "held-out: open 9x9, goal in the far corner, small reward, trap"),
    "maze_rooms": _Spec((".....#.....", ".S...#...b.", ".....#.....", "...........", ".....#.....", "#.#####.###",
                         ".....#.....", ".....#.....", "...........", ".c...#...a.", ".....#....."),
                        (_GOAL, (0.3, 1.0, 0.0), _TRAP), 100,
                        "held-out: four rooms 11x11, goal in the far room, a nearer terminating decoy (+0.3), trap"),
    "maze_corridors": _Spec(("S..........", "##########.", "....b......", ".##########", "...........",
                             "##########.", ".....c.....", ".##########", "...........", "##########.",
                             "a.........."), (_GOAL, (0.2, 0.0, 0.05), (-1.0, 0.0, 0.2)), 150,
                            "held-out: zigzag corridor 11x11 (about 60 steps to the goal), small reward, trap"),
    "maze_two_paths": _Spec(("...........", ".#########.", ".#.......#.", ".#.......#.", ".#.......#.",
                             "S...b.c...a", ".#.......#.", ".#.......#.", ".#.......#.", ".#########.",
                             "..........."), (_GOAL, (-1.0, 0.5, 0.5), (-1.0, 0.5, 0.5)), 60,
                            "held-out: 11x11, a short way past two traps or a long safe way round"),
    "maze_spiral": _Spec(("S....b.....", "##########.", ".........#.", ".#######.#.", ".#.....#.#.", ".#.#a#.#.#.",
                          ".#.#...#.#.", ".#.#####.#.", ".#.......#.", ".#########.", ".....c....."),
                         (_GOAL, (0.1, 0.0, 0.05), _TRAP), 150,
                         "held-out: spiral 11x11, goal in the centre"),
}
HELD_OUT_LEVELS: tuple[str, ...] = tuple(_HELD_OUT)


def _spec(name: str) -> _Spec:
    if not isinstance(name, str) or (name not in _SPECS and name not in _HELD_OUT):
        import difflib

        known = NAMED_LEVELS + HELD_OUT_LEVELS
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown grid level {name!r}.{hint} Known: {', '.join(known)}")
    return _SPECS.get(name) or _HELD_OUT[name]


def named_level(name: str, max_size: int | None = None, max_objects: int | None = None) -> GridLevel:
    """A named LPG level or held-out level, optionally padded to ``(max_size, max_objects)``."""
    sp = _spec(name)
    return level_from_ascii(sp.rows, sp.objects, sp.max_steps, sp.random_respawn, max_size, max_objects)


def held_out_levels(max_size: int | None = None, max_objects: int | None = None) -> dict[str, GridLevel]:
    """The maze-like held-out levels, name -> level, padded to common shapes (at least the given ones)."""
    levels = {n: named_level(n) for n in HELD_OUT_LEVELS}
    s = max([lv.max_size for lv in levels.values()] + [max_size or 0])
    k = max([lv.max_objects for lv in levels.values()] + [max_objects or 0])
    return {n: pad_level(lv, s, k) for n, lv in levels.items()}


def make_level_env(name: str, obs_mode: str | None = None, max_steps_in_episode: int | None = None,
                   **unknown) -> tuple[GridWorld, GridLevel]:
    """``(env, level)`` for ``grid:<name>``; options: ``obs_mode`` (default: ``tabular``, ``features``
    for the ``rand_*`` levels) and ``max_steps_in_episode``."""
    if unknown:
        raise ValueError(f"grid:{name} has no option {sorted(unknown)[0]!r}; its options are "
                         "['max_steps_in_episode', 'obs_mode']")
    sp = _spec(name)
    level = named_level(name)
    if max_steps_in_episode is not None:
        steps = require_positive_int(f"grid:{name} max_steps_in_episode", max_steps_in_episode)
        level = level.replace(max_steps_in_episode=jnp.asarray(steps, jnp.int32))
    return GridWorld(level, obs_mode or sp.obs_mode, f"grid-{name}"), level


for _name, _sp in {**_SPECS, **_HELD_OUT}.items():
    register(f"grid:{_name}", lambda _n=_name, **kw: make_level_env(_n, **kw), _sp.description)


# ----------------------------------------------------------------------------- many levels at once


def random_policy(params, obs, key):
    """Uniform random actions (a policy in the engine's sense)."""
    return jax.random.randint(key, obs.shape[:1], 0, NUM_ACTIONS), ()


def _level_axes(levels: GridLevel) -> int:
    if levels.walls.ndim != 3:
        raise ValueError(f"expected a stacked batch of levels (walls [L, S, S]), got walls of shape "
                         f"{levels.walls.shape}; use stack_levels or sample_levels")
    return levels.walls.shape[0]


def rollout_levels(env: GridWorld, levels: GridLevel, policy: Callable, policy_params: Any, key: jax.Array,
                   num_envs: int, num_steps: int, batched_params: bool = False):
    """The engine's :func:`rlsuite.core.rollout.rollout` vmapped over a batch of ``L`` levels
    (``num_envs`` envs each, fresh resets).  ``policy_params`` is shared, or per level (leading
    axis ``L``) with ``batched_params``.  Returns ``(carry, Transition)`` with leaves ``[L, T, N, ...]``."""
    n = _level_axes(levels)

    def one(level, pp, k):
        return rollout(env, level, policy, pp, init_rollout(env, level, k, num_envs), num_steps)

    return jax.vmap(one, in_axes=(0, 0 if batched_params else None, 0))(levels, policy_params, jax.random.split(key, n))


@functools.lru_cache(maxsize=64)
def _evaluator(env: GridWorld, policy: Callable, num_envs: int, horizon: int, batched_params: bool):
    def one(level, pp, k):
        return rollout_episodes(env, level, policy, pp, k, num_envs, horizon).episode_return.mean()

    return jax.jit(jax.vmap(one, in_axes=(0, 0 if batched_params else None, 0)))


def evaluate_levels(env: GridWorld, levels: GridLevel, policy: Callable, policy_params: Any, key: jax.Array,
                    num_envs: int = 16, batched_params: bool = False) -> jax.Array:
    """Mean undiscounted return of one episode per env, per level: ``[L]``.  Uses the engine's
    fixed-horizon episode mode with the horizon = the longest ``max_steps_in_episode`` in the
    batch (so every episode ends by termination or its own time limit).  Jitted and cached per
    ``(env, policy, num_envs, horizon)``; not callable under an outer ``jit`` (the horizon is read
    on the host: inside your own jit, vmap :func:`rlsuite.core.rollout.rollout_episodes` directly)."""
    n = _level_axes(levels)
    num_envs = require_positive_int("num_envs", num_envs)
    horizon = int(np.max(np.asarray(levels.max_steps_in_episode)))
    return _evaluator(env, policy, num_envs, horizon, bool(batched_params))(
        levels, policy_params, jax.random.split(key, n))


def bare_rollout_steps_per_second(env: GridWorld, levels: GridLevel, num_envs: int = 64, num_steps: int = 20,
                                  repeats: int = 5, seed: int = 0) -> float:
    """Env steps/s of a jitted random-policy rollout over a batch of ``L`` levels (no learning).

    The baseline of the meta-training throughput ratio: each call steps ``L * num_envs *
    num_steps`` envs (the engine's auto-reset included), continuing from the previous carry;
    compile time is excluded (one warm-up call).
    """
    n = _level_axes(levels)
    repeats = require_positive_int("repeats", repeats)

    def init(k):
        return jax.vmap(lambda lv, kk: init_rollout(env, lv, kk, num_envs))(levels, jax.random.split(k, n))

    @jax.jit
    def run(carry):
        new, tr = jax.vmap(lambda lv, c: rollout(env, lv, random_policy, (), c, num_steps))(levels, carry)
        return new, tr.reward.sum()

    carry = init(jax.random.PRNGKey(seed))
    carry, r = run(carry)
    jax.block_until_ready(r)
    t0 = _time.perf_counter()
    for _ in range(repeats):
        carry, r = run(carry)
    jax.block_until_ready(r)
    return n * num_envs * num_steps * repeats / (_time.perf_counter() - t0)
