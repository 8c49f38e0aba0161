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
vmappable over keys (seeds) and hparams (sweeps, ES populations); with ``eval_every`` it also
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


def scan_segment(update: Callable[[Any, Any], tuple[Any, dict]]):
    """``segment(state, hparams, num_updates)`` scanning ``update(state, hparams)``."""

    def segment(state, hparams, num_updates: int):
        n = V.require_positive_int("num_updates", num_updates)
        return jax.lax.scan(lambda s, _: update(s, hparams), state, None, length=n)

    return segment


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
            return agent.segment(agent.init(key, hparams), hparams, agent.num_updates)

        return train

    every = V.require_positive_int("eval_every", eval_every)
    if agent.num_updates % every:
        raise ValueError(f"eval_every={every} must divide the agent's num_updates={agent.num_updates}")
    n_seg = agent.num_updates // every

    def train_with_eval(key, hparams):
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
