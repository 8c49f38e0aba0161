"""ObjGrid: a small MiniGrid-like go-to-object task with categorical (object / colour id) features.

Made for GBRL's headline claim (Fuhrer, Tessler, Dalal, "Gradient Boosting Reinforcement
Learning", sheet ``papers/gbrl.md`` §7: trees beat networks on structured / categorical
observations, and are more robust to spurious features).  A JAX stand-in for MiniGrid's
GoToObject / Fetch, on gymnax's API, so the whole training run stays one jitted program.

World: a ``size x size`` room without interior walls, the agent and ``n_objects`` objects on
distinct random cells.  Each object has a type id in ``[0, n_types)`` (key, ball, box, ...) and a
colour id in ``[0, n_colours)``; the objects' colours are distinct.  The mission names the target
object by its (type, colour).  Actions: 0 up (+y), 1 down, 2 right (+x), 3 left; moves into the
border are no-ops.  Stepping onto an object ends the episode (terminated) with reward
``1 - 0.9 * t / max_steps_in_episode`` (MiniGrid's success reward, ``t`` = steps taken) if it is
the target, else 0.  The time limit truncates.

Observation (float32 vector of integer values, no one-hot encoding, as MiniGrid's symbolic
encoding): ``[mission_type, mission_colour, (type_k, colour_k, dx_k, dy_k) for each object k]``
with ``dx_k, dy_k`` the object's offset from the agent.  The indices of the categorical features
(mission and object ids) are :attr:`ObjGrid.categorical_features`; GBRL splits them by equality.
Solving the task needs the *match* between the mission colour and an object's colour, then
navigation along ``dx, dy``.

Spurious variant (``objgrid:goto-spurious``): one extra categorical feature ``hint`` (the last
one) that equals the target's slot index with probability ``spurious_corr`` and is a uniformly
random slot otherwise (drawn at reset, constant over the episode).  Training uses
``spurious_corr = 0.9`` (the default); the test distribution is ``spurious_corr = 0`` (the
hint is noise), so an agent that leaned on the hint instead of the mission/object match loses
return at test.  This follows the sheet's spurious-feature MiniGrid experiment in spirit (a
feature correlated with reward in training but not at test); the reference's exact Fetch
construction is not reproduced.

Ids: ``objgrid:goto`` (5 x 5, 2 objects, 3 types, 4 colours, 30 steps) and
``objgrid:goto-spurious`` (the same + hint); keyword overrides replace :class:`ObjGridParams`
fields (``max_steps_in_episode``, ``spurious_corr``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.envs.registry import register

MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # up, down, right, left


@struct.dataclass
class ObjGridState(environment.EnvState):
    agent: jax.Array  # [2] int32 cell
    pos: jax.Array  # [K, 2] int32 object cells
    types: jax.Array  # [K] int32
    colours: jax.Array  # [K] int32
    target: jax.Array  # int32 slot of the target object
    hint: jax.Array  # int32 spurious hint (spurious variant; else unused)
    time: int


@struct.dataclass
class ObjGridParams(environment.EnvParams):
    max_steps_in_episode: int = 30
    spurious_corr: float = 0.9


class ObjGrid(environment.Environment[ObjGridState, ObjGridParams]):
    """Go to the object named by the mission (see the module docstring)."""

    def __init__(self, size: int = 5, n_objects: int = 2, n_types: int = 3, n_colours: int = 4,
                 spurious: bool = False):
        super().__init__()
        for name, v, lo in (("size", size, 2), ("n_objects", n_objects, 1), ("n_types", n_types, 1),
                            ("n_colours", n_colours, 1)):
            if not isinstance(v, int) or v < lo:
                raise ValueError(f"ObjGrid {name} must be an int >= {lo}, got {v!r}")
        if n_objects > n_colours:
            raise ValueError(f"ObjGrid needs n_colours >= n_objects (distinct colours), got {n_colours} < {n_objects}")
        if n_objects + 1 > size * size:
            raise ValueError(f"ObjGrid: {n_objects} objects and the agent do not fit in a {size}x{size} grid")
        self.size, self.n_objects, self.n_types, self.n_colours = size, n_objects, n_types, n_colours
        self.spurious = bool(spurious)

    @property
    def default_params(self) -> ObjGridParams:
        return ObjGridParams()

    @property
    def categorical_features(self) -> tuple[int, ...]:
        """Indices of the id features (mission, object type / colour, hint) in the observation."""
        idx = [0, 1] + [i for k in range(self.n_objects) for i in (2 + 4 * k, 3 + 4 * k)]
        return tuple(idx + ([2 + 4 * self.n_objects] if self.spurious else []))

    def reset_env(self, key, params: ObjGridParams):
        k_cell, k_type, k_col, k_tgt, k_hint, k_flip = jax.random.split(key, 6)
        cells = jax.random.permutation(k_cell, self.size * self.size)[: self.n_objects + 1]
        xy = jnp.stack([cells % self.size, cells // self.size], -1).astype(jnp.int32)
        target = jax.random.randint(k_tgt, (), 0, self.n_objects)
        noise = jax.random.randint(k_hint, (), 0, self.n_objects)
        hint = jnp.where(jax.random.uniform(k_flip) < params.spurious_corr, target, noise)
        state = ObjGridState(
            agent=xy[0], pos=xy[1:],
            types=jax.random.randint(k_type, (self.n_objects,), 0, self.n_types),
            colours=jax.random.permutation(k_col, self.n_colours)[: self.n_objects].astype(jnp.int32),
            target=target.astype(jnp.int32), hint=hint.astype(jnp.int32), time=0,
        )
        return self.get_obs(state), state

    def step_env(self, key, state: ObjGridState, action, params: ObjGridParams):
        move = jnp.asarray(MOVES, jnp.int32)[jnp.clip(jnp.asarray(action, jnp.int32), 0, 3)]
        agent = jnp.clip(state.agent + move, 0, self.size - 1)
        t = state.time + 1
        on = jnp.all(state.pos == agent[None], -1)  # [K]
        reached = on.any()
        success = on[state.target]
        reward = jnp.where(success, 1.0 - 0.9 * t / params.max_steps_in_episode, 0.0).astype(jnp.float32)
        new = state.replace(agent=agent, time=t)
        return self.get_obs(new), new, reward, reached, {"success": success}

    def get_obs(self, state: ObjGridState, params: ObjGridParams = None, key=None):
        d = state.pos - state.agent[None]  # [K, 2]
        objs = jnp.stack([state.types, state.colours, d[:, 0], d[:, 1]], -1).reshape(-1)
        mission = jnp.stack([state.types[state.target], state.colours[state.target]])
        parts = [mission, objs] + ([state.hint[None]] if self.spurious else [])
        return jnp.concatenate(parts).astype(jnp.float32)

    def is_terminated(self, state: ObjGridState, params: ObjGridParams) -> jax.Array:
        return jnp.all(state.pos == state.agent[None], -1).any()

    def is_truncated(self, state: ObjGridState, params: ObjGridParams) -> jax.Array:
        return (state.time >= params.max_steps_in_episode) & ~self.is_terminated(state, params)

    def is_terminal(self, state: ObjGridState, params: ObjGridParams) -> jax.Array:
        return self.is_terminated(state, params) | (state.time >= params.max_steps_in_episode)

    @property
    def name(self) -> str:
        return "objgrid-goto-spurious" if self.spurious else "objgrid-goto"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params=None) -> spaces.Box:
        n = 2 + 4 * self.n_objects + int(self.spurious)
        hi = max(self.size, self.n_types, self.n_colours)
        return spaces.Box(-float(self.size - 1), float(hi), (n,), jnp.float32)


def _make(spurious: bool, overrides):
    env = ObjGrid(spurious=spurious)
    params = env.default_params
    bad = [k for k in overrides if k not in ObjGridParams.__dataclass_fields__]
    if bad:
        raise ValueError(f"objgrid has no parameter {bad[0]!r}; its parameters are "
                         f"{sorted(ObjGridParams.__dataclass_fields__)}")
    if "spurious_corr" in overrides and not 0.0 <= float(overrides["spurious_corr"]) <= 1.0:
        raise ValueError(f"objgrid spurious_corr must be in [0, 1], got {overrides['spurious_corr']!r}")
    if "max_steps_in_episode" in overrides:
        m = overrides["max_steps_in_episode"]
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"objgrid max_steps_in_episode must be a positive int, got {m!r}")
    return env, params.replace(**overrides)


def make_goto(**overrides):
    """``(env, params)`` of the go-to-object task; ``overrides`` replace :class:`ObjGridParams` fields."""
    return _make(False, overrides)


def make_goto_spurious(**overrides):
    """``(env, params)`` of the go-to-object task with the spurious ``hint`` feature (train: corr 0.9)."""
    return _make(True, overrides)


register("objgrid:goto", make_goto,
         "MiniGrid-like go-to-object (5x5, 2 objects with type / colour ids; categorical features for GBRL)")
register("objgrid:goto-spurious", make_goto_spurious,
         "objgrid:goto + a spurious hint feature (= target slot w.p. spurious_corr; 0.9 train, 0 test)")
