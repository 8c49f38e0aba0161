"""Collecting offline datasets through the rollout engine (the D4RL recipe, O-DICE sheet §7).

Everything steps the environment with :func:`rlsuite.core.rollout.init_rollout` +
:func:`rlsuite.core.rollout.rollout` (step-batched, auto-reset, ``next_obs`` = pre-reset
successor, ``terminated`` / ``truncated`` apart).  ``N`` envs run in parallel; their streams are
laid out env after env, so every episode is a contiguous block.  The last step of each env's
stream, if its episode is still running, is flagged ``timeouts`` (a cut trajectory, D4RL's
convention), so ``timeouts`` = time limit *or* cut.

Dataset kinds (:func:`build_kind`):

| kind | construction here |
|---|---|
| ``random`` | a randomly initialised policy network (``rlsuite.core.networks.ActorCritic``, the same (64, 64) tanh layout PPO starts from, Gaussian / categorical head, log-std 0), sampled stochastically.  ``random_policy="uniform"`` uses uniformly random actions instead (what the *reference* return uses). |
| ``medium`` | one PPO run (:mod:`rlsuite.agents.ppo`) trained in segments; after every segment the stochastic policy is evaluated on ``eval_episodes`` episodes; the medium policy is the first snapshot whose normalised score (random / expert references of this env) reaches ``medium_fraction`` = 1/3. |
| ``expert`` | the final policy of that PPO run (its budget is ``ppo_steps``: on CPU far from D4RL's "fully trained"; the reported expert return says how good it is). |
| ``medium-replay`` | PPO's own rollouts are not exported, so the replay is *re-collected*: segment ``i`` of training (up to the medium snapshot) is replayed with the snapshot taken at the start of that segment, with PPO's ``num_envs`` and the same number of transitions per segment as PPO collected (scaled down equally if that exceeds ``size``); the envs' carry runs on across segments, so episodes span policy changes as in PPO's buffer. |
| ``medium-expert`` | medium cut at the end of its last complete trajectory, followed by expert (D4RL). |

The PPO run goes through the agent protocol (``rlsuite.agents.get("ppo").make``, ``agent.segment``
in a host loop); its snapshots are cached as orbax checkpoints (:mod:`rlsuite.core.checkpoint`) in
``<cache_dir>/ppo_<env>_seed<s>_steps<n>/checkpoints/<updates>``.  :func:`stream_to_dataset` is the
one conversion of engine transitions into a :class:`Dataset`.

Continuous actions are clipped into the action space before they are stored (the env executes
the clipped action; PPO trains through :class:`rlsuite.envs.wrappers.ClipAction` too);
``log_probs`` is the behaviour log-probability of the *unclipped* sample (diagnostics only).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
import time
import types
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.core import checkpoint
from rlsuite.core import networks as nets
from rlsuite.core import validate as V
from rlsuite.core.rollout import init_rollout, rollout, rollout_episodes, strong_types
from rlsuite.data import references as refs
from rlsuite.data.dataset import Dataset

KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert")

Progress = Callable[[str, float, float], None]  # (message, done, total)


def _noop_progress(msg: str, done: float, total: float) -> None:
    pass


# ----------------------------------------------------------------------------- policies


def clip_policy(policy, env, env_params):
    """Wrap ``policy`` so continuous actions are clipped into the Box bounds (stored clipped)."""
    from gymnax.environments import spaces

    space = env.action_space(env_params)
    if not isinstance(space, spaces.Box):
        return policy
    low = jnp.asarray(space.low, jnp.float32)
    high = jnp.asarray(space.high, jnp.float32)

    def clipped(params, obs, key):
        a, extras = policy(params, obs, key)
        return jnp.clip(a, low, high), extras

    return clipped


def random_network_policy(env, env_params, key: jax.Array, hidden=(64, 64)):
    """``(policy, params)``: a freshly initialised ActorCritic, sampled stochastically."""
    discrete, dim = nets.action_info(env.action_space(env_params))
    net = nets.ActorCritic(dim, discrete, tuple(hidden), "tanh")
    obs_shape = tuple(env.observation_space(env_params).shape)
    params = net.init(key, jnp.zeros((1,) + obs_shape, jnp.float32))

    def policy(p, obs, k):
        dist, _ = net.apply(p, obs)
        a = nets.dist_sample(discrete, k, dist)
        return a, {"log_prob": nets.dist_log_prob(discrete, dist, a)}

    return policy, params


# ----------------------------------------------------------------------------- collection


def stream_to_dataset(chunks, metadata: dict | None = None, size: int | None = None) -> Dataset:
    """THE stream-to-dataset collector: engine transitions ``[T, N]`` -> an env-major Dataset.

    ``chunks`` is one :class:`~rlsuite.core.types.Transition` with leaves ``[T, N, ...]`` (what
    :func:`rlsuite.core.rollout.rollout` returns) or a list of them consecutive in time (the
    envs' carry ran on between chunks).  Env ``i``'s stream becomes one contiguous block, so
    every episode is contiguous; ``terminals`` = ``terminated``, ``timeouts`` = ``truncated``,
    and the last step of each env's stream, if its episode is still running, is flagged
    ``timeouts`` (a cut trajectory, D4RL's convention).  ``extras["log_prob"]`` (if the policy
    returned it) is stored as ``log_probs``.  ``size`` keeps the first ``size`` rows (closing the
    last one as a cut).  Returns a validated Dataset.
    """
    chunks = [jax.tree.map(np.asarray, c) for c in (chunks if isinstance(chunks, (list, tuple)) else [chunks])]
    cat = lambda f: np.concatenate([f(c) for c in chunks], 0)  # noqa: E731
    obs = cat(lambda c: c.obs)
    T, N = obs.shape[:2]

    def flat(x):  # [T, N, ...] -> [N*T, ...] env-major
        return np.swapaxes(x, 0, 1).reshape((N * T,) + x.shape[2:])

    term = cat(lambda c: c.terminated).astype(bool)
    trunc = cat(lambda c: c.truncated).astype(bool)
    cut = np.zeros_like(trunc)
    cut[-1] = ~(term[-1] | trunc[-1])
    arrays = dict(
        observations=flat(obs),
        actions=flat(cat(lambda c: c.action)),
        rewards=flat(cat(lambda c: c.reward)),
        next_observations=flat(cat(lambda c: c.next_obs)),
        terminals=flat(term),
        timeouts=flat(trunc | cut),
    )
    ex = chunks[0].extras
    if isinstance(ex, dict) and "log_prob" in ex:
        arrays["log_probs"] = flat(cat(lambda c: c.extras["log_prob"]))
    if size is not None and size < N * T:
        arrays = {k: v[:size] for k, v in arrays.items()}
        if not (arrays["terminals"][-1] or arrays["timeouts"][-1]):
            arrays["timeouts"][-1] = True
    return Dataset.from_arrays(metadata=metadata, **arrays)


def _numpy_transition(tr):
    return jax.tree.map(np.asarray, tr)


class Collector:
    """A jitted ``rollout`` of ``chunk_steps`` steps for one env / policy, reusable across params
    (compile once per (env, policy, num_envs, chunk_steps))."""

    def __init__(self, env, env_params, policy, num_envs: int, chunk_steps: int):
        self.env, self.env_params, self.num_envs, self.chunk_steps = env, env_params, int(num_envs), int(chunk_steps)
        self.policy = clip_policy(policy, env, env_params)
        self._init = jax.jit(lambda k: strong_types(init_rollout(env, env_params, k, self.num_envs)))

        def roll(pp, c):
            c, tr = rollout(env, env_params, self.policy, pp, c, self.chunk_steps)
            return strong_types(c), tr

        self._roll = jax.jit(roll)

    def init(self, key):
        return self._init(key)

    def run(self, policy_params, carry, num_steps: int, progress: Progress = _noop_progress, label: str = "",
            done0: float = 0, total: float | None = None):
        """Roll ``num_steps`` steps per env (rounded up to whole chunks); returns (carry, chunks)."""
        chunks = []
        n_chunks = max(1, math.ceil(num_steps / self.chunk_steps))
        total = total if total is not None else n_chunks * self.chunk_steps * self.num_envs
        for i in range(n_chunks):
            carry, tr = self._roll(policy_params, carry)
            chunks.append(_numpy_transition(tr))
            progress(label, done0 + (i + 1) * self.chunk_steps * self.num_envs, total)
        return carry, chunks


def env_metadata(env_id: str, env, env_params, env_kwargs: dict | None = None) -> dict[str, Any]:
    discrete, dim = nets.action_info(env.action_space(env_params))
    md: dict[str, Any] = {
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "obs_shape": [int(s) for s in env.observation_space(env_params).shape],
        "discrete_actions": bool(discrete),
        "max_episode_steps": int(getattr(env_params, "max_steps_in_episode", 0)) or None,
    }
    if discrete:
        md["num_actions"] = int(dim)
    else:
        space = env.action_space(env_params)
        md["action_dim"] = int(dim)
        md["action_low"] = np.broadcast_to(np.asarray(space.low, np.float32), (dim,)).tolist()
        md["action_high"] = np.broadcast_to(np.asarray(space.high, np.float32), (dim,)).tolist()
    return md


def collect(
    env, env_params, policy, policy_params, key: jax.Array, size: int, num_envs: int = 64,
    chunk_steps: int | None = None, metadata: dict | None = None, progress: Progress = _noop_progress,
    label: str = "collect", collector: Collector | None = None,
) -> Dataset:
    """Collect ``size`` transitions of ``policy`` through the engine (``num_envs`` in parallel).

    ``policy(policy_params, obs[N], key) -> (action[N], extras)``; if ``extras`` has a
    ``"log_prob"`` entry it is stored as ``log_probs``.  Returns a validated :class:`Dataset`.
    """
    size = V.require_positive_int("size", size)
    num_envs = max(1, min(int(num_envs), size))
    steps = math.ceil(size / num_envs)
    if chunk_steps is None:  # equal chunks of at most ~25k transitions (progress granularity)
        max_chunk = min(max(1, 25_000 // num_envs), 1000)
        chunk_steps = math.ceil(steps / math.ceil(steps / max_chunk))
    steps = math.ceil(steps / chunk_steps) * chunk_steps
    col = collector or Collector(env, env_params, policy, num_envs, chunk_steps)
    carry = col.init(key)
    _, chunks = col.run(policy_params, carry, steps, progress, label, total=steps * num_envs)
    md = env_metadata(getattr(env, "name", type(env).__name__), env, env_params)
    md.update(metadata or {})
    return stream_to_dataset(chunks, md, size)


# ----------------------------------------------------------------------------- PPO run


def default_ppo_config(env, env_params, ppo_steps: int, **overrides):
    """PPO config used for dataset policies.

    Continuous actions: PureJaxRL's ``brax`` preset (obs / reward normalisation, lr 3e-4, no
    entropy bonus) resized for a CPU budget of ~1e5-1e6 env steps, following the PPO paper's
    MuJoCo setting (2048 steps per update, 10 epochs, 64x64 tanh networks): 64 envs x 32 steps,
    8 minibatches of 256, 10 epochs, learning rate annealed.  (The preset's 2048 envs x 10
    steps gives too few updates on such a budget, and 256x256 networks made the update, not the
    physics, the bottleneck on 2 CPU cores.)  Discrete: the ``cartpole`` preset with 16 envs.
    ``overrides`` replace any field.
    """
    from rlsuite.agents import ppo

    discrete, _ = nets.action_info(env.action_space(env_params))
    if discrete:
        base = dict(num_envs=16, num_steps=128)
        return ppo.PPOConfig.preset("cartpole", total_timesteps=int(ppo_steps), **{**base, **overrides})
    base = dict(num_envs=64, num_steps=32, num_minibatches=8, update_epochs=10, anneal_lr=True, hidden=(64, 64))
    return ppo.PPOConfig.preset("brax", total_timesteps=int(ppo_steps), **{**base, **overrides})


@dataclasses.dataclass
class PPORun:
    """Snapshots of one segmented PPO run (host numpy), with their evaluation returns."""

    config: Any
    snapshots: list  # policy_params after 0, 1, ..., S segments (index 0 = initialisation)
    eval_returns: list  # mean return of the stochastic policy for every snapshot
    env_steps: list  # env steps of training done at every snapshot
    steps_per_segment: int
    train_seconds: float
    path: str | None = None
    """The snapshot directory (orbax checkpoints ``path/checkpoints/<updates>``), if saved."""
    updates: list = dataclasses.field(default_factory=list)
    """PPO updates done at every snapshot (the checkpoint step)."""

    def medium_index(self, ref_random: float, ref_expert: float, fraction: float = 1 / 3) -> int:
        """First snapshot whose normalised score reaches ``100 * fraction`` (last one if none)."""
        target = ref_random + fraction * (ref_expert - ref_random)
        for i, r in enumerate(self.eval_returns):
            if i > 0 and r >= target:
                return i
        return len(self.eval_returns) - 1

    def checkpoint(self, index: int) -> str:
        """Where snapshot ``index`` is stored (for dataset metadata)."""
        i = index % len(self.snapshots)
        if self.path is None:
            return f"(not saved: no cache_dir) #{i} (after {self.env_steps[i]} PPO env steps)"
        return f"{os.path.join(self.path, 'checkpoints', str(self.updates[i]))} #{i} (after {self.env_steps[i]} PPO env steps)"


PPO_PRESETS = ("cpu", "brax")


def ppo_config_for(preset: str, env, env_params, ppo_steps: int):
    """The dataset policy's PPO config: ``'cpu'`` = :func:`default_ppo_config`, ``'brax'`` =
    PureJaxRL's ``brax`` preset unchanged except ``total_timesteps = ppo_steps``."""
    from rlsuite.agents import ppo

    if preset == "cpu":
        return default_ppo_config(env, env_params, ppo_steps)
    if preset == "brax":
        return ppo.PPOConfig.preset("brax", total_timesteps=int(ppo_steps))
    raise ValueError(f"unknown ppo_preset {preset!r}; choose one of {PPO_PRESETS}")


def _ppo_cache_dir(cache_root: str, env_id: str, env_kwargs: dict, seed: int, ppo_steps: int,
                   preset: str = "cpu") -> str:
    tag = refs.reference_key(env_id, env_kwargs).replace(":", "-").replace("|", "_").replace("=", "-")
    suffix = "" if preset == "cpu" else f"_{preset}"  # 'cpu' keeps the pre-existing cache paths
    return os.path.join(cache_root, f"ppo_{tag}_seed{seed}_steps{ppo_steps}{suffix}")


def _config_json(config) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


def _save_run(run: PPORun, path: str) -> None:
    """Snapshots as orbax checkpoints (step = PPO updates done), the rest in ``run.json``
    (written last: a directory without it is an unfinished save and is not reused)."""
    os.makedirs(path, exist_ok=True)
    info_path = os.path.join(path, "run.json")
    if os.path.exists(info_path):
        os.remove(info_path)
    for step, snap in zip(run.updates, run.snapshots, strict=True):
        checkpoint.save(path, step, snap, keep=None)
    info = {
        "format": "orbax",
        "config": _config_json(run.config),
        "eval_returns": run.eval_returns,
        "env_steps": run.env_steps,
        "updates": run.updates,
        "steps_per_segment": run.steps_per_segment,
        "train_seconds": run.train_seconds,
    }
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)


def _load_run(path: str, template, config, updates: list) -> PPORun | None:
    """The cached run in ``path`` if it was saved for this config and segmentation, else None."""
    try:
        with open(os.path.join(path, "run.json")) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if info.get("format") != "orbax" or info.get("config") != _config_json(config) or info.get("updates") != updates:
        return None
    if checkpoint.list_checkpoints(path) != sorted(set(updates)):
        return None
    try:
        snaps = [jax.device_get(checkpoint.restore(path, template, step=u)[0]) for u in updates]
    except (FileNotFoundError, ValueError):
        return None
    return PPORun(config, snaps, info["eval_returns"], info["env_steps"], info["steps_per_segment"],
                  info["train_seconds"], path, list(updates))


def train_ppo(
    env, env_params, key: jax.Array, ppo_steps: int, num_segments: int = 40, eval_episodes: int = 10,
    config=None, progress: Progress = _noop_progress, cache_dir: str | None = None,
) -> PPORun:
    """Train PPO for ``ppo_steps`` env steps in ``num_segments`` segments, keeping a policy
    snapshot and a stochastic-policy evaluation (``eval_episodes`` episodes) after every segment.

    PPO runs through the agent protocol (``rlsuite.agents.get("ppo").make(...)``, ``agent.segment``
    in a host loop); segments have ``num_updates // num_segments`` updates (the remainder of
    ``num_updates`` is not trained).  The medium selection evaluates the *stochastic* policy (the
    one that collects the data), not the agent's deterministic ``evaluate``.  With ``cache_dir``,
    the snapshots are saved there as orbax checkpoints (:mod:`rlsuite.core.checkpoint`, one per
    snapshot, step = updates done) and reused when the config and segmentation match.
    """
    from rlsuite import agents
    from rlsuite.agents import ppo

    V.require_positive_int("ppo_steps", ppo_steps)
    V.require_positive_int("num_segments", num_segments)
    V.require_positive_int("eval_episodes", eval_episodes)
    config = config or default_ppo_config(env, env_params, ppo_steps)
    agent = agents.get("ppo").make(config, env, env_params)
    hp = ppo.default_hparams(config)
    k_init, k_eval = jax.random.split(key)
    ups = max(1, agent.num_updates // num_segments)
    n_seg = max(1, agent.num_updates // ups)
    updates = [i * ups for i in range(n_seg + 1)]
    state = jax.jit(lambda k, h: strong_types(agent.init(k, h)))(k_init, hp)
    template = jax.device_get(ppo.policy_params(state))
    if cache_dir is not None:
        cached = _load_run(cache_dir, template, config, updates)
        if cached is not None:
            progress("PPO (cached)", 1, 1)
            return cached
    policy = clip_policy(ppo.make_policy(config, env, env_params, deterministic=False), env, env_params)
    horizon = refs.max_episode_steps(env, env_params)
    eval_fn = jax.jit(lambda pp, k: rollout_episodes(env, env_params, policy, pp, k, eval_episodes, horizon).episode_return)
    seg = jax.jit(lambda st, h: (lambda a, m: (strong_types(a), m))(*agent.segment(st, h, ups)))
    steps_per_seg = ups * agent.steps_per_update
    snaps, evals, steps = [template], [], [0]
    evals.append(float(np.mean(np.asarray(eval_fn(template, jax.random.fold_in(k_eval, 0))))))
    t0 = time.time()
    for i in range(n_seg):
        state, _ = seg(state, hp)
        pp = jax.device_get(ppo.policy_params(state))
        snaps.append(pp)
        evals.append(float(np.mean(np.asarray(eval_fn(pp, jax.random.fold_in(k_eval, i + 1))))))
        steps.append((i + 1) * steps_per_seg)
        progress(f"PPO segment {i + 1}/{n_seg} eval return {evals[-1]:.1f}", (i + 1) * steps_per_seg, n_seg * steps_per_seg)
    run = PPORun(config, snaps, evals, steps, steps_per_seg, time.time() - t0, cache_dir, updates)
    if cache_dir is not None:
        _save_run(run, cache_dir)
    return run


# ----------------------------------------------------------------------------- build


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclasses.dataclass
class BuildSpec:
    """Everything that determines a built dataset (recorded in its metadata)."""

    env_id: str
    kind: str
    size: int
    seed: int = 0
    ppo_steps: int = 1_000_000
    num_envs: int = 64
    num_segments: int = 40
    eval_episodes: int = 10
    ref_episodes: int = 100
    medium_fraction: float = 1 / 3
    random_policy: str = "network"
    ppo_preset: str = "cpu"
    """'cpu': :func:`default_ppo_config` (64x64, 64 envs x 32 steps, sized for ~1e5-1e6 env steps
    on a CPU); 'brax': PureJaxRL's full ``PPOConfig.preset("brax")`` (256x256, 2048 envs x 10
    steps) with ``total_timesteps = ppo_steps``, for stronger experts (continuous actions only)."""
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    cache_dir: str | None = None  # PPO runs + reference file live here
    command: str | None = None

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; choose one of {KINDS}")
        V.positive_ints(self, "size", "ppo_steps", "num_envs", "num_segments", "eval_episodes", "ref_episodes")
        V.choice(self, "random_policy", ("network", "uniform"))
        V.choice(self, "ppo_preset", PPO_PRESETS)
        V.in_range(self, "medium_fraction", 0.0, 1.0, lo_open=True, hi_open=True)


class Builder:
    """Builds the D4RL kinds for one env, sharing the PPO run, references and compiled rollouts.

    A ``random`` dataset records the expert reference only if it is already known (cached in
    ``cache_dir`` or computed by this builder): call :meth:`expert_reference` first to have it.
    """

    def __init__(self, spec: BuildSpec, progress: Progress = _noop_progress):
        from rlsuite.envs import make

        spec.validate()
        self.spec = spec
        self.progress = progress
        self.env, self.env_params = make(spec.env_id, **spec.env_kwargs)
        if getattr(self.env_params, "max_steps_in_episode", None) is None:
            raise ValueError(f"{spec.env_id} has no time limit (max_steps_in_episode); cannot build datasets")
        self.key = jax.random.PRNGKey(spec.seed)
        self._run: PPORun | None = None
        self._refs: dict | None = None
        self._cache: dict[str, Dataset] = {}
        self._collectors: dict = {}
        self._ppo_pol = None

    # references ------------------------------------------------------------
    @property
    def ref_file(self) -> str | None:
        return None if self.spec.cache_dir is None else os.path.join(self.spec.cache_dir, "references.json")

    def _ref_key(self) -> str:
        return refs.reference_key(self.spec.env_id, self.spec.env_kwargs)

    def random_reference(self) -> float:
        if self._refs is None:
            stored = refs.load_references(self.ref_file).get(self._ref_key(), {}) if self.ref_file else {}
            self._refs = dict(stored)
        if "random" not in self._refs or self._refs.get("random_episodes") != self.spec.ref_episodes:
            self.progress("reference: uniform random actions", 0, 1)
            r = refs.random_reference(self.env, self.env_params, seed=10_000 + self.spec.seed, num_episodes=self.spec.ref_episodes)
            self._refs.update(random=r["mean"], random_std=r["std"], random_episodes=r["episodes"], random_seed=r["seed"])
            if self.ref_file:
                refs.save_references(self.ref_file, self._ref_key(), **self._refs)
        return float(self._refs["random"])

    def expert_reference(self) -> float:
        run = self.ppo_run()
        tag = f"ppo seed {self.spec.seed} steps {self.spec.ppo_steps}"
        self.random_reference()
        if self._refs.get("expert_policy") != tag or self._refs.get("expert_episodes") != self.spec.ref_episodes:
            self.progress("reference: expert policy", 0, 1)
            pol = clip_policy(self._ppo_policy(), self.env, self.env_params)
            r = refs.policy_reference(self.env, self.env_params, pol, run.snapshots[-1],
                                      seed=20_000 + self.spec.seed, num_episodes=self.spec.ref_episodes)
            self._refs.update(expert=r["mean"], expert_std=r["std"], expert_episodes=r["episodes"],
                              expert_seed=r["seed"], expert_policy=tag, expert_checkpoint=self._ckpt(-1))
            if self.ref_file:
                refs.save_references(self.ref_file, self._ref_key(), **self._refs)
        return float(self._refs["expert"])

    # PPO -------------------------------------------------------------------
    def ppo_run(self) -> PPORun:
        if self._run is None:
            s = self.spec
            cache = None if s.cache_dir is None else _ppo_cache_dir(
                s.cache_dir, s.env_id, s.env_kwargs, s.seed, s.ppo_steps, s.ppo_preset)
            config = ppo_config_for(s.ppo_preset, self.env, self.env_params, s.ppo_steps)
            self._run = train_ppo(self.env, self.env_params, jax.random.fold_in(self.key, 1), s.ppo_steps,
                                  s.num_segments, s.eval_episodes, progress=self.progress, cache_dir=cache,
                                  config=config)
        return self._run

    def _ckpt(self, index: int) -> str:
        return self.ppo_run().checkpoint(index)

    def medium_index(self) -> int:
        return self.ppo_run().medium_index(self.random_reference(), self.expert_reference(), self.spec.medium_fraction)

    # datasets --------------------------------------------------------------
    def _metadata(self, kind: str, **extra) -> dict[str, Any]:
        s = self.spec
        md = env_metadata(s.env_id, self.env, self.env_params, s.env_kwargs)
        md.update(kind=kind, seed=s.seed, created=_now(), command=s.command, rlsuite_format=1)
        md.update(extra)
        return md

    def _finish(self, ds: Dataset) -> Dataset:
        md = dict(ds.metadata)
        md.update(ds.return_stats())
        md["ref_random_return"] = self.random_reference()
        md["ref_random_info"] = f"uniform random actions, {self._refs['random_episodes']} episodes, seed {self._refs['random_seed']}"
        if ds.metadata.get("kind") != "random" or self._run is not None:
            self.expert_reference()
        if "expert" in self._refs:  # a random dataset takes the expert reference if one is known
            md["ref_expert_return"] = float(self._refs["expert"])
            md["ref_expert_info"] = (f"stochastic expert policy ({self._refs['expert_policy']}), "
                                     f"{self._refs['expert_episodes']} episodes, seed {self._refs['expert_seed']}, "
                                     f"checkpoint {self._refs.get('expert_checkpoint')}")
        md["ref_source"] = "rlsuite"
        return ds.replace(metadata=md)

    def build(self, kind: str) -> Dataset:
        if kind not in KINDS:
            raise ValueError(f"unknown dataset kind {kind!r}; choose one of {KINDS}")
        if kind not in self._cache:
            self._cache[kind] = self._finish(getattr(self, "_" + kind.replace("-", "_"))())
        return self._cache[kind]

    def _collector(self, policy_fn, num_envs: int, chunk_steps: int) -> Collector:
        """One compiled collector per (policy, num_envs, chunk): medium and expert share one."""
        key = (id(policy_fn), num_envs, chunk_steps)
        if key not in self._collectors:
            self._collectors[key] = Collector(self.env, self.env_params, policy_fn, num_envs, chunk_steps)
        return self._collectors[key]

    def _collect(self, kind, policy_fn, params, key, **md):
        s = self.spec
        num_envs = max(1, min(s.num_envs, s.size))
        steps = math.ceil(s.size / num_envs)
        chunk = math.ceil(steps / math.ceil(steps / min(max(1, 25_000 // num_envs), 1000)))
        return collect(self.env, self.env_params, policy_fn, params, key, s.size, num_envs, chunk_steps=chunk,
                       metadata=self._metadata(kind, size=s.size, num_envs=s.num_envs, **md),
                       progress=self.progress, label=f"collect {kind}",
                       collector=self._collector(policy_fn, num_envs, chunk))

    def _random(self) -> Dataset:
        k_net, k_col = jax.random.split(jax.random.fold_in(self.key, 2))
        if self.spec.random_policy == "uniform":
            pol, params = refs.uniform_random_policy(self.env, self.env_params), None
            desc = "uniform random actions"
        else:
            pol, params = random_network_policy(self.env, self.env_params, k_net)
            desc = "randomly initialised ActorCritic (64, 64) tanh, stochastic"
        return self._collect("random", pol, params, k_col, policy=desc, policy_checkpoint=None)

    def _ppo_policy(self):
        from rlsuite.agents import ppo

        if self._ppo_pol is None:
            self._ppo_pol = ppo.make_policy(self.ppo_run().config, self.env, self.env_params, deterministic=False)
        return self._ppo_pol

    def _ppo_md(self, index: int) -> dict:
        run = self.ppo_run()
        i = index % len(run.snapshots)
        return dict(
            policy=f"PPO stochastic policy, snapshot {i}/{len(run.snapshots) - 1}",
            policy_checkpoint=self._ckpt(i),
            policy_eval_return=run.eval_returns[i],
            ppo_steps=self.spec.ppo_steps,
            ppo_env_steps_at_snapshot=run.env_steps[i],
            ppo_config=str(run.config),
            ppo_eval_curve=[[int(a), float(b)] for a, b in zip(run.env_steps, run.eval_returns, strict=True)],
            ppo_train_seconds=run.train_seconds,
        )

    def _expert(self) -> Dataset:
        run = self.ppo_run()
        return self._collect("expert", self._ppo_policy(), run.snapshots[-1], jax.random.fold_in(self.key, 3),
                             **self._ppo_md(-1))

    def _medium(self) -> Dataset:
        run = self.ppo_run()
        i = self.medium_index()
        return self._collect("medium", self._ppo_policy(), run.snapshots[i], jax.random.fold_in(self.key, 4),
                             medium_fraction=self.spec.medium_fraction, **self._ppo_md(i))

    def _medium_replay(self) -> Dataset:
        run = self.ppo_run()
        m = self.medium_index()
        cfg = run.config
        per_seg = run.steps_per_segment
        if m * per_seg > self.spec.size:
            per_seg = max(cfg.num_envs, self.spec.size // m)
        steps_per_env = max(1, per_seg // cfg.num_envs)
        col = self._collector(self._ppo_policy(), cfg.num_envs, steps_per_env)
        carry = col.init(jax.random.fold_in(self.key, 5))
        chunks = []
        total = m * steps_per_env * cfg.num_envs
        for i in range(m):  # segment i+1 of training acted with snapshot i
            carry, ch = col.run(run.snapshots[i], carry, steps_per_env, self.progress,
                                f"collect medium-replay (segment {i + 1}/{m})", i * steps_per_env * cfg.num_envs, total)
            chunks += ch
        md = self._metadata(
            "medium-replay", size=total, num_envs=cfg.num_envs, replay_segments=m,
            replay_transitions_per_segment=steps_per_env * cfg.num_envs,
            ppo_transitions_per_segment=run.steps_per_segment,
            policy=f"PPO snapshots 0..{m - 1} (one per training segment, up to the medium snapshot {m})",
            policy_checkpoint=f"{self._ckpt(0)} .. {self._ckpt(m - 1)}",
            ppo_steps=self.spec.ppo_steps, ppo_config=str(cfg),
            ppo_eval_curve=[[int(a), float(b)] for a, b in zip(run.env_steps, run.eval_returns, strict=True)],
            deviation="re-collected with segment snapshots (PPO's rollouts are not exported)",
        )
        return stream_to_dataset(chunks, md, None)

    def _medium_expert(self) -> Dataset:
        med = self.build("medium").cut_to_last_complete()
        exp = self.build("expert")
        md = self._metadata(
            "medium-expert", size=len(med) + len(exp),
            parts=[{"kind": "medium", "size": len(med), "policy_checkpoint": med.metadata.get("policy_checkpoint")},
                   {"kind": "expert", "size": len(exp), "policy_checkpoint": exp.metadata.get("policy_checkpoint")}],
            policy="medium (cut at its last complete trajectory) followed by expert",
            policy_checkpoint=f"{med.metadata.get('policy_checkpoint')} + {exp.metadata.get('policy_checkpoint')}",
        )
        return Dataset.concatenate([med, exp], metadata=md)


def build(spec: BuildSpec, progress: Progress = _noop_progress) -> Dataset:
    """Build one dataset kind (see the module docstring)."""
    return Builder(spec, progress).build(spec.kind)


class _CallableModule(types.ModuleType):
    """``rlsuite.data.collect`` names both this module and its :func:`collect` function: the package
    exports the function lazily, but importing the submodule (``rlsuite.data.random_network_policy``
    does) rebinds the package attribute ``collect`` to the module.  Calling the module calls the
    function, so ``rlsuite.data.collect(...)`` works either way."""

    def __call__(self, *args, **kwargs):
        return collect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
