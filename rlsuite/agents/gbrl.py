"""GBRL: actor-critic with gradient-boosted-tree policy and value, trained by PPO, A2C or AWR.

Fuhrer, Tessler, Dalal, "Gradient Boosting Reinforcement Learning" (arXiv:2407.08250; ICML 2025
version); reference implementation NVlabs ``gbrl`` / ``gbrl_sb3``; spec sheet ``papers/gbrl.md``.

The policy outputs (logits, or the Gaussian mean) and the value are the outputs of boosted oblivious
trees (:mod:`rlsuite.agents.trees`).  One update step = one functional-gradient step: forward the
minibatch, take the per-sample gradient ``g_i = dl_i/dF(s_i)`` of the loss with respect to the
ensemble outputs (``jax.grad`` of the *summed* per-sample losses, i.e. the reference's "mean loss
times N" scaling, sheet §5), fit one tree to ``(s_i, g_i)`` and append it with learning rate
``policy_lr`` on the policy slice and ``value_lr`` on the value slice.  With
``shared_tree_struct=True`` one ensemble carries ``A + 1`` outputs and its splits are chosen from
``[g_pi, vf_coef * g_v]``; with ``False`` policy and value are two ensembles fitted to ``g_pi`` and
``g_v``.  Continuous actions: the trees give the mean, the state-independent ``log_std`` is an
ordinary parameter trained by Adam on the mean-reduced loss.

The whole run is one jitted program (trees are fixed-size arrays; capacity = the planned number of
trees of the run, so a run of the configured length never drops a tree; extra updates beyond it
are refused tree by tree and counted in the metric ``trees_dropped``, never wrapped).  Acting,
GAE and reward normalisation are :mod:`rlsuite.agents.actor_critic`'s (the engine in
:mod:`rlsuite.core.rollout` is the only env loop); the "network" handed to that machinery is
:class:`TreeNet`, whose ``apply(params, obs)`` predicts with the ensembles.

Methods (``method``):
- ``ppo``: clipped surrogate on per-minibatch-normalised GAE advantages, one tree per minibatch per
  epoch (``update_epochs * num_minibatches`` trees per rollout);
- ``a2c``: ``-log pi(a|s) A``, one tree per rollout on the full batch;
- ``awr``: ``-min(exp(A / beta), max_weight) log pi(a|s)`` on raw GAE advantages, minibatch loop
  as PPO.
All add ``0.5 (V - target)^2`` (unclipped, as SB3's default) and ``- ent_coef * entropy``.

Defaults are the sheet's CartPole-v1 PPO-GBRL settings: 8 envs x 128 steps, batch 64
(16 minibatches), 1 epoch, policy / value lr 0.029 / 0.015, gamma 0.98, lambda 0.8, clip 0.2,
vf_coef 0.871923, entropy 0, depth 4, 250 quantile bins, cosine score, reward normalisation on,
observation normalisation off (trees are scale invariant), ``shared_tree_struct=True`` (set
explicitly, sheet §5: paper-era runs).

Deviations from the reference, with reasons:
- oblivious trees only (greedy depth-wise growth not implemented; oblivious is the reference's default;
  why and where it would go: :mod:`rlsuite.agents.trees`);
- learning rates are constant (no linear tree-lr or log-std-lr schedule) — one knob fewer to
  test; log-std Adam lr is constant ``log_std_lr`` (reference: linear 1.7e-3 -> 4.75e-4);
- no per-head gradient-norm clipping, no control variates, no per-feature score weights
  (off by default in the reference);
- AWR is on-policy: GAE advantages of the last rollout and the PPO minibatch loop, not the
  reference's replay buffer with 1000 policy / 200 value steps per phase (keeps it on the shared
  engine and one tree per minibatch);
- value loss is unclipped for every method (SB3 default ``clip_range_vf=None``);
- categorical candidates are the batch quantile values of the feature (category ids), not the
  top categories by mean squared gradient norm (see :mod:`rlsuite.agents.trees`);
- time-outs bootstrap from ``V(next_obs)`` (rlsuite convention), terminations do not;
- tree building is deterministic (the reference's GPU building is not).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rlsuite.agents import actor_critic as ac
from rlsuite.agents import trees as T
from rlsuite.core import networks as nets
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.core.normalize import RewardScaler, RunningStats
from rlsuite.core.rollout import init_rollout, rollout_episodes

METHODS = ("ppo", "a2c", "awr")
MAX_ENSEMBLE_BYTES = 2 * 2**30


@dataclasses.dataclass(frozen=True)
class GBRLConfig:
    """GBRL configuration (shape-setting fields; numeric hyper-parameters are in ``GBRLHParams``)."""

    method: str = "ppo"
    """ppo, a2c or awr: the loss whose output-gradients the trees fit."""
    total_timesteps: int = 200_000
    """Environment steps over all envs."""
    num_envs: int = 8
    """Parallel environments (vmapped)."""
    num_steps: int = 128
    """Steps per env per rollout."""
    update_epochs: int = 1
    """Passes over each rollout (ppo, awr); a2c always fits one tree per rollout."""
    num_minibatches: int = 16
    """Minibatches (= trees per ensemble) per epoch (ppo, awr); must divide num_envs * num_steps."""
    shared_tree_struct: bool = True
    """One ensemble with policy + value outputs (True) or separate policy and value ensembles."""
    max_depth: int = 4
    """Depth of every oblivious tree (2^depth leaves)."""
    n_bins: int = 250
    """Split candidates per feature per minibatch (capped at the minibatch size)."""
    split_score: str = "cosine"
    """cosine (raw gradients) or l2 (gradients standardised per output column)."""
    generator: str = "quantile"
    """Split candidates: quantile (batch quantiles) or uniform (equal width, min to max)."""
    categorical_features: Sequence[int] = ()
    """Indices of (flattened) observation features split by equality x == c."""
    min_data_in_leaf: int = 0
    """Refuse splits leaving fewer samples on a side of a non-empty node (0: off)."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch (ppo, a2c; awr uses raw advantages)."""
    normalize_reward: bool = True
    """Scale rewards by the running std of the discounted return (the reference: on)."""
    log_std_init: float = -2.0
    """Initial state-independent log-std (continuous actions)."""
    predict_chunk: int = 256
    """Trees per chunk of the prediction loop (memory bound only; same function)."""
    policy_lr: float = 0.029
    """Default tree learning rate of the policy outputs (hparams.policy_lr)."""
    value_lr: float = 0.015
    """Default tree learning rate of the value output (hparams.value_lr)."""
    gamma: float = 0.98
    """Default discount."""
    gae_lambda: float = 0.8
    """Default GAE lambda."""
    clip_eps: float = 0.2
    """Default PPO clip range (ppo)."""
    ent_coef: float = 0.0
    """Default entropy-bonus coefficient."""
    vf_coef: float = 0.871923
    """Default value-gradient scale in a shared tree (inert with separate ensembles)."""
    log_std_lr: float = 1.7e-3
    """Default Adam learning rate of log-std (continuous actions)."""
    awr_beta: float = 0.05
    """Default AWR temperature (awr)."""
    awr_max_weight: float = 20.0
    """Default AWR weight clamp (awr)."""
    eval_episodes: int = 16
    """Deterministic evaluation episodes per seed after each segment (evaluation only)."""

    normalize_obs = False  # trees are scale invariant (read by actor_critic.collect); not a field

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)

    @property
    def trees_per_update(self) -> int:
        """Trees added to each ensemble per rollout."""
        return 1 if self.method == "a2c" else self.update_epochs * self.num_minibatches

    @property
    def capacity(self) -> int:
        """Preallocated trees per ensemble: exactly the planned number of the run."""
        return self.num_updates * self.trees_per_update


@struct.dataclass
class GBRLHParams:
    """Numeric hyper-parameters: a pytree, so ``vmap`` sweeps them."""

    policy_lr: jax.Array
    value_lr: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    log_std_lr: jax.Array
    awr_beta: jax.Array
    awr_max_weight: jax.Array


def default_hparams(config: GBRLConfig) -> GBRLHParams:
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    c = config
    return GBRLHParams(f(c.policy_lr), f(c.value_lr), f(c.gamma), f(c.gae_lambda), f(c.clip_eps), f(c.ent_coef),
                       f(c.vf_coef), f(c.log_std_lr), f(c.awr_beta), f(c.awr_max_weight))


Config, HParams = GBRLConfig, GBRLHParams
HPARAM_RANGES = {
    "policy_lr": V.POSITIVE, "value_lr": V.POSITIVE, "gamma": V.DISCOUNT, "gae_lambda": V.UNIT,
    "clip_eps": V.POSITIVE, "ent_coef": V.NONNEG, "vf_coef": V.NONNEG, "log_std_lr": V.POSITIVE,
    "awr_beta": V.POSITIVE, "awr_max_weight": V.POSITIVE,
}
INERT = {
    "eval_episodes": "evaluation only",
    "predict_chunk": "memory bound of prediction only (same function; float summation order may differ)",
}


def validate(config: GBRLConfig) -> None:
    V.choice(config, "method", METHODS)
    V.positive_ints(config, "total_timesteps", "num_envs", "num_steps", "eval_episodes", "update_epochs",
                    "num_minibatches", "max_depth", "n_bins", "predict_chunk")
    V.choice(config, "split_score", T.SCORES)
    V.choice(config, "generator", T.GENERATORS)
    if not isinstance(config.min_data_in_leaf, int) or config.min_data_in_leaf < 0:
        raise ValueError(f"GBRLConfig.min_data_in_leaf must be a non-negative int, got {config.min_data_in_leaf!r}")
    if config.max_depth > 12:
        raise ValueError(f"GBRLConfig.max_depth={config.max_depth} is too deep (2^depth leaves per tree; use <= 12)")
    V.divides(config, "num_minibatches", config.num_envs * config.num_steps, "num_envs * num_steps")
    if config.num_updates < 1:
        raise ValueError(f"GBRLConfig.total_timesteps={config.total_timesteps} is less than one rollout "
                         f"(num_envs * num_steps = {config.num_envs * config.num_steps})")
    if not all(isinstance(i, int) and i >= 0 for i in config.categorical_features):
        raise ValueError(f"GBRLConfig.categorical_features must be feature indices, got {config.categorical_features!r}")


# ----------------------------------------------------------------------------- model


@struct.dataclass
class GBRLParams:
    ensembles: tuple  # (shared,) with A + 1 outputs, or (policy [A], value [1])
    log_std: jax.Array  # [A] (used for continuous actions only)


class TreeNet:
    """The tree model behind :mod:`rlsuite.agents.actor_critic`'s ``net.apply(params, obs)``:
    ``(logits | (mean, log_std), value)`` predicted by the ensembles of ``params``."""

    def __init__(self, action_dim: int, discrete: bool, shared: bool, chunk: int):
        self.action_dim, self.discrete, self.shared, self.chunk = action_dim, discrete, shared, chunk

    def outputs(self, params: GBRLParams, obs) -> jax.Array:
        """``[..., A + 1]``: policy outputs then the value."""
        obs = obs.reshape(obs.shape[: obs.ndim - 1] + (-1,)) if obs.ndim else obs
        outs = [T.predict(e, obs, self.chunk) for e in params.ensembles]
        return outs[0] if self.shared else jnp.concatenate(outs, -1)

    def dist(self, params: GBRLParams, out):
        pi = out[..., : self.action_dim]
        return pi if self.discrete else (pi, jnp.broadcast_to(params.log_std, pi.shape))

    def apply(self, params: GBRLParams, obs):
        out = self.outputs(params, obs)
        return self.dist(params, out), out[..., self.action_dim]


def _per_sample_loss(method, discrete, out, log_std, obs_action, old_log_prob, adv, target, hp):
    """Per-sample policy part and value part of the loss for one sample's outputs ``out`` ``[A+1]``."""
    a_dim = out.shape[-1] - 1
    pi = out[:a_dim]
    dist = pi if discrete else (pi, log_std)
    log_prob = nets.dist_log_prob(discrete, dist, obs_action)
    entropy = nets.dist_entropy(discrete, dist)
    if method == "ppo":
        ratio = jnp.exp(log_prob - old_log_prob)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps) * adv)
    elif method == "a2c":
        pg = -log_prob * adv
    else:  # awr
        pg = -jnp.minimum(jnp.exp(adv / hp.awr_beta), hp.awr_max_weight) * log_prob
    value_loss = 0.5 * (out[a_dim] - target) ** 2
    return pg - hp.ent_coef * entropy, value_loss, (pg, entropy)


def output_gradients(method: str, normalize_advantage: bool, discrete: bool, out, log_std, mb, hp):
    """The tree targets of one minibatch: per-sample output gradients ``g_i = dl_i/dF(s_i)``
    ``[B, A+1]`` (``jax.grad`` of the *sum* of per-sample losses: no 1/B, sheet §5; the value column
    is ``V - target``, without ``vf_coef``), the log-std gradient of the *mean* loss ``[A]`` (an
    ordinary Adam parameter), and the loss metrics.  ``mb`` is an ``actor_critic.Batch`` slice."""
    adv = mb.advantage
    if normalize_advantage and method != "awr":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    per = jax.vmap(_per_sample_loss, in_axes=(None, None, 0, None, 0, 0, 0, 0, None))

    def total(o, ls):
        p, v, aux = per(method, discrete, o, ls, mb.action, mb.log_prob, adv, mb.target, hp)
        return p.sum() + v.sum(), (v, aux)

    (g_out, g_ls), (v, (pg, ent)) = jax.grad(total, argnums=(0, 1), has_aux=True)(out, log_std)
    m = {"loss/actor": pg.mean(), "loss/value": v.mean(), "entropy": ent.mean()}
    return g_out, g_ls / out.shape[0], m


# ----------------------------------------------------------------------------- agent


def make(config: GBRLConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`: one update = one rollout of
    ``num_envs x num_steps`` steps + ``trees_per_update`` trees per ensemble; metrics
    ``env_steps``, ``episode_return``/``episodes``, ``loss/actor``, ``loss/value``, ``entropy``,
    ``trees`` (fitted trees per ensemble) and ``trees_dropped``."""
    validate(config)
    env, discrete, action_dim = ac.prepare_env(env, env_params)
    obs_shape = tuple(env.observation_space(env_params).shape)
    n_feat = 1
    for s in obs_shape:
        n_feat *= int(s)
    bad = [i for i in config.categorical_features if i >= n_feat]
    if bad:
        raise ValueError(f"GBRLConfig.categorical_features {bad} out of range: observations have {n_feat} features")
    shared = bool(config.shared_tree_struct)
    dims = (action_dim + 1,) if shared else (action_dim, 1)
    cap = config.capacity
    nbytes = sum(cap * (2**config.max_depth * d + d + 2 * config.max_depth) * 4 for d in dims)
    if nbytes > MAX_ENSEMBLE_BYTES:
        raise ValueError(f"GBRLConfig: the ensembles would hold {cap} trees each ({nbytes / 2**30:.1f} GiB > "
                         f"{MAX_ENSEMBLE_BYTES / 2**30:.0f} GiB per seed); lower total_timesteps, max_depth, "
                         "update_epochs or num_minibatches")
    net = TreeNet(action_dim, discrete, shared, config.predict_chunk)
    policy = ac.make_policy_fn(net, discrete, False)
    greedy = ac.make_policy_fn(net, discrete, False, deterministic=True)
    steps_per_update = config.num_envs * config.num_steps
    horizon = int(getattr(env_params, "max_steps_in_episode", 1000))
    batch_size = steps_per_update
    n_mb = 1 if config.method == "a2c" else config.num_minibatches
    n_epochs = 1 if config.method == "a2c" else config.update_epochs
    mb_size = batch_size // n_mb
    fit_kw = dict(depth=config.max_depth, n_bins=config.n_bins, score=config.split_score,
                  generator=config.generator, categorical=tuple(config.categorical_features),
                  min_data_in_leaf=config.min_data_in_leaf)

    def log_std_opt(hp):
        return optax.adam(hp.log_std_lr, eps=1e-5)

    def init(key, hp):
        k_env, k_state = jax.random.split(key)
        params = GBRLParams(tuple(T.init_ensemble(cap, config.max_depth, d) for d in dims),
                            jnp.full((action_dim,), config.log_std_init, jnp.float32))
        return ac.ACState(params=params, opt_state=log_std_opt(hp).init(params.log_std),
                          obs_stats=RunningStats.create(obs_shape), reward_scaler=RewardScaler.create(config.num_envs),
                          rollout=init_rollout(env, env_params, k_env, config.num_envs), key=k_state,
                          update=jnp.zeros((), jnp.int32))

    def learn(state: ac.ACState, batch: ac.Batch, hp, key):
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
        obs_all = flat.obs.reshape((batch_size, -1))
        out_all = net.outputs(state.params, obs_all)  # [M, A+1], updated tree by tree below
        lr_pi = jnp.full((action_dim,), hp.policy_lr)
        opt = log_std_opt(hp)

        def minibatch(carry, idx):
            params, opt_state, out_all = carry
            mb = jax.tree.map(lambda x: x[idx], flat)
            obs = obs_all[idx]
            g_out, g_ls, m = output_gradients(config.method, config.normalize_advantage, discrete, out_all[idx],
                                              params.log_std, mb, hp)
            g_pi, g_v = g_out[:, :action_dim], g_out[:, action_dim:]
            if shared:
                tree = T.fit_tree(obs, jnp.concatenate([g_pi, hp.vf_coef * g_v], 1), **fit_kw)
                lr = jnp.concatenate([lr_pi, hp.value_lr[None]])
                ens = (T.add_tree(params.ensembles[0], tree, lr),)
                delta = lr * T.tree_predict(tree, obs_all)
            else:
                t_pi, t_v = T.fit_tree(obs, g_pi, **fit_kw), T.fit_tree(obs, g_v, **fit_kw)
                ens = (T.add_tree(params.ensembles[0], t_pi, lr_pi),
                       T.add_tree(params.ensembles[1], t_v, hp.value_lr[None]))
                delta = jnp.concatenate([lr_pi * T.tree_predict(t_pi, obs_all),
                                         hp.value_lr * T.tree_predict(t_v, obs_all)], 1)
            written = ens[0].n_trees > params.ensembles[0].n_trees  # a dropped tree changes nothing
            out_all = out_all - jnp.where(written, delta, 0.0)
            upd, opt_state = opt.update(g_ls, opt_state, params.log_std)
            log_std = optax.apply_updates(params.log_std, upd) if not discrete else params.log_std
            return (GBRLParams(ens, log_std), opt_state, out_all), m

        def epoch(carry, k):
            perm = jax.random.permutation(k, batch_size) if n_mb > 1 else jnp.arange(batch_size)
            return jax.lax.scan(minibatch, carry, perm.reshape(n_mb, mb_size))

        carry = (state.params, state.opt_state, out_all)
        (params, opt_state, _), m = jax.lax.scan(epoch, carry, jax.random.split(key, n_epochs))
        return params, opt_state, jax.tree.map(jnp.mean, m)

    def update(state: ac.ACState, hp):
        state, batch, ep = ac.collect(config, env, env_params, net, policy, state, hp)
        key, k_learn = jax.random.split(state.key)
        params, opt_state, loss_m = learn(state, batch, hp, k_learn)
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        e0 = params.ensembles[0]
        return state, {"env_steps": state.update * steps_per_update, **ep, **loss_m,
                       "trees": e0.n_trees, "trees_dropped": sum(e.dropped for e in params.ensembles)}

    def evaluate(state: ac.ACState, key):
        traj = rollout_episodes(env, env_params, greedy, (state.params, state.obs_stats), key,
                                config.eval_episodes, horizon)
        return {"eval_return": traj.episode_return.mean()}

    return Agent(init, scan_segment(update), evaluate, config.num_updates, steps_per_update)


def make_train(config: GBRLConfig, env, env_params):
    """``train(key, hparams) -> (ACState, metrics)``: a whole GBRL run as one jittable function."""
    return make_train_of(make(config, env, env_params))


def make_policy(config: GBRLConfig, env, env_params, deterministic: bool = False):
    """``policy((GBRLParams, obs_stats), obs, key) -> (action, {"log_prob", "value"})`` for the engine."""
    env, discrete, action_dim = ac.prepare_env(env, env_params)
    net = TreeNet(action_dim, discrete, bool(config.shared_tree_struct), config.predict_chunk)
    return ac.make_policy_fn(net, discrete, False, deterministic)


def policy_params(state: ac.ACState) -> Any:
    return (state.params, state.obs_stats)
