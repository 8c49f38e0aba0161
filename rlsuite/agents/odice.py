"""O-DICE: offline RL and imitation with the orthogonal-gradient DICE update.

Mao, Xu, Zhang, Zhan, "ODICE: Revealing the Mystery of Distribution Correction Estimation via
Orthogonal-gradient Update", ICLR 2024 (arXiv 2402.00348); spec sheet ``shared/papers/odice.md``.

The algorithm box, as this file reads top to bottom:

1. data (:mod:`rlsuite.data.offline`): a ``Dataset`` -> D4RL ``qlearning`` transitions (time-out
   transitions dropped), locomotion reward scaling ``r * 1000 / (max_return - min_return)``,
   actions mapped into ``[-1, 1]``, optional state normalisation (IL);
2. networks: twin V (2x256 ReLU, LayerNorm for RL), EMA target V-bar, Gaussian policy
   (2x1024 mean MLP, state-independent log-std clamped to [-5, 2], tanh on the mean for IL);
3. value loss (Pearson chi^2, ``f*(d) = d w - (w-1)^2``, ``w = max(d/2 + 1, 0)``) with one of
   three gradient rules (``config.gradient_rule``):

   - ``semi_gradient``: ``d = r + g(1-done) Vbar(s') - V(s)``, gradient through ``V(s)`` only;
   - ``true_gradient``: ``d = r + g(1-done) V(s') - V(s)``, full gradient;
   - ``orthogonal`` (O-DICE): forward gradient ``g_f`` of ``lam * mean f*(r + g Vbar(s') - V(s))``,
     backward gradient ``eta g_b`` of ``lam eta * mean f*(r + g V(s') - Vbar(s))``, and
     ``g = g_f + (eta g_b - c g_f)``, ``c = <g_f, eta g_b> / max(|g_f|^2, 1e-10)`` -- ONE dot
     product over the flattened concatenation of ALL value parameters (both twin heads);
     plus the gradient of the linear term ``(1 - lam) mean V(s)`` (dataset states); one Adam step;

4. policy extraction (concurrently): weighted BC with ``w = clip(relu(r + g(1-done) Vbar(s') - V(s)), 0, 100)``
   (the reference code's weight; the analytic ``d/2 + 1`` is ``config.weight = "analytic"``);
5. EMA target update ``Vbar <- (1 - tau) Vbar + tau V`` after every step.

The agent protocol (:mod:`rlsuite.core.agent`): ``make(config, env, env_params, data) -> Agent``
with ``data`` an :class:`rlsuite.data.Dataset` (offline RL) or, for imitation
(``config.mode = "il"``), ``{"dataset": mixed Dataset, "expert": expert Dataset}`` (a
``(dataset, expert)`` tuple works too).  One update = one gradient step on a batch of
``batch_size`` transitions; metrics per update: ``samples`` (updates x batch_size), ``loss/v``,
``loss/pi``, ``v_mean``, ``weight_mean``, ``proj_c`` (projection coefficient), ``feature_cos``
(cosine of penultimate V features of s and s', the sheet's co-adaptation diagnostic),
``pi_log_std`` (mean log-std after the step) and, in IL mode, ``loss/disc`` (the discriminator's
final loss, from ``init``).  ``evaluate(state, key)`` runs ``eval_episodes`` deterministic
(mean-action) episodes through the engine: ``eval_return`` and, when the dataset's metadata has
both reference returns, ``eval_normalized_score``.  ``make_train(config, env, env_params, data)``
= :func:`rlsuite.core.agent.make_train` with ``eval_every=config.eval_every``.

Large datasets / vmapping over datasets: ``make`` closes over the prepared arrays (they become
constants of the compiled program).  :func:`prepare` + :func:`make_from_prepared` build the same
agent around an :class:`~rlsuite.data.offline.OfflineData` that may be a traced argument::

    prep = odice.prepare(config, data, env, env_params)            # host side, once
    def train(key, hp, prep):
        agent = odice.make_from_prepared(config, env, env_params, prep)
        return core.agent.make_train(agent, eval_every=config.eval_every)(key, hp)
    jax.jit(jax.vmap(train, in_axes=(0, None, None)))(keys, hp, prep)   # data passed, not baked

Offline IL: the expert trajectory is reward-free; a discriminator ``c(s, a)`` separates expert
from union (expert + mixed) transitions and the DICE reward is ``log c / (1 - c)`` (the
SMODICE/DemoDICE construction), pre-trained for ``disc_steps`` inside ``init`` (the rewards then
live in the learner state).

Deviations / choices where the sheet is silent or unsure (all documented, all switchable):

- Twin V: the forward residual uses ``min`` of the two target heads at ``s'``; the backward
  residual ``r + g V_i(s') - min_j Vbar_j(s)`` per online head ``i``; losses are averaged over the
  heads.  The policy weight uses ``V(s) = mean`` of the online heads (the same reduction as the value
  loss).  The reference code's exact reduction is not in the sheet.
- Policy weight decay is decoupled (AdamW style, ``p -= lr * wd * p``); whether the reference uses
  PyTorch's coupled L2 is not in the sheet.
- Actions are mapped linearly from the env's Box bounds to ``[-1, 1]`` for learning and back for
  acting (Brax is already ``[-1, 1]``; gymnax Pendulum is ``[-2, 2]``).  Discrete actions are not
  supported (the paper's tasks are continuous).
- IL reward: the sheet only says "reward-free expert trajectory + mixed dataset"; we use the
  SMODICE-style state-action discriminator (unverified against the reference ``main_odice_il.py``).
- Reward scaling uses episode returns cut at a terminal, a time-out, a break in the observation
  chain, or after ``max_episode_steps`` (1000) steps, computed once on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from rlsuite.core import validate as V
from rlsuite.core.agent import Agent, scan_segment
from rlsuite.core.agent import make_train as make_train_of
from rlsuite.core.rollout import rollout_episodes
from rlsuite.data import offline
from rlsuite.data.dataset import Dataset
from rlsuite.data.offline import REWARD_SCALES, OfflineData, action_bounds, sample_batch

__all__ = [
    "ODiceConfig", "ODiceHParams", "Config", "HParams", "INERT", "default_hparams", "il_config",
    "make", "make_from_prepared", "make_train", "prepare", "f_star", "orthogonal_combine", "value_gradient",
    "OfflineData", "sample_batch", "action_bounds",
]

GRADIENT_RULES = ("semi_gradient", "true_gradient", "orthogonal")
F_DIVERGENCES = ("chi2", "kl")
WEIGHTS = ("relu", "analytic")
MODES = ("rl", "il")
MAX_COUNTER = 2**31 - 1  # the int32 ``samples`` counter

# ============================================================================ config


@dataclass(frozen=True)
class ODiceConfig:
    """Static (shape-setting) settings; numeric hyper-parameters are in :class:`ODiceHParams`."""

    gradient_steps: int = 1_000_000
    """Total gradient steps = updates of a full run (sheet: 1M offline RL, 500k IL)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations in ``make_train``; must divide ``gradient_steps``."""
    eval_episodes: int = 10
    """Episodes per evaluation (deterministic mean action)."""
    eval_horizon: int = 0
    """Episode horizon for evaluation; 0 = the env's ``max_steps_in_episode``."""
    gradient_rule: str = "orthogonal"
    """``semi_gradient`` | ``true_gradient`` | ``orthogonal`` (O-DICE)."""
    f_divergence: str = "chi2"
    """``chi2`` (Pearson, with the non-negative ratio) or ``kl`` (reverse KL, f* = exp(d - 1))."""
    weight: str = "relu"
    """Policy weight: ``relu`` (reference code, relu(d)) or ``analytic`` ((f')^-1(d) = max(d/2 + 1, 0)); KL uses exp(d - 1)."""
    value_hidden: tuple[int, ...] = (256, 256)
    """Hidden sizes of each V head."""
    value_layer_norm: bool = True
    """LayerNorm after every hidden V layer (MuJoCo RL: on; IL: off)."""
    twin_v: bool = True
    """Two V heads (loss averaged, target = min of the target heads)."""
    policy_hidden: tuple[int, ...] = (1024, 1024)
    """Hidden sizes of the Gaussian policy's mean MLP."""
    tanh_mean: bool = False
    """tanh on the policy mean (RL: off; IL: on)."""
    log_std_min: float = -5.0
    """Lower clamp of the state-independent log-std."""
    log_std_max: float = 2.0
    """Upper clamp of the log-std."""
    reward_scale: str = "locomotion"
    """``locomotion``: r * 1000 / (max_return - min_return); ``none``: raw rewards."""
    max_episode_steps: int = 1000
    """Episode-return cut used by the locomotion reward scaling."""
    drop_timeouts: bool = True
    """D4RL ``qlearning_dataset`` semantics: drop the transition at a time-out."""
    normalize_states: bool = False
    """Standardise observations with the dataset mean / std (+1e-3) (IL: on)."""
    mode: str = "rl"
    """``rl`` (dataset rewards) or ``il`` (discriminator reward from an expert trajectory; data = {"dataset", "expert"})."""
    disc_steps: int = 10_000
    """IL only: discriminator gradient steps before DICE training (inside ``init``)."""
    disc_hidden: tuple[int, ...] = (256, 256)
    """IL only: discriminator hidden sizes."""


@struct.dataclass
class ODiceHParams:
    """Numeric hyper-parameters (traced: ``vmap`` sweeps them)."""

    lam: jax.Array  # lambda: weight of the f* term (1 - lambda on the linear term)
    eta: jax.Array  # weight of the (projected) backward gradient
    gamma: jax.Array
    tau: jax.Array  # EMA rate of the target V
    v_lr: jax.Array
    pi_lr: jax.Array
    pi_weight_decay: jax.Array
    weight_clip: jax.Array  # upper clip of the policy weight
    disc_lr: jax.Array  # IL discriminator learning rate


Config, HParams = ODiceConfig, ODiceHParams
HPARAM_RANGES = {  # documented valid ranges, checked by rlsuite.core.validate.check_ranges
    "lam": V.UNIT, "eta": V.NONNEG, "gamma": V.DISCOUNT, "tau": V.RATE, "v_lr": V.POSITIVE, "pi_lr": V.POSITIVE,
    "pi_weight_decay": V.NONNEG, "weight_clip": V.POSITIVE_OR_INF, "disc_lr": V.POSITIVE,
}

INERT = {
    "eval_every": "evaluation only (make_train's evaluation cadence; the agent's updates ignore it)",
    "eval_episodes": "evaluation only",
    "eval_horizon": "evaluation only",
    "disc_steps": "IL mode only (mode='il')",
    "disc_hidden": "IL mode only (mode='il')",
    "hp.disc_lr": "IL mode only (mode='il')",
}


def default_hparams(config: ODiceConfig | None = None, **overrides) -> ODiceHParams:
    """Sheet §4 defaults (offline RL column; IL column when ``config.mode == "il"``)."""
    il = config is not None and config.mode == "il"
    hp = dict(
        lam=0.4 if il else 0.6,
        eta=1.0,
        gamma=0.99,
        tau=0.005,
        v_lr=1e-4 if il else 2e-4,
        pi_lr=1e-4 if il else 2e-4,
        pi_weight_decay=1e-5 if il else 1e-4,
        weight_clip=100.0,
        disc_lr=3e-4,
    )
    bad = set(overrides) - set(hp)
    if bad:
        raise ValueError(f"unknown O-DICE hyper-parameter(s) {sorted(bad)}; known: {sorted(hp)}")
    hp.update(overrides)
    return ODiceHParams(**{k: jnp.asarray(v, jnp.float32) for k, v in hp.items()})


def il_config(**overrides) -> ODiceConfig:
    """Sheet §4 offline-IL column: no LayerNorm, tanh mean, state normalisation, 500k steps."""
    base = dict(
        mode="il", value_layer_norm=False, tanh_mean=True, normalize_states=True,
        reward_scale="none", gradient_steps=500_000,
    )
    base.update(overrides)
    return ODiceConfig(**base)


def validate(config: ODiceConfig) -> None:
    """One clear ``ValueError`` per bad field (before any tracing)."""
    V.positive_ints(config, "gradient_steps", "batch_size", "eval_every", "eval_episodes", "max_episode_steps")
    V.require_nonneg_int(f"{type(config).__name__}.eval_horizon", config.eval_horizon)
    V.sizes(config, "value_hidden", "policy_hidden", "disc_hidden")
    V.choice(config, "gradient_rule", GRADIENT_RULES)
    V.choice(config, "f_divergence", F_DIVERGENCES)
    V.choice(config, "weight", WEIGHTS)
    V.choice(config, "reward_scale", REWARD_SCALES)
    V.choice(config, "mode", MODES)
    check_counter(config)
    if config.mode == "il":
        V.positive_ints(config, "disc_steps")


def check_counter(config) -> None:
    """The ``samples`` counter is int32: ``gradient_steps * batch_size`` must fit."""
    if config.gradient_steps * config.batch_size > MAX_COUNTER:
        raise ValueError(
            f"{type(config).__name__}: gradient_steps * batch_size = {config.gradient_steps * config.batch_size} "
            f"overflows the int32 'samples' counter (max {MAX_COUNTER})"
        )


# ============================================================================ data


def split_data(data) -> tuple[Dataset, Dataset | None]:
    """``(dataset, expert)`` from ``make``'s ``data`` argument: a Dataset (RL), or
    ``{"dataset": ..., "expert": ...}`` / ``(dataset, expert)`` (IL)."""
    if isinstance(data, Dataset):
        return data, None
    if isinstance(data, dict):
        unknown = set(data) - {"dataset", "expert"}
        if unknown or "dataset" not in data:
            raise ValueError(f"data dict must have keys 'dataset' (and 'expert' for IL), got {sorted(data)}")
        return data["dataset"], data.get("expert")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise ValueError(
        f"data must be an rlsuite.data.Dataset or {{'dataset': Dataset, 'expert': Dataset}}, got {type(data).__name__}"
    )


def _prep_one(config, ds: Dataset, env, env_params, zero_rewards: bool = False) -> OfflineData:
    return offline.prepare_data(
        ds, env, env_params, reward_scale=config.reward_scale, max_episode_steps=config.max_episode_steps,
        drop_timeouts=config.drop_timeouts, normalize_states=config.normalize_states, zero_rewards=zero_rewards,
    )


def prepare(config: ODiceConfig, data, env, env_params) -> tuple[OfflineData, OfflineData | None]:
    """``(prepared, expert_prepared)`` (host side): RL: ``(OfflineData, None)``; IL: the union
    (expert + mixed) and the expert, both reward-free, with the union's state statistics."""
    validate(config)
    dataset, expert = split_data(data)
    if config.mode == "il":
        if expert is None:
            raise ValueError(
                "ODiceConfig.mode='il' needs data={'dataset': mixed Dataset, 'expert': expert Dataset} "
                "(expert= one or more reward-free trajectories)"
            )
        union = Dataset.concatenate([expert, dataset])
        prep = _prep_one(config, union, env, env_params, zero_rewards=True)
        exp = _prep_one(config, expert, env, env_params, zero_rewards=True)
        return prep, exp.replace(obs_mean=prep.obs_mean, obs_std=prep.obs_std)
    if expert is not None:
        raise ValueError("an expert dataset is only used with ODiceConfig.mode='il'")
    return _prep_one(config, dataset, env, env_params), None


# ============================================================================ networks
# ============================================================================ networks


class ValueMLP(nn.Module):
    """One V head: ReLU MLP (optional LayerNorm); returns ``(value[...], features[..., h])``."""

    hidden: Sequence[int]
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.Dense(h)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return nn.Dense(1)(x)[..., 0], x


class TwinV(nn.Module):
    """``heads`` independent V heads: ``(values[heads, B], features[heads, B, h])``."""

    hidden: Sequence[int]
    layer_norm: bool = False
    heads: int = 2

    @nn.compact
    def __call__(self, obs):
        outs = [ValueMLP(self.hidden, self.layer_norm, name=f"v{i}")(obs) for i in range(self.heads)]
        return jnp.stack([o[0] for o in outs]), jnp.stack([o[1] for o in outs])


class GaussianPolicy(nn.Module):
    """Mean MLP + state-independent log-std (clamped); returns ``(mean[B, A], log_std[A])``."""

    action_dim: int
    hidden: Sequence[int]
    tanh_mean: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs):
        x = obs
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        mean = nn.Dense(self.action_dim)(x)
        if self.tanh_mean:
            mean = jnp.tanh(mean)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def gaussian_log_prob(mean, log_std, action):
    z = (action - mean) * jnp.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)


def make_eval(config, env, env_params, policy_net: GaussianPolicy, refs: tuple[float, float] | None = None) -> Callable:
    """``evaluate(pi_params, data, key) -> {"eval_return"[, "eval_normalized_score"]}``: mean
    undiscounted return of ``config.eval_episodes`` episodes with the mean action (and its
    normalised score ``100 (R - random) / (expert - random)`` when ``refs`` are given)."""
    low, high = (jnp.asarray(b) for b in action_bounds(env, env_params))
    horizon = config.eval_horizon or int(getattr(env_params, "max_steps_in_episode", 0))
    if horizon <= 0:
        raise ValueError("set eval_horizon: the env params have no max_steps_in_episode")

    def policy(params, obs, key):
        pi_params, mean_, std_ = params
        mean, _ = policy_net.apply(pi_params, (obs - mean_) / std_)
        a = jnp.clip(mean, -1.0, 1.0)
        return low + (a + 1.0) * 0.5 * (high - low), None

    def evaluate(pi_params, data: OfflineData, key):
        traj = rollout_episodes(
            env, env_params, policy, (pi_params, data.obs_mean, data.obs_std), key, config.eval_episodes, horizon
        )
        ret = traj.episode_return.mean()
        out = {"eval_return": ret}
        if refs is not None:
            out["eval_normalized_score"] = 100.0 * (ret - refs[0]) / (refs[1] - refs[0])
        return out

    return evaluate


def adam_step(params, grads, opt_state, lr, weight_decay=0.0):
    """One Adam(W) step with a traced learning rate (so ``vmap`` over lr works)."""
    updates, opt_state = optax.scale_by_adam().update(grads, opt_state)
    params = jax.tree.map(lambda p, u: p - lr * (u + weight_decay * p), params, updates)
    return params, opt_state


def ema(target, online, tau):
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


# ============================================================================ f-divergence and weights


def f_star(delta: jax.Array, kind: str = "chi2") -> jax.Array:
    """Convex conjugate of f with the non-negativity constraint on the ratio.

    chi2 (Pearson): ``w = max(d/2 + 1, 0)``, ``f*(d) = d w - (w - 1)^2`` (= d + d^2/4 for d >= -2,
    else -1).  kl: ``f*(d) = exp(d - 1)``.
    """
    if kind == "kl":
        return jnp.exp(delta - 1.0)
    w = jax.nn.relu(delta / 2.0 + 1.0)
    return delta * w - (w - 1.0) ** 2


def policy_weight(delta: jax.Array, config: ODiceConfig, clip) -> jax.Array:
    """Weighted-BC weight (detached), clipped at ``clip``."""
    if config.f_divergence == "kl":
        w = jnp.exp(delta - 1.0)
    elif config.weight == "analytic":
        w = jax.nn.relu(delta / 2.0 + 1.0)
    else:
        w = jax.nn.relu(delta)
    return jax.lax.stop_gradient(jnp.minimum(w, clip))


def orthogonal_combine(g_f, g_b):
    """O-DICE projection, over the flattened concatenation of ALL leaves of the two pytrees.

    ``g = g_f + (g_b - c g_f)``, ``c = <g_f, g_b> / max(|g_f|^2, 1e-10)`` (``g_b`` already
    includes ``eta``).  Returns ``(g, c)``.
    """
    f, unravel = ravel_pytree(g_f)
    b, _ = ravel_pytree(g_b)
    c = jnp.dot(f, b) / jnp.maximum(jnp.dot(f, f), 1e-10)
    return unravel(f + b - c * f), c


# ============================================================================ value update


def value_gradient(config: ODiceConfig, v_net: TwinV, v_params, vt_params, batch: OfflineData, hp: ODiceHParams):
    """Gradient of the DICE value objective under ``config.gradient_rule``.

    One forward pass of V-bar on ``[s; s']`` and of V on ``s`` and on ``s'``, kept apart so that
    each gradient is a vector-Jacobian product over the half of the batch its term depends on (the
    linear and forward terms: ``s``; the backward term: ``s'``) instead of a product over the whole
    batch with half of the cotangent zero.  ``true_gradient`` (one term through both) uses one
    pass over ``[s; s']``.  Returns ``(grads, info, delta_pi)``: ``info["loss/v"]``
    is the linear + forward-residual objective (the same quantity for every rule), ``delta_pi[B]``
    the detached policy residual ``r + g(1-done) Vbar(s') - mean_heads V(s)``.
    """
    b = batch.observations.shape[0]
    x = batch.normalize(jnp.concatenate([batch.observations, batch.next_observations]))
    vt_all = jax.lax.stop_gradient(v_net.apply(vt_params, x)[0].min(0))  # [2B]
    vt_s, vt_sp = vt_all[:b], vt_all[b:]
    disc = hp.gamma * (1.0 - batch.dones)
    kind = config.f_divergence

    def pass_on(obs):
        """``(values[H, n], vjp, features[H, n, h])`` of V on ``obs``."""
        return jax.vjp(lambda p: v_net.apply(p, obs), v_params, has_aux=True)

    if config.gradient_rule == "true_gradient":
        v_all, vjp_all, feats = pass_on(x)
        v_s, v_sp = v_all[:, :b], v_all[:, b:]  # [H, B]
        f_s, f_sp = feats[:, :b], feats[:, b:]
    else:
        (v_s, vjp_s, f_s), (v_sp, vjp_sp, f_sp) = pass_on(x[:b]), pass_on(x[b:])

    def grad_s(loss_fn):
        """Gradient w.r.t. v_params of ``loss_fn(v_s, v_sp)`` through ``V(s)`` only."""
        return vjp_s(jax.grad(lambda v: loss_fn(v, v_sp))(v_s))[0]

    def grad_sp(loss_fn):
        """Gradient w.r.t. v_params of ``loss_fn(v_s, v_sp)`` through ``V(s')`` only."""
        return vjp_sp(jax.grad(lambda v: loss_fn(v_s, v))(v_sp))[0]

    linear = lambda v_s, v_sp: (1.0 - hp.lam) * v_s.mean()  # noqa: E731
    forward = lambda v_s, v_sp: hp.lam * f_star(batch.rewards + disc * vt_sp - v_s, kind).mean()  # noqa: E731
    backward = lambda v_s, v_sp: hp.lam * hp.eta * f_star(batch.rewards + disc * v_sp - vt_s, kind).mean()  # noqa: E731
    true = lambda v_s, v_sp: hp.lam * f_star(batch.rewards + disc * v_sp - v_s, kind).mean()  # noqa: E731

    c = jnp.zeros(())
    if config.gradient_rule == "semi_gradient":
        grads = grad_s(lambda v, vp: linear(v, vp) + forward(v, vp))
    elif config.gradient_rule == "true_gradient":
        loss_all = lambda v: linear(v[:, :b], v[:, b:]) + true(v[:, :b], v[:, b:])  # noqa: E731
        grads = vjp_all(jax.grad(loss_all)(v_all))[0]
    else:
        g_lin, g_f, g_b = grad_s(linear), grad_s(forward), grad_sp(backward)
        g, c = orthogonal_combine(g_f, g_b)
        grads = jax.tree.map(jnp.add, g_lin, g)
    cos = (f_s * f_sp).sum(-1) / (jnp.linalg.norm(f_s, axis=-1) * jnp.linalg.norm(f_sp, axis=-1) + 1e-8)
    info = {
        "loss/v": linear(v_s, v_sp) + forward(v_s, v_sp),
        "v_mean": v_s.mean(),
        "proj_c": c,
        "feature_cos": cos.mean(),
    }
    # policy residual: forward residual with V(s) = mean of the online heads (detached)
    delta_pi = jax.lax.stop_gradient(batch.rewards + disc * vt_sp - v_s.mean(0))
    return grads, info, delta_pi


# ============================================================================ the agent


@struct.dataclass
class ODiceState:
    v_params: Any
    vt_params: Any
    v_opt: Any
    pi_params: Any
    pi_opt: Any
    key: jax.Array
    step: jax.Array
    rewards: Any = None
    """IL only: the discriminator rewards ``[N]`` of the prepared union (computed in ``init``)."""
    disc_loss: Any = None
    """IL only: the discriminator's final training loss."""


def make_from_prepared(
    config: ODiceConfig, env, env_params, prepared: tuple[OfflineData, OfflineData | None],
    refs: tuple[float, float] | None = None,
) -> Agent:
    """The :class:`~rlsuite.core.agent.Agent` around already prepared data (see :func:`prepare`).

    ``prepared`` may hold tracers (build the agent inside ``jit`` / ``vmap`` to pass the data as an
    argument or to vmap over datasets of equal shape).  ``refs = (random, expert)`` reference
    returns add ``eval_normalized_score`` to ``evaluate``.
    """
    validate(config)
    data, exp_data = prepared
    if (config.mode == "il") != (exp_data is not None):
        raise ValueError("prepared data must be (union, expert) in IL mode and (data, None) in RL mode")
    obs_dim = data.observations.shape[1]
    action_dim = data.actions.shape[1]
    v_net = TwinV(tuple(config.value_hidden), config.value_layer_norm, heads=2 if config.twin_v else 1)
    pi_net = GaussianPolicy(action_dim, tuple(config.policy_hidden), config.tanh_mean, config.log_std_min, config.log_std_max)
    disc_net = ValueMLP(tuple(config.disc_hidden))
    eval_fn = make_eval(config, env, env_params, pi_net, refs)

    def il_rewards(key, hp):
        """Discriminator c(s, a): expert (1) vs union (0); reward = logit c = log c/(1-c)."""
        xin = lambda o, a: jnp.concatenate([data.normalize(o), a], -1)  # noqa: E731
        params = disc_net.init(key, jnp.zeros((1, obs_dim + action_dim)))
        opt = optax.scale_by_adam().init(params)

        def step(carry, k):
            params, opt = carry
            k1, k2 = jax.random.split(k)
            e = sample_batch(exp_data, k1, config.batch_size)
            u = sample_batch(data, k2, config.batch_size)

            def loss(p):
                le = disc_net.apply(p, xin(e.observations, e.actions))[0]
                lu = disc_net.apply(p, xin(u.observations, u.actions))[0]
                return optax.sigmoid_binary_cross_entropy(le, 1.0).mean() + optax.sigmoid_binary_cross_entropy(lu, 0.0).mean()

            loss_val, g = jax.value_and_grad(loss)(params)
            params, opt = adam_step(params, g, opt, hp.disc_lr)
            return (params, opt), loss_val

        (params, _), losses = jax.lax.scan(step, (params, opt), jax.random.split(key, config.disc_steps))
        logits = disc_net.apply(params, xin(data.observations, data.actions))[0]
        return jax.lax.stop_gradient(logits), losses[-1]

    def init(key: jax.Array, hp: ODiceHParams) -> ODiceState:
        k_v, k_pi, k_disc, k_train, _ = jax.random.split(key, 5)  # the pre-protocol layout (5th: evaluation)
        rewards = disc_loss = None
        if config.mode == "il":
            rewards, disc_loss = il_rewards(k_disc, hp)
        x0 = jnp.zeros((1, obs_dim))
        v_params = v_net.init(k_v, x0)
        pi_params = pi_net.init(k_pi, x0)
        return ODiceState(
            v_params, v_params, optax.scale_by_adam().init(v_params), pi_params,
            optax.scale_by_adam().init(pi_params), k_train, jnp.zeros((), jnp.int32), rewards, disc_loss,
        )

    def update(state: ODiceState, hp: ODiceHParams):
        key, k_batch = jax.random.split(state.key)
        d = data if state.rewards is None else data.replace(rewards=state.rewards)
        batch = sample_batch(d, k_batch, config.batch_size)
        v_grads, info, delta = value_gradient(config, v_net, state.v_params, state.vt_params, batch, hp)
        weight = policy_weight(delta, config, hp.weight_clip)

        def pi_loss_fn(p):
            mean, log_std = pi_net.apply(p, batch.normalize(batch.observations))
            return -(weight * gaussian_log_prob(mean, log_std, batch.actions)).mean()

        pi_loss, pi_grads = jax.value_and_grad(pi_loss_fn)(state.pi_params)
        v_params, v_opt = adam_step(state.v_params, v_grads, state.v_opt, hp.v_lr)
        pi_params, pi_opt = adam_step(state.pi_params, pi_grads, state.pi_opt, hp.pi_lr, hp.pi_weight_decay)
        vt_params = ema(state.vt_params, v_params, hp.tau)
        new = state.replace(v_params=v_params, vt_params=vt_params, v_opt=v_opt, pi_params=pi_params,
                            pi_opt=pi_opt, key=key, step=state.step + 1)
        metrics = {
            "samples": new.step * config.batch_size,
            **info,
            "loss/pi": pi_loss,
            "weight_mean": weight.mean(),
            "pi_log_std": jnp.clip(pi_params["params"]["log_std"], config.log_std_min, config.log_std_max).mean(),
        }
        if state.disc_loss is not None:
            metrics["loss/disc"] = state.disc_loss
        return new, metrics

    def evaluate(state: ODiceState, key: jax.Array) -> dict:
        return eval_fn(state.pi_params, data, key)

    return Agent(init, scan_segment(update), evaluate, config.gradient_steps, config.batch_size, counter="samples")


def make(config: ODiceConfig, env, env_params, data) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent` of O-DICE on ``data`` (a Dataset; IL:
    ``{"dataset": mixed, "expert": expert}``); the prepared arrays are closed over."""
    prepared = prepare(config, data, env, env_params)
    dataset, expert = split_data(data)
    refs = offline.references(dataset) or (offline.references(expert) if expert is not None else None)
    return make_from_prepared(config, env, env_params, prepared, refs)


def make_train(config: ODiceConfig, env, env_params, data) -> Callable:
    """``train(key, hparams) -> (ODiceState, metrics)``: :func:`rlsuite.core.agent.make_train` of
    :func:`make` with ``eval_every=config.eval_every`` (per-update metrics ``[gradient_steps]``,
    ``eval_*`` ``[gradient_steps / eval_every + 1]``, the first before training)."""
    return make_train_of(make(config, env, env_params, data), eval_every=config.eval_every)
