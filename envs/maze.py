"""Deceptive 2-D maze for novelty search (a JAX take on Lehman & Stanley's sensor Hard Maze).

A point robot (radius ``robot_radius``) with a heading moves in a box of line-segment walls.
Action ``a in [-1, 1]^2``: ``heading += a[0] * max_turn``, then a move of ``a[1] * max_speed``
along the heading (backwards allowed).  A move whose path crosses a wall, or that ends closer than
``robot_radius`` to one, is cancelled (the robot stays where it was; the turn is kept).

Observation (9-D, float32): 5 rangefinders at -90, -45, 0, 45, 90 degrees from the heading (the
distance to the nearest wall along the ray divided by ``sensor_range``, clipped to [0, 1]) and a
4-slice goal radar (one-hot: goal in front [-45, 45), left [45, 135), behind, right, relative to the
heading), as in Lehman & Stanley (2011) minus the rear rangefinder.

Reward: the decrease of the distance to the goal, ``d_{t-1} - d_t``, so an episode's return is
``d_0 - d_final``: the classic "fitness = closeness of the final position to the goal", spread
over the steps.  Reaching the goal (``d < goal_radius``) terminates the episode; the time limit
(``max_steps_in_episode``, 400 like the sensor Hard Maze) truncates it.  The state's ``x``, ``y``
are the robot's position (the novelty-search behaviour characterisation reads them).

Layouts (10 x 10 box, goal (5, 9.2)):

- ``maze:hard``: the robot starts at (5, 5) facing up inside a cup (walls ``x = 3`` and ``x = 7``
  from ``y = 1.5`` to ``8``, closed by ``y = 8`` on top, open at the bottom); the goal is just
  above the cup's roof.  Following the reward drives the robot up against the roof, the trap
  (distance 1.4, return about 2.8 of the 4.2 possible); the way out goes down and out through the
  1.5-high gap under a side wall (the distance grows to about 7), up the outer corridor and back
  over the roof: about 19 units of path, 76 full-speed steps of the 150-step episode
  (``max_steps_in_episode = 150``; the reference sensor Hard Maze uses 400 steps on its own
  layout, which we do not reproduce).
- ``maze:open``: the box without interior walls, start (5, 5) (sanity check).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlsuite.envs.registry import register

SENSOR_ANGLES = (-jnp.pi / 2, -jnp.pi / 4, 0.0, jnp.pi / 4, jnp.pi / 2)

BOX = ((0.0, 0.0, 10.0, 0.0), (10.0, 0.0, 10.0, 10.0), (10.0, 10.0, 0.0, 10.0), (0.0, 10.0, 0.0, 0.0))
HARD_WALLS = BOX + ((3.0, 1.5, 3.0, 8.0), (3.0, 8.0, 7.0, 8.0), (7.0, 8.0, 7.0, 1.5))


@struct.dataclass
class MazeState(environment.EnvState):
    x: jax.Array
    y: jax.Array
    heading: jax.Array
    time: int


@struct.dataclass
class MazeParams(environment.EnvParams):
    walls: jax.Array = struct.field(default_factory=lambda: jnp.asarray(HARD_WALLS, jnp.float32))
    start: jax.Array = struct.field(default_factory=lambda: jnp.asarray([5.0, 5.0], jnp.float32))
    start_heading: float = float(jnp.pi / 2)
    goal: jax.Array = struct.field(default_factory=lambda: jnp.asarray([5.0, 9.2], jnp.float32))
    goal_radius: float = 0.5
    robot_radius: float = 0.2
    max_speed: float = 0.25
    max_turn: float = 0.5
    sensor_range: float = 5.0
    max_steps_in_episode: int = 150


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def ray_distances(px, py, angles, walls, max_range):
    """Distance along each ray (angles [R]) from (px, py) to the nearest wall [W, 4]; ``max_range`` if none."""
    dx, dy = jnp.cos(angles)[:, None], jnp.sin(angles)[:, None]  # [R, 1]
    x1, y1, x2, y2 = (walls[:, i][None, :] for i in range(4))  # [1, W]
    ex, ey = x2 - x1, y2 - y1
    denom = _cross(dx, dy, ex, ey)  # [R, W]
    qx, qy = x1 - px, y1 - py
    safe = jnp.where(jnp.abs(denom) < 1e-9, 1.0, denom)
    t = _cross(qx, qy, ex, ey) / safe  # along the ray
    u = _cross(qx, qy, dx, dy) / safe  # along the wall
    hit = (jnp.abs(denom) >= 1e-9) & (t >= 0.0) & (u >= 0.0) & (u <= 1.0)
    return jnp.min(jnp.where(hit, t, max_range), axis=1).clip(0.0, max_range)


def segments_intersect(p, q, walls):
    """Whether segment p->q (2-vectors) crosses any wall [W, 4] (touching counts)."""
    x1, y1, x2, y2 = walls[:, 0], walls[:, 1], walls[:, 2], walls[:, 3]
    rx, ry = q[0] - p[0], q[1] - p[1]
    ex, ey = x2 - x1, y2 - y1
    denom = _cross(rx, ry, ex, ey)
    qx, qy = x1 - p[0], y1 - p[1]
    safe = jnp.where(jnp.abs(denom) < 1e-9, 1.0, denom)
    t = _cross(qx, qy, ex, ey) / safe
    u = _cross(qx, qy, rx, ry) / safe
    return jnp.any((jnp.abs(denom) >= 1e-9) & (t >= 0.0) & (t <= 1.0) & (u >= 0.0) & (u <= 1.0))


def point_wall_distance(p, walls):
    """Distance from point p to every wall segment: [W]."""
    a, b = walls[:, :2], walls[:, 2:]
    ab = b - a
    t = jnp.clip(((p - a) * ab).sum(-1) / jnp.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return jnp.linalg.norm(a + t[:, None] * ab - p, axis=-1)


class Maze(environment.Environment[MazeState, MazeParams]):
    """Point robot in a line-segment maze (see the module docstring)."""

    def __init__(self, walls=HARD_WALLS, name: str = "maze-hard"):
        super().__init__()
        self._walls = tuple(tuple(float(v) for v in w) for w in walls)
        self._name = name

    @property
    def default_params(self) -> MazeParams:
        return MazeParams(walls=jnp.asarray(self._walls, jnp.float32))

    def reset_env(self, key, params: MazeParams):
        state = MazeState(x=jnp.asarray(params.start[0], jnp.float32), y=jnp.asarray(params.start[1], jnp.float32),
                          heading=jnp.asarray(params.start_heading, jnp.float32), time=0)
        return self.get_obs(state, params), state

    def goal_distance(self, state: MazeState, params: MazeParams):
        return jnp.hypot(state.x - params.goal[0], state.y - params.goal[1])

    def step_env(self, key, state: MazeState, action, params: MazeParams):
        a = jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), (2,)), -1.0, 1.0)
        heading = jnp.mod(state.heading + a[0] * params.max_turn, 2 * jnp.pi)
        p = jnp.stack([state.x, state.y])
        q = p + a[1] * params.max_speed * jnp.stack([jnp.cos(heading), jnp.sin(heading)])
        blocked = segments_intersect(p, q, params.walls) | jnp.any(
            point_wall_distance(q, params.walls) < params.robot_radius)
        q = jnp.where(blocked, p, q)
        new = MazeState(x=q[0], y=q[1], heading=heading, time=state.time + 1)
        d_old, d_new = self.goal_distance(state, params), self.goal_distance(new, params)
        done = self.is_terminated(new, params)
        return self.get_obs(new, params), new, (d_old - d_new).astype(jnp.float32), done, {"x": q[0], "y": q[1]}

    def get_obs(self, state: MazeState, params: MazeParams = None, key=None):
        params = self.default_params if params is None else params
        angles = state.heading + jnp.asarray(SENSOR_ANGLES, jnp.float32)
        rng = ray_distances(state.x, state.y, angles, params.walls, params.sensor_range) / params.sensor_range
        rel = jnp.arctan2(params.goal[1] - state.y, params.goal[0] - state.x) - state.heading
        rel = jnp.mod(rel + jnp.pi / 4, 2 * jnp.pi)  # [0, 2pi): 0..pi/2 = front slice
        radar = jax.nn.one_hot(jnp.floor(rel / (jnp.pi / 2)).astype(jnp.int32).clip(0, 3), 4)
        return jnp.concatenate([rng, radar]).astype(jnp.float32)

    def is_terminated(self, state: MazeState, params: MazeParams) -> jax.Array:
        return self.goal_distance(state, params) < params.goal_radius

    def is_truncated(self, state: MazeState, params: MazeParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    def is_terminal(self, state: MazeState, params: MazeParams) -> jax.Array:
        return self.is_terminated(state, params) | self.is_truncated(state, params)

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (9,), jnp.float32)


def _make(walls, name, overrides):
    env = Maze(walls, name)
    params = env.default_params
    bad = [k for k in overrides if k not in MazeParams.__dataclass_fields__]
    if bad:
        raise ValueError(f"maze has no parameter {bad[0]!r}; its parameters are {sorted(MazeParams.__dataclass_fields__)}")
    over = {k: (jnp.asarray(v, jnp.float32) if k in ("walls", "start", "goal") else v) for k, v in overrides.items()}
    return env, params.replace(**over)


def make_hard(**overrides):
    """``(env, params)`` of the deceptive maze; ``overrides`` replace :class:`MazeParams` fields."""
    return _make(HARD_WALLS, "maze-hard", overrides)


def make_open(**overrides):
    """``(env, params)`` of the empty box (same start and goal)."""
    return _make(BOX, "maze-open", overrides)


register("maze:hard", make_hard, "deceptive 2-D point-robot maze with rangefinders + goal radar (GA-NS; cup trap under the goal)")
register("maze:open", make_open, "the maze box without interior walls (sanity check for maze:hard)")
