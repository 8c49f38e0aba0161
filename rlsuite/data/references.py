"""Reference returns and the D4RL-style normalised score.

``score = 100 * (R - R_random) / (R_expert - R_random)`` (O-DICE sheet §5).

- ``R_random``: mean return of **uniformly random actions** over 100 seeded episodes
  (:func:`random_reference`), run through the rollout engine's fixed-horizon episode mode.
- ``R_expert``: mean return of the expert policy (the stochastic policy that generated the expert
  dataset) over 100 episodes (:func:`policy_reference`).

References are measured per environment *and* per configuration (Brax backend, episode length)
and stored with every dataset (``metadata["ref_random_return"]``, ``["ref_expert_return"]``).
A small registry file (``references.json`` next to the datasets, see :func:`save_references`)
lets datasets of the same env share them.  The D4RL MuJoCo numbers (:data:`D4RL_REFERENCES`) are
kept only for loading genuine D4RL files; they are **never** applied to Brax returns
(:func:`normalized_score` refuses a ``brax:`` id with D4RL references).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.core.rollout import rollout_episodes

# D4RL (gym MuJoCo, v2 inherits v0) reference returns, O-DICE sheet §5.  Only for D4RL files.
D4RL_REFERENCES: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    "antmaze": (0.0, 1.0),
}


def d4rl_reference(name: str) -> tuple[float, float]:
    """``(random, expert)`` for a D4RL dataset name such as ``"hopper-medium-v2"``."""
    base = name.split("/")[-1].split("-")[0].lower()
    if base not in D4RL_REFERENCES:
        raise ValueError(f"no D4RL reference returns for {name!r}; known: {sorted(D4RL_REFERENCES)}")
    return D4RL_REFERENCES[base]


def normalized_score(returns, ref_random: float, ref_expert: float) -> np.ndarray | float:
    """``100 * (R - R_random) / (R_expert - R_random)`` (elementwise for arrays)."""
    if ref_random is None or ref_expert is None:
        raise ValueError("normalized score needs both reference returns (random and expert)")
    if not np.isfinite(ref_random) or not np.isfinite(ref_expert) or ref_expert == ref_random:
        raise ValueError(f"invalid reference returns: random={ref_random}, expert={ref_expert}")
    out = 100.0 * (np.asarray(returns, np.float64) - ref_random) / (ref_expert - ref_random)
    return float(out) if np.ndim(out) == 0 else out


def dataset_normalized_score(dataset, returns=None) -> np.ndarray | float:
    """Normalise ``returns`` (default: the dataset's complete-episode mean return) with the
    references stored in ``dataset.metadata``.  A dataset without a complete episode has no
    defined score: ``nan`` with a ``RuntimeWarning`` (partial returns are not used)."""
    md = dataset.metadata
    env_id = str(md.get("env_id", ""))
    src = md.get("ref_source", "")
    if env_id.startswith("brax:") and src == "d4rl":
        raise ValueError("refusing to normalise Brax returns with D4RL MuJoCo references")
    if returns is None:
        rets = dataset.episode_returns(complete_only=True)
        if rets.size == 0:  # partial returns are not comparable with the episode-return references
            import warnings

            warnings.warn(f"dataset {md.get('loaded_from') or env_id!r} has no complete episode: its normalised "
                          "score is undefined (nan)", RuntimeWarning, stacklevel=2)
            return float("nan")
        returns = float(rets.mean())
    return normalized_score(returns, md.get("ref_random_return"), md.get("ref_expert_return"))


def uniform_random_policy(env, env_params):
    """``policy(params, obs[N], key) -> (action[N, ...], {"log_prob": [N]})`` with uniformly random
    actions from the env's action space (Box: uniform in [low, high]; Discrete: uniform index)."""
    from gymnax.environments import spaces

    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        n = int(space.n)

        def policy(_, obs, key):
            a = jax.random.randint(key, (obs.shape[0],), 0, n)
            return a, {"log_prob": jnp.full((obs.shape[0],), -np.log(n), jnp.float32)}

        return policy
    if isinstance(space, spaces.Box):
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
        if not (np.all(np.isfinite(np.asarray(low))) and np.all(np.isfinite(np.asarray(high)))):
            raise ValueError("uniform random actions need a bounded Box action space")
        logp = -float(jnp.sum(jnp.log(high - low)))

        def policy(_, obs, key):
            a = jax.random.uniform(key, (obs.shape[0],) + tuple(space.shape), minval=low, maxval=high)
            return a, {"log_prob": jnp.full((obs.shape[0],), logp, jnp.float32)}

        return policy
    raise ValueError(f"unsupported action space {type(space).__name__}")


def max_episode_steps(env, env_params) -> int:
    steps = getattr(env_params, "max_steps_in_episode", None)
    if steps is None:
        raise ValueError(f"{type(env).__name__} params have no max_steps_in_episode; pass horizon explicitly")
    return int(steps)


def policy_reference(
    env, env_params, policy, policy_params, seed: int = 0, num_episodes: int = 100, horizon: int | None = None,
    batch: int = 100,
) -> dict[str, float]:
    """Mean / std return of ``policy`` over ``num_episodes`` seeded episodes (engine episode mode,
    ``horizon`` default = the env's time limit), in batches of ``batch`` episodes."""
    horizon = horizon or max_episode_steps(env, env_params)
    fn = jax.jit(
        lambda pp, k, n: rollout_episodes(env, env_params, policy, pp, k, n, horizon).episode_return,
        static_argnums=2,
    )
    rets = []
    key = jax.random.PRNGKey(seed)
    left = num_episodes
    while left > 0:
        n = min(batch, left)
        key, k = jax.random.split(key)
        rets.append(np.asarray(fn(policy_params, k, n)))
        left -= n
    r = np.concatenate(rets)
    return {"mean": float(r.mean()), "std": float(r.std()), "episodes": int(r.size), "seed": int(seed)}


def random_reference(env, env_params, seed: int = 0, num_episodes: int = 100, horizon: int | None = None) -> dict[str, float]:
    """Mean return of uniformly random actions over ``num_episodes`` seeded episodes."""
    return policy_reference(env, env_params, uniform_random_policy(env, env_params), None, seed, num_episodes, horizon)


# ----------------------------------------------------------------------------- registry file


def reference_key(env_id: str, env_kwargs: dict | None = None) -> str:
    """Key that separates configurations of one env (``brax:hopper|backend=spring|episode_length=1000``)."""
    kw = env_kwargs or {}
    return env_id + "".join(f"|{k}={kw[k]}" for k in sorted(kw))


def load_references(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"reference file {path} is not valid JSON: {e}") from None


def save_references(path: str, key: str, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into entry ``key`` of the JSON reference file at ``path``."""
    refs = load_references(path)
    refs[key] = {**refs.get(key, {}), **values}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(refs, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return refs[key]
