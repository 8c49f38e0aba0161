"""Shared pieces of the O-DICE experiments: the Pendulum datasets and the vmapped-seeds runner.

- Pendulum-v1 datasets, collected through the rollout engine (``rlsuite.data.stream_to_dataset``)
  from a hand-written controller (energy-pumping swing-up + PD balance) with per-segment noise.
- :func:`train_seeds`: one ``jax.vmap`` over seeds (``rlsuite.core.sweep.seed_keys``: seed ``s``
  is ``PRNGKey(s)``) of ``rlsuite.core.agent.make_train`` for a registered offline agent; the
  prepared data (``module.prepare``) is passed into ``jit`` as an argument through
  ``module.make_from_prepared``, so large datasets are not baked into the program as constants.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite import agents
from rlsuite.core import sweep
from rlsuite.core.agent import make_train
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.data import offline, stream_to_dataset
from rlsuite.data import references as refs
from rlsuite.data.dataset import Dataset
from rlsuite.envs import make

SMOKE_OUT = "/tmp/rlsuite-smoke/odice"

# ============================================================================ Pendulum datasets


def pendulum_controller(obs):
    """Energy-pumping swing-up + PD balance for gymnax Pendulum-v1 (theta'' = 15 sin(theta) + 3u)."""
    c, s, w = obs[:, 0], obs[:, 1], obs[:, 2]
    th = jnp.arctan2(s, c)
    energy = 0.5 * w**2 + 15.0 * (c - 1.0)
    swing = jnp.where(energy < 0, 2.0 * jnp.sign(w + 1e-3), -2.0 * jnp.sign(w))
    u = jnp.where(c > 0.85, -(10.0 * th + 2.0 * w), swing)
    return jnp.clip(u, -2.0, 2.0)[:, None]


def noisy_controller(eps, obs, key):
    """With probability ``eps`` (per env and step) a uniform random torque, else the controller's."""
    k1, k2 = jax.random.split(key)
    a = pendulum_controller(obs)
    rnd = jax.random.uniform(k1, a.shape, minval=-2.0, maxval=2.0)
    use = jax.random.uniform(k2, (obs.shape[0], 1)) < eps
    return jnp.where(use, rnd, a), None


def collect_segments(env, env_params, eps_list, key, num_envs: int, steps_per_segment: int) -> Dataset:
    """Engine rollouts with a noise level per segment (the carry runs on across segments),
    converted by the one stream collector (env-major, cut ends flagged as time-outs)."""
    carry = init_rollout(env, env_params, key, num_envs)
    run = jax.jit(lambda c, eps: rollout(env, env_params, noisy_controller, eps, c, steps_per_segment))
    parts = []
    for eps in eps_list:
        carry, tr = run(carry, jnp.asarray(eps, jnp.float32))
        parts.append(tr)
    return stream_to_dataset(parts)


def pendulum_references(env, env_params, seed: int = 0, episodes: int = 100) -> dict:
    rand = refs.random_reference(env, env_params, seed=10_000 + seed, num_episodes=episodes)
    expert = refs.policy_reference(
        env, env_params, lambda p, o, k: (pendulum_controller(o), None), None, seed=20_000 + seed, num_episodes=episodes
    )
    return {"ref_random_return": rand["mean"], "ref_expert_return": expert["mean"], "ref_source": "rlsuite-controller"}


def pendulum_dataset(kind: str, size: int, seed: int = 0, references: dict | None = None) -> Dataset:
    """``medium`` (eps = 0.7), ``medium-replay`` (eps annealed 1.0 -> 0.7), ``expert`` (eps = 0),
    ``random`` (eps = 1); 10 envs x 10 segments of ``size // 100`` steps."""
    env, p = make("gymnax:Pendulum-v1")
    num_envs, segments = 10, 10
    steps = max(size // (num_envs * segments), 1)
    eps = {
        "medium": [0.7] * segments, "expert": [0.0] * segments, "random": [1.0] * segments,
        "medium-replay": list(np.linspace(1.0, 0.7, segments)),
    }[kind]
    ds = collect_segments(env, p, eps, jax.random.PRNGKey(seed + 1), num_envs, steps)
    md = {"env_id": "gymnax:Pendulum-v1", "kind": kind, "seed": seed, "max_episode_steps": int(p.max_steps_in_episode),
          "policy": "noisy energy/PD controller", "eps": [float(e) for e in eps]}
    md.update(references or pendulum_references(env, p, seed))
    return ds.with_metadata(**md)


def load_dataset(path: str) -> Dataset:
    """A Minari directory / id or a D4RL-layout HDF5 file (``rlsuite.data.load``)."""
    from rlsuite import data

    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset {path!r} does not exist (build it with experiments/odice/build_datasets.py)")
    return data.load(path)


# ============================================================================ running


def train_seeds(name: str, config, env, env_params, data, seeds, hparams=None) -> dict[str, np.ndarray]:
    """Train registered offline agent ``name`` for every seed in one ``jit(vmap)``.

    ``data``: a Dataset, or for O-DICE IL ``{"dataset": ..., "expert": ...}``.  Returns numpy
    metrics with leading axis ``[seeds]``: the ``eval_*`` curves (``eval_update`` says when) and
    every per-update metric at the evaluation points (the value of the update just before each
    evaluation; NaN at update 0).
    """
    entry = agents.get(name)
    if not isinstance(config, entry.config_cls):
        raise ValueError(f"agent {name!r} needs a {entry.config_name}, got {type(config).__name__}")
    mod = entry.load()
    hp = entry.default_hparams(config) if hparams is None else hparams
    prepared = mod.prepare(config, data, env, env_params)
    first = data["dataset"] if isinstance(data, dict) else data
    references = offline.references(first)
    every = config.eval_every

    def train(key, hp, prepared):
        agent = mod.make_from_prepared(config, env, env_params, prepared, references)
        _, m = make_train(agent, eval_every=every)(key, hp)
        out = {k: v for k, v in m.items() if k.startswith("eval_")}
        for k, v in m.items():
            if not k.startswith("eval_"):
                at = v.reshape((-1, every) + v.shape[1:])[:, -1].astype(jnp.float32)
                out[k] = jnp.concatenate([jnp.full((1,) + at.shape[1:], jnp.nan, at.dtype), at])
        return out

    m = jax.jit(jax.vmap(train, in_axes=(0, None, None)))(sweep.seed_keys(seeds), hp, prepared)
    return {k: np.asarray(v) for k, v in jax.block_until_ready(m).items()}
