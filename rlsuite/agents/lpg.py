"""Learned Policy Gradient (LPG): an agent trained by a learned update rule (a meta-network).

Oh et al., "Discovering Reinforcement Learning Algorithms" (NeurIPS 2020); the JAX
reimplementation of Jackson et al., GROOVE (NeurIPS 2023, ``EmptyJackson/groove``); and TA-LPG
(Jackson et al., ICLR 2024, arXiv:2402.05828).  Spec: meta_discovery.md §1, §4.

**Agent.**  A policy ``pi_theta(a|s)`` and a categorical prediction vector ``y_theta(s)`` in the
simplex of ``pred_dim`` (m = 8) outcomes; with ``hidden=()`` both heads are bias-free linear
maps of the (one-hot) observation (the tabular agent of the sheet), otherwise an MLP torso.
A separate scalar critic ``V(s)`` is trained by GAE(lambda) value regression on every rollout;
it does not enter the agent's update (LPG has no critic), only the meta-objective.

**Meta-network** ``U_eta`` (:func:`meta_outputs`): per step the inputs
``[r_t, d_t, pi(a_t|s_t), emb(y(s_t)), emb(y(s_t+1)) (1 - d_t)]`` (``pi`` and ``y`` under
stop-gradient, ``emb`` a shared MLP 16 -> 1; with ``gamma_input`` also ``gamma``; with
``temporal`` (TA-LPG) also ``n/N`` and ``log N``, n = updates done, N = lifetime in updates) run
through a GRU of width ``meta_width`` **backwards in time** (a reversed ``lax.scan``); the state
carried from ``t+1`` into ``t`` is reset to 0 where ``d_t`` (the next step is another episode).
After a ReLU, ``pi_hat = Dense(1)`` and ``y_hat = softmax(Dense(m))``.

**Agent update** (the sheet's sign convention; minimised by the agent's optimiser)::

    L_agent(theta) = mean_t[ log pi_theta(a_t|s_t) pi_hat_t ] + alpha_y mean_t[ KL(y_theta(s_t) || y_hat_t) ]

so a meta-network with ``pi_hat = -A`` and ``alpha_y = 0`` is exactly A2C's policy-gradient
loss (tested).  **Meta-objective** (:func:`meta_objective`, used by :mod:`rlsuite.meta.lpg_meta`):
after K inner updates the updated agent ``theta'`` rolls out once more and

    L_meta = -mean[log pi_theta'(a|s) A_hat] - b0 H(pi_theta') - b1 H(y_theta') + b2 mean(pi_hat^2) + b3 mean(|y_hat|^2)

with ``A_hat`` = GAE(0.99, 0.95) from the agent's **trained** critic, normalised over the batch.

**The learned rule** lives in the traced hyper-parameters (``LPGHParams.meta``, a params dict),
as LPO's drift does, so an ES can evolve it by ``vmap``.  Rule files: :func:`save_rule` /
:func:`load_rule` (flax msgpack with the shape-setting fields recorded and checked);
``rlsuite train lpg --rule FILE --env ...`` loads FILE.  **Without a rule** the meta-network is
randomly initialised (flax defaults, seed ``rule_seed``): an untrained rule, the baseline the
experiments compare a learned rule against.

Choices and deviations, with reasons:

- The critic is trained (sheet §8.1: the reference discards the updated critic, so its
  advantage baseline never leaves initialisation); it lives in the agent state and learns on
  every inner rollout by SGD (``critic_lr``, reference value 4 for the tabular agent).
- No ``gamma`` input by default (the groove code; the paper lists one): ``gamma_input=True``.
- TA-LPG inputs are ``n/N`` and ``log N`` as the paper states (sheet §8.5: not raw n, N).
- Grad clipping (``max_grad_norm``) applies with either optimiser (sheet §8.2).
- ``y_hat``'s regulariser is ``mean_t ||y_hat_t||^2`` (sum over the m outcomes, mean over steps).
- The agent acts with stop-gradient parameters: the meta-gradient flows through the inner
  *updates* (the losses on the stored rollouts), not through the sampled actions, as in the
  reference.
- ``evaluate`` samples actions (a tabular softmax policy's argmax can loop forever in a grid);
  evaluation horizon = ``env_params.max_steps_in_episode`` (``eval_horizon`` overrides it).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct

from rlsuite.core import networks as nets
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.core.returns import gae
from rlsuite.core.rollout import init_rollout, rollout, rollout_episodes
from rlsuite.core.types import RolloutState

FILE_FORMAT = "rlsuite-lpg-rule-v1"
RULE_FIELDS = ("pred_dim", "meta_width", "embed_width", "gamma_input", "temporal")
"""Config fields that set the meta-network's shapes / inputs (recorded in a rule file)."""


@dataclasses.dataclass(frozen=True)
class LPGConfig:
    """LPG configuration (shape-setting fields; numeric hyper-parameters are in ``LPGHParams``).

    Defaults: the tabular grid-world agent of the sheet (64 envs x 20 steps, SGD lr 40)."""

    total_timesteps: int = 320_000
    """Environment steps over all envs (250 updates of 64 x 20, the `all_shortlife` lifetime)."""
    num_envs: int = 64
    """Parallel environments (vmapped)."""
    num_steps: int = 20
    """Steps per env per agent update."""
    hidden: Sequence[int] = ()
    """Hidden layers of the agent's torso; () = tabular (bias-free linear heads). MinAtar: (64, 64)."""
    activation: str = "relu"
    """Torso activation (tanh, relu, gelu, elu)."""
    optimizer: str = "sgd"
    """Agent optimiser: sgd (tabular, lr 40) or adam (MinAtar, lr 5e-4)."""
    lr: float = 40.0
    """Default agent learning rate (hparams.lr)."""
    critic_lr: float = 4.0
    """Default critic learning rate (hparams.critic_lr; reference value 40 with sgd)."""
    max_grad_norm: float = 0.5
    """Default global gradient-norm clip of the agent and critic updates."""
    alpha_y: float = 0.5
    """Default weight of the y-prediction KL term (hparams.alpha_y)."""
    gamma: float = 0.99
    """Default discount (critic targets; the meta-network's input with gamma_input)."""
    gae_lambda: float = 0.95
    """Default GAE lambda of the critic targets and the meta-objective's advantages."""
    pred_dim: int = 8
    """m: size of the categorical prediction vector y."""
    meta_width: int = 256
    """Width of the meta-network's reverse GRU (CPU smoke: 32)."""
    embed_width: int = 16
    """Hidden width of the shared y-embedding MLP (-> 1)."""
    gamma_input: bool = False
    """Feed gamma to the meta-network (the paper; the groove code does not)."""
    temporal: bool = False
    """TA-LPG: feed n/N and log N (training progress and lifetime) to the meta-network."""
    rule: Optional[str] = None
    """Path of a learned rule (save_rule); None = randomly initialised meta-network (rule_seed)."""
    rule_seed: int = 0
    """Seed of the random meta-network used when no rule file is given."""
    eval_episodes: int = 16
    """Evaluation episodes (sampled actions) per seed after each segment (evaluation only)."""
    eval_horizon: Optional[int] = None
    """Evaluation episode cap; None = env_params.max_steps_in_episode (evaluation only)."""

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


@struct.dataclass
class LPGHParams:
    """Numeric hyper-parameters (a pytree); ``meta`` is the learned rule's params dict."""

    lr: jax.Array
    critic_lr: jax.Array
    max_grad_norm: jax.Array
    alpha_y: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    meta: Any


@struct.dataclass
class MetaCoefs:
    """Coefficients of the meta-objective (sheet §1: b0..b3 = 0.05, 0.001, 0.005, 0.001)."""

    entropy: float = 0.05
    y_entropy: float = 0.001
    pi_hat_l2: float = 0.005
    y_hat_l2: float = 0.001


@struct.dataclass
class LPGState:
    """An LPG learner: agent (policy + y) and critic params, optimisers, envs, RNG, update count."""

    params: Any
    critic: Any
    opt_state: Any
    critic_opt_state: Any
    rollout: RolloutState
    key: jax.Array
    update: jax.Array


Config, HParams = LPGConfig, LPGHParams
HPARAM_RANGES = {"lr": V.POSITIVE, "critic_lr": V.POSITIVE, "max_grad_norm": V.POSITIVE_OR_INF,
                 "alpha_y": V.NONNEG, "gamma": V.DISCOUNT, "gae_lambda": V.UNIT}
INERT = {"eval_episodes": "evaluation only", "eval_horizon": "evaluation only"}


# ----------------------------------------------------------------------------- networks


class AgentNet(nn.Module):
    """``obs [..., F] -> (logits [..., A], y_logits [..., m])``; ``hidden=()``: bias-free linear."""

    action_dim: int
    pred_dim: int
    hidden: Sequence[int] = ()
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        tabular = not self.hidden
        if not tabular:
            x = nets.MLP(tuple(self.hidden[:-1]), self.hidden[-1], self.activation)(x)
            x = nets.ACTIVATIONS[self.activation](x)
        init = nn.initializers.zeros if tabular else nn.initializers.lecun_normal()
        logits = nn.Dense(self.action_dim, use_bias=not tabular, kernel_init=init, name="pi")(x)
        y_logits = nn.Dense(self.pred_dim, use_bias=not tabular, kernel_init=init, name="y")(x)
        return logits, y_logits


class Critic(nn.Module):
    hidden: Sequence[int] = ()
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        if self.hidden:
            return nets.MLP(tuple(self.hidden), 1, self.activation)(x)[..., 0]
        return nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros)(x)[..., 0]


class _Embed(nn.Module):
    width: int

    @nn.compact
    def __call__(self, y):
        return nn.Dense(1)(nn.relu(nn.Dense(self.width)(y)))[..., 0]


def num_meta_inputs(config: LPGConfig) -> int:
    """Per-step inputs of the GRU: r, d, pi(a|s), emb(y_t), emb(y_t+1) (+ gamma) (+ n/N, log N)."""
    return 5 + int(config.gamma_input) + 2 * int(config.temporal)


def _modules(config: LPGConfig):
    return (_Embed(config.embed_width), nn.GRUCell(features=config.meta_width), nn.Dense(1),
            nn.Dense(config.pred_dim))


def init_meta(key: jax.Array, config: LPGConfig) -> dict:
    """Random (flax default) meta-network params ``{"embed", "gru", "pi_hat", "y_hat"}``."""
    emb, gru, pi_head, y_head = _modules(config)
    k = jax.random.split(key, 4)
    w = config.meta_width
    return {
        "embed": emb.init(k[0], jnp.zeros((1, config.pred_dim)))["params"],
        "gru": gru.init(k[1], jnp.zeros((1, w)), jnp.zeros((1, num_meta_inputs(config))))["params"],
        "pi_hat": pi_head.init(k[2], jnp.zeros((1, w)))["params"],
        "y_hat": y_head.init(k[3], jnp.zeros((1, w)))["params"],
    }


def meta_shapes(config: LPGConfig) -> dict:
    return jax.tree.map(lambda x: tuple(x.shape), jax.eval_shape(lambda: init_meta(jax.random.PRNGKey(0), config)))


def as_meta_params(meta: Any, config: LPGConfig) -> dict:
    """``hparams.meta`` as params: a dict is used as is, a scalar (``--hparam meta=0``, the runner's
    NaN check) fills every weight of the meta-network."""
    if isinstance(meta, Mapping):
        return meta
    value = jnp.asarray(meta, jnp.float32)
    if value.ndim:
        raise ValueError(f"LPGHParams.meta must be a params dict or a scalar, got shape {value.shape}")
    return jax.tree.map(lambda shape: jnp.full(shape, value), meta_shapes(config),
                        is_leaf=lambda x: isinstance(x, tuple))


def reverse_gru(config: LPGConfig, gru_params, x, done):
    """The meta-network's core: ``x [T, N, F]``, ``done [T, N]`` -> hidden states ``[T, N, W]``,
    scanned from ``t = T-1`` down to 0; the state entering step ``t`` is 0 where ``done[t]``."""
    gru = nn.GRUCell(features=config.meta_width)

    def body(h_next, inp):
        x_t, d_t = inp
        h_in = h_next * (1.0 - d_t)[..., None]
        h, _ = gru.apply({"params": gru_params}, h_in, x_t)
        return h, h

    h0 = jnp.zeros(x.shape[1:-1] + (config.meta_width,), x.dtype)
    _, hs = jax.lax.scan(body, h0, (x, done.astype(x.dtype)), reverse=True)
    return hs


def meta_inputs(config: LPGConfig, meta, reward, done, pi_a, y_t, y_tp1, gamma, lifetime=None):
    """``[T, N, F]`` GRU inputs; ``pi_a [T, N]`` and ``y_* [T, N, m]`` are stop-gradiented here.
    ``lifetime``: ``(n/N, log N)`` scalars (TA-LPG)."""
    if config.temporal and lifetime is None:
        raise ValueError("LPGConfig.temporal=True needs the lifetime inputs (n/N, log N)")
    emb = _Embed(config.embed_width)
    d = done.astype(jnp.float32)
    e_t = emb.apply({"params": meta["embed"]}, jax.lax.stop_gradient(y_t))
    e_tp1 = emb.apply({"params": meta["embed"]}, jax.lax.stop_gradient(y_tp1)) * (1.0 - d)
    cols = [reward.astype(jnp.float32), d, jax.lax.stop_gradient(pi_a), e_t, e_tp1]
    if config.gamma_input:
        cols.append(jnp.broadcast_to(jnp.asarray(gamma, jnp.float32), d.shape))
    if config.temporal:
        cols += [jnp.broadcast_to(jnp.asarray(v, jnp.float32), d.shape) for v in lifetime]
    return jnp.stack(cols, -1)


def meta_outputs(config: LPGConfig, meta, x, done):
    """``(pi_hat [T, N], log_y_hat [T, N, m])`` of the meta-network on inputs ``x [T, N, F]``."""
    h = nn.relu(reverse_gru(config, meta["gru"], x, done))
    pi_hat = nn.Dense(1).apply({"params": meta["pi_hat"]}, h)[..., 0]
    log_y_hat = jax.nn.log_softmax(nn.Dense(config.pred_dim).apply({"params": meta["y_hat"]}, h), -1)
    return pi_hat, log_y_hat


def lifetime_inputs(update, lifetime):
    """TA-LPG's ``(n/N, log N)`` for ``update`` updates done out of a ``lifetime`` of N updates."""
    n_total = jnp.maximum(jnp.asarray(lifetime, jnp.float32), 1.0)
    return jnp.asarray(update, jnp.float32) / n_total, jnp.log(n_total)


# ----------------------------------------------------------------------------- losses


def agent_loss(params, apply, obs, action, pi_hat, log_y_hat, alpha_y, ent_coef=0.0):
    """``mean(log pi(a|s) pi_hat) + alpha_y mean(KL(y(s) || y_hat)) - ent_coef H(pi)`` and metrics
    (``ent_coef`` is 0 for LPG; the A2C antagonist of GROOVE uses it)."""
    logits, y_logits = apply(params, obs)
    logp = nets.categorical_log_prob(logits, action)
    log_y = jax.nn.log_softmax(y_logits, -1)
    kl = (jnp.exp(log_y) * (log_y - log_y_hat)).sum(-1)
    pg = (logp * pi_hat).mean()
    entropy = nets.categorical_entropy(logits).mean()
    loss = pg + alpha_y * kl.mean() - ent_coef * entropy
    return loss, {"loss/agent": loss, "loss/pg": pg, "loss/y_kl": kl.mean(), "entropy": entropy}


def _critic_loss(critic_params, critic_apply, obs, target):
    v = critic_apply(critic_params, obs)
    return 0.5 * ((v - target) ** 2).mean()


def _optimizer(kind: str, lr, max_grad_norm):
    opt = optax.sgd(lr) if kind == "sgd" else optax.adam(lr, eps=1e-5)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)


# ----------------------------------------------------------------------------- the learner


class Learner(struct.PyTreeNode):
    """The pure functions of one configured LPG learner, with the level (``env_params``) an
    argument everywhere, so a batch of lifetimes on different levels is one ``vmap``."""

    config: LPGConfig = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    action_dim: int = struct.field(pytree_node=False)
    obs_shape: tuple = struct.field(pytree_node=False)

    def net(self):
        c = self.config
        return AgentNet(self.action_dim, c.pred_dim, tuple(c.hidden), c.activation)

    def apply(self, params, obs):
        return self.net().apply(params, obs)

    def critic_apply(self, params, obs):
        c = self.config
        return Critic(tuple(c.hidden), c.activation).apply(params, obs)

    def policy(self, params, obs, key):
        logits, _ = self.apply(params, obs)
        return nets.categorical_sample(key, logits), {}

    def init(self, key, hp: LPGHParams, env_params) -> LPGState:
        c = self.config
        k_net, k_critic, k_env, k_state = jax.random.split(key, 4)
        x = jnp.zeros((1,) + self.obs_shape, jnp.float32)
        params = self.net().init(k_net, x)
        critic = Critic(tuple(c.hidden), c.activation).init(k_critic, x)
        return LPGState(
            params=params, critic=critic,
            opt_state=_optimizer(c.optimizer, hp.lr, hp.max_grad_norm).init(params),
            critic_opt_state=_optimizer(c.optimizer, hp.critic_lr, hp.max_grad_norm).init(critic),
            rollout=init_rollout(self.env, env_params, k_env, c.num_envs), key=k_state,
            update=jnp.zeros((), jnp.int32))

    def collect(self, state: LPGState, env_params, num_steps: int | None = None):
        """Act with stop-gradient params; returns ``(carry, Transition [T, N])``."""
        return rollout(self.env, env_params, self.policy, jax.lax.stop_gradient(state.params), state.rollout,
                       num_steps or self.config.num_steps)

    def critic_targets(self, critic, tr, hp):
        """GAE advantages and value targets of ``tr`` under ``critic`` (stop-gradient)."""
        critic = jax.lax.stop_gradient(critic)
        v = self.critic_apply(critic, tr.obs)
        v_next = self.critic_apply(critic, tr.next_obs)
        return gae(tr.reward, v, v_next, tr.terminated, tr.done, hp.gamma, hp.gae_lambda)

    def rule_outputs(self, params, meta, tr, hp, lifetime=None):
        """``(pi_hat, log_y_hat)`` of the rule ``meta`` on rollout ``tr`` of agent ``params``."""
        meta = as_meta_params(meta, self.config)
        logits, y_logits = self.apply(params, tr.obs)
        _, y_next = self.apply(params, tr.next_obs)
        pi_a = jnp.exp(nets.categorical_log_prob(logits, tr.action))
        x = meta_inputs(self.config, meta, tr.reward, tr.done, pi_a, jax.nn.softmax(y_logits),
                        jax.nn.softmax(y_next), hp.gamma, lifetime)
        return meta_outputs(self.config, meta, x, tr.done)

    def update(self, state: LPGState, hp: LPGHParams, meta, env_params, lifetime=None, rule_fn=None,
               ent_coef: float = 0.0):
        """One agent update (rollout + the rule's step + a critic step).

        Returns ``(state, metrics, (pi_hat, log_y_hat))``; differentiable in ``meta``.
        ``rule_fn(state, tr) -> (pi_hat, log_y_hat)`` replaces the meta-network (a hand-set rule,
        e.g. ``pi_hat = -A``: A2C, with ``ent_coef`` its entropy bonus).
        """
        c = self.config
        carry, tr = self.collect(state, env_params)
        if rule_fn is None:
            pi_hat, log_y_hat = self.rule_outputs(state.params, meta, tr, hp, lifetime)
        else:
            pi_hat, log_y_hat = rule_fn(state, tr)
        grads, m = jax.grad(agent_loss, has_aux=True)(state.params, self.apply, tr.obs, tr.action, pi_hat,
                                                      log_y_hat, hp.alpha_y, ent_coef)
        upd, opt_state = _optimizer(c.optimizer, hp.lr, hp.max_grad_norm).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, upd)
        _, target = self.critic_targets(state.critic, tr, hp)
        v_loss, cg = jax.value_and_grad(_critic_loss)(state.critic, self.critic_apply, tr.obs,
                                                     jax.lax.stop_gradient(target))
        cupd, copt = _optimizer(c.optimizer, hp.critic_lr, hp.max_grad_norm).update(cg, state.critic_opt_state,
                                                                                     state.critic)
        critic = optax.apply_updates(state.critic, cupd)
        new = state.replace(params=params, critic=critic, opt_state=opt_state, critic_opt_state=copt,
                            rollout=carry, update=state.update + 1)
        done = tr.done.astype(jnp.float32)
        episodes = done.sum()
        metrics = {"env_steps": new.update * c.num_envs * c.num_steps,
                   "episode_return": (tr.episode_return * done).sum() / jnp.maximum(episodes, 1.0),
                   "episodes": episodes, **m, "loss/value": v_loss,
                   "pi_hat_mean": pi_hat.mean(), "pi_hat_std": pi_hat.std()}
        return new, metrics, (pi_hat, log_y_hat)

    def meta_objective(self, state: LPGState, hp: LPGHParams, env_params, pi_hat, log_y_hat,
                       coefs: MetaCoefs | None = None):
        """The meta-loss of the updated agent ``state`` (see the module docstring) and its new env
        carry: ``(loss, (carry, metrics))``; ``pi_hat`` / ``log_y_hat``: the rule's outputs in the
        inner updates (any leading shape)."""
        coefs = MetaCoefs() if coefs is None else coefs
        carry, tr = self.collect(state, env_params)
        adv, _ = self.critic_targets(state.critic, tr, hp)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logits, y_logits = self.apply(state.params, tr.obs)
        pg = -(nets.categorical_log_prob(logits, tr.action) * adv).mean()
        ent = nets.categorical_entropy(logits).mean()
        y_ent = nets.categorical_entropy(y_logits).mean()
        l2_pi = (pi_hat ** 2).mean()
        l2_y = (jnp.exp(log_y_hat) ** 2).sum(-1).mean()
        loss = pg - coefs.entropy * ent - coefs.y_entropy * y_ent + coefs.pi_hat_l2 * l2_pi + coefs.y_hat_l2 * l2_y
        done = tr.done.astype(jnp.float32)
        ret = (tr.episode_return * done).sum() / jnp.maximum(done.sum(), 1.0)
        return loss, (carry, {"meta_loss": loss, "meta_pg": pg, "entropy": ent, "y_entropy": y_ent,
                              "episode_return": ret, "episodes": done.sum()})

    def evaluate(self, state: LPGState, env_params, key, episodes: int, horizon: int):
        """Mean undiscounted return of ``episodes`` fresh episodes (sampled actions)."""
        traj = rollout_episodes(self.env, env_params, self.policy, state.params, key, episodes, horizon)
        return traj.episode_return.mean()


def a2c_rule(learner: Learner, hp: LPGHParams, normalize: bool = True):
    """The hand-designed rule ``pi_hat = -A`` (GAE of the agent's own critic, normalised over the
    batch with ``normalize``), ``y_hat`` uniform: with ``alpha_y = 0`` the update is A2C's policy
    gradient step (tested).  GROOVE's antagonist and the experiments' A2C baseline use it."""

    def rule(state: LPGState, tr):
        adv, _ = learner.critic_targets(state.critic, tr, hp)
        if normalize:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        m = learner.config.pred_dim
        return -adv, jnp.full(adv.shape + (m,), -jnp.log(float(m)))

    return rule


def check_env(env, env_params, what: str = "LPG"):
    """Discrete actions only (the rule scores ``pi(a|s)`` of a categorical policy); image-like
    observations are flattened.  Returns ``(env, action_dim, obs_shape)``."""
    from rlsuite.envs.wrappers import FlattenObservation

    space = env.action_space(env_params)
    discrete, action_dim = nets.action_info(space)
    if not discrete:
        raise ValueError(f"{what} needs a discrete-action env (a categorical policy); got action space {space!r} "
                         f"of {type(env).__name__}")
    if len(env.observation_space(env_params).shape) > 1:
        env = FlattenObservation(env)
    return env, action_dim, tuple(env.observation_space(env_params).shape)


def make_learner(config: LPGConfig, env, env_params) -> Learner:
    validate(config, check_rule=False)
    env, action_dim, obs_shape = check_env(env, env_params)
    return Learner(config, env, action_dim, obs_shape)


# ----------------------------------------------------------------------------- rule files


def _check_rule_shapes(meta: Any, config: LPGConfig, what: str) -> None:
    want = meta_shapes(config)
    try:
        got = jax.tree.map(lambda x: tuple(np.shape(x)), meta)
    except Exception:  # noqa: BLE001
        got = None
    if got != want:
        raise ValueError(f"{what}: expected a meta-network params dict with shapes {want}, got {got}")


def save_rule(path: str, meta: Mapping, config: LPGConfig) -> str:
    """Write a learned rule (the meta-network's params) and its shape-setting fields to ``path``."""
    _check_rule_shapes(meta, config, f"save_rule({path!r})")
    record = {"format": FILE_FORMAT, "params": jax.tree.map(lambda a: np.asarray(a, np.float32), meta),
              "meta": {k: getattr(config, k) for k in RULE_FIELDS}}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(serialization.msgpack_serialize(record))
    os.replace(tmp, path)
    return path


def read_rule_fields(path: str) -> tuple[dict, dict]:
    """``(params, recorded fields)`` of a rule file, with one clear error for a missing / bad file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"LPG rule file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            record = serialization.msgpack_restore(f.read())
    except Exception as e:  # noqa: BLE001  (msgpack raises several types on garbage)
        raise ValueError(f"LPG rule file {path!r} is corrupt or not a rule file ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FILE_FORMAT or "params" not in record:
        raise ValueError(f"LPG rule file {path!r} is not a {FILE_FORMAT} file (write it with save_rule)")
    return record["params"], dict(record.get("meta", {}))


def load_rule(path: str, config: LPGConfig) -> dict:
    """Read a rule written by :func:`save_rule`; its recorded fields must match ``config``."""
    params, fields = read_rule_fields(path)
    for k in RULE_FIELDS:
        if k in fields and fields[k] != getattr(config, k):
            raise ValueError(f"LPG rule file {path!r} was saved with {k}={fields[k]!r}, but LPGConfig.{k}="
                             f"{getattr(config, k)!r}; set --{k.replace('_', '-')} to match")
    _check_rule_shapes(params, config, f"LPG rule file {path!r}")
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)


# ----------------------------------------------------------------------------- protocol


def validate(config: LPGConfig, check_rule: bool = True) -> None:
    V.positive_ints(config, "total_timesteps", "num_envs", "num_steps", "eval_episodes", "pred_dim", "meta_width",
                    "embed_width")
    if config.hidden != ():
        V.sizes(config, "hidden")
    V.choice(config, "activation", sorted(nets.ACTIVATIONS))
    V.choice(config, "optimizer", ("sgd", "adam"))
    if config.eval_horizon is not None:
        V.positive_ints(config, "eval_horizon")
    if config.num_updates < 1:
        raise ValueError(f"LPGConfig.total_timesteps={config.total_timesteps} is less than one rollout "
                         f"(num_envs * num_steps = {config.num_envs * config.num_steps})")
    if check_rule and config.rule is not None:
        load_rule(config.rule, config)


def default_meta(config: LPGConfig) -> dict:
    """``hparams.meta`` by default: the ``rule`` file, else the random meta-network (``rule_seed``)."""
    if config.rule is not None:
        return load_rule(config.rule, config)
    return init_meta(jax.random.PRNGKey(config.rule_seed), config)


def default_hparams(config: LPGConfig) -> LPGHParams:
    f = lambda x: jnp.asarray(x, jnp.float32)
    return LPGHParams(f(config.lr), f(config.critic_lr), f(config.max_grad_norm), f(config.alpha_y),
                      f(config.gamma), f(config.gae_lambda), default_meta(config))


def eval_horizon(config: LPGConfig, env_params) -> int:
    if config.eval_horizon is not None:
        return config.eval_horizon
    h = getattr(env_params, "max_steps_in_episode", 1000)
    try:
        return int(h)
    except Exception:  # noqa: BLE001  (a traced level: the caller must set eval_horizon)
        raise ValueError("LPGConfig.eval_horizon must be set when env_params.max_steps_in_episode is traced") from None


def make(config: LPGConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`: each update applies the rule ``hparams.meta``
    (TA-LPG: with n/N, log N where N = ``config.num_updates``)."""
    validate(config)
    learner = make_learner(config, env, env_params)
    horizon = eval_horizon(config, env_params)
    n_total = config.num_updates

    def update(state, hp):
        life = lifetime_inputs(state.update, n_total) if config.temporal else None
        state, m, _ = learner.update(state, hp, hp.meta, env_params, life)
        return state, m

    def evaluate(state, key):
        return {"eval_return": learner.evaluate(state, env_params, key, config.eval_episodes, horizon)}

    return Agent(lambda key, hp: learner.init(key, hp, env_params), scan_segment(update), evaluate,
                 config.num_updates, config.num_envs * config.num_steps)


def make_train(config: LPGConfig, env, env_params):
    return make_train_of(make(config, env, env_params))


def make_policy(config: LPGConfig, env, env_params, deterministic: bool = False):
    learner = make_learner(config, env, env_params)

    def policy(params, obs, key):
        logits, _ = learner.apply(params, obs)
        return (jnp.argmax(logits, -1) if deterministic else nets.categorical_sample(key, logits)), {}

    return policy


def policy_params(state: LPGState):
    return state.params
