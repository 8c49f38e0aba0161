"""O-DICE: offline RL and imitation with the orthogonal-gradient DICE update.

Mao, Xu, Zhang, Zhan, "ODICE: Revealing the Mystery of Distribution Correction Estimation via
Orthogonal-gradient Update", ICLR 2024 (arXiv 2402.00348); spec sheet ``shared/papers/odice.md``.

The algorithm box, as this file reads top to bottom:

1. data: a ``Dataset`` (``rlsuite.data``) -> D4RL ``qlearning`` transitions (time-out transitions
   dropped), locomotion reward scaling ``r * 1000 / (max_return - min_return)``, actions mapped
   into ``[-1, 1]``, optional state normalisation (IL);
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

``make_train(config, dataset, env, env_params) -> train(key, hparams) -> (state, metrics)`` is pure
and jittable: gradient steps are fused in ``lax.scan`` (inner scan of ``eval_every`` steps, outer
scan over evaluations); evaluation runs the deterministic (mean) action through the engine's
``rollout_episodes``.  ``train`` vmaps over keys (seeds) and over :class:`ODiceHParams` (``lam``,
``eta``, learning rates, ...).  ``train.with_data(key, hparams, data)`` takes the prepared arrays as
an argument (use it under ``jit`` for large datasets, so they are not baked in as constants).

Offline IL (``config.mode = "il"``, ``make_train(..., expert=expert_dataset)``): the expert
trajectory is reward-free; a discriminator ``c(s, a)`` separates expert from union (expert + mixed)
transitions and the DICE reward is ``log c / (1 - c)`` (the SMODICE/DemoDICE construction).

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
  SMODICE-style state-action discriminator, pre-trained for ``disc_steps`` inside ``train``
  (unverified against the reference ``main_odice_il.py``).
- Reward scaling uses episode returns cut at a terminal, a time-out, a break in the observation
  chain, or after ``max_episode_steps`` (1000) steps, computed once on the host.
- ``metrics["feature_cos"]`` (cosine similarity of penultimate V features of s and s', the
  sheet's co-adaptation diagnostic) is recorded at every evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces
from jax.flatten_util import ravel_pytree

from rlsuite.core.rollout import rollout_episodes
from rlsuite.data.dataset import Dataset

GRADIENT_RULES = ("semi_gradient", "true_gradient", "orthogonal")
F_DIVERGENCES = ("chi2", "kl")
WEIGHTS = ("relu", "analytic")
REWARD_SCALES = ("locomotion", "none")
MODES = ("rl", "il")

# ============================================================================ config


@dataclass(frozen=True)
class ODiceConfig:
    """Static (shape-setting) settings; numeric hyper-parameters are in :class:`ODiceHParams`."""

    gradient_steps: int = 1_000_000
    """Total gradient steps (sheet: 1M offline RL, 500k IL)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_every: int = 5000
    """Gradient steps between evaluations; must divide ``gradient_steps``."""
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
    """``rl`` (dataset rewards) or ``il`` (discriminator reward from an expert trajectory)."""
    disc_steps: int = 10_000
    """IL only: discriminator gradient steps before DICE training."""
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


def check_positive(config, *names: str) -> None:
    for n in names:
        v = getattr(config, n)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{type(config).__name__}.{n} must be positive, got {v!r}")


def check_sizes(config, *names: str) -> None:
    for n in names:
        v = getattr(config, n)
        if len(v) == 0 or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in v):
            raise ValueError(f"{type(config).__name__}.{n} must be a non-empty tuple of positive ints, got {v!r}")


def _check_config(config: ODiceConfig) -> None:
    check_positive(config, "gradient_steps", "batch_size", "eval_every", "eval_episodes", "max_episode_steps")
    check_sizes(config, "value_hidden", "policy_hidden", "disc_hidden")
    for name, allowed in (
        ("gradient_rule", GRADIENT_RULES), ("f_divergence", F_DIVERGENCES), ("weight", WEIGHTS),
        ("reward_scale", REWARD_SCALES), ("mode", MODES),
    ):
        if getattr(config, name) not in allowed:
            raise ValueError(f"ODiceConfig.{name}={getattr(config, name)!r}; choose one of {allowed}")
    if config.gradient_steps % config.eval_every:
        raise ValueError(
            f"ODiceConfig.eval_every={config.eval_every} must divide gradient_steps={config.gradient_steps}"
        )
    if config.eval_horizon < 0:
        raise ValueError(f"ODiceConfig.eval_horizon must be >= 0, got {config.eval_horizon}")
    if config.mode == "il":
        check_positive(config, "disc_steps")


# ============================================================================ data


@struct.dataclass
class OfflineData:
    """Prepared transitions ``[N, ...]`` (what ``train`` consumes).

    ``actions`` are in ``[-1, 1]``; ``observations`` are raw (normalisation is applied in the
    networks with ``obs_mean`` / ``obs_std``); ``dones`` = true terminals (float).
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    dones: jax.Array
    obs_mean: jax.Array
    obs_std: jax.Array

    @property
    def size(self) -> int:
        return self.observations.shape[0]


def _field(dataset, name: str) -> np.ndarray:
    if not hasattr(dataset, name):
        raise ValueError(f"dataset has no field {name!r}; expected an rlsuite.data Dataset")
    return np.asarray(getattr(dataset, name))


def action_bounds(env, env_params) -> tuple[np.ndarray, np.ndarray]:
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        raise ValueError(
            f"O-DICE / BC / IQL here need a continuous (Box) action space; {getattr(env, 'name', env)} "
            f"has Discrete({space.n})"
        )
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"unsupported action space {space!r}; expected a 1-D Box")
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("the action space must have finite bounds")
    return low, high


def episode_returns(rewards, terminals, timeouts, observations, next_observations, max_steps: int) -> np.ndarray:
    """Returns of the dataset's episodes, cut at a terminal, a time-out, a break in the
    ``next_obs[i] == obs[i+1]`` chain, or after ``max_steps`` steps (D4RL/IQL ``return_range``)."""
    n = len(rewards)
    brk = np.zeros(n, bool)
    if n > 1:
        brk[:-1] = np.any(np.abs(next_observations[:-1] - observations[1:]) > 1e-6, axis=-1)
    ends = terminals | timeouts | brk
    out, ret, length = [], 0.0, 0
    for i in range(n):
        ret += float(rewards[i])
        length += 1
        if ends[i] or length == max_steps:
            out.append(ret)
            ret, length = 0.0, 0
    if length:
        out.append(ret)
    return np.asarray(out, np.float64)


def _as_dataset(ds) -> Dataset:
    if isinstance(ds, Dataset):
        return ds
    arrays = {k: _field(ds, k) for k in ("observations", "actions", "rewards", "next_observations", "terminals")}
    arrays["timeouts"] = _field(ds, "timeouts") if hasattr(ds, "timeouts") else np.zeros(len(arrays["rewards"]), bool)
    return Dataset.from_arrays(validate=False, **arrays)


def prepare_data(config, dataset, env, env_params, rewards_override: np.ndarray | None = None) -> OfflineData:
    """Validate a Dataset against the env and turn it into :class:`OfflineData` (host side)."""
    obs = _field(dataset, "observations").astype(np.float32)
    act = _field(dataset, "actions").astype(np.float32)
    rew = _field(dataset, "rewards").astype(np.float32) if rewards_override is None else rewards_override
    nobs = _field(dataset, "next_observations").astype(np.float32)
    term = _field(dataset, "terminals").astype(bool)
    tout = _field(dataset, "timeouts").astype(bool) if hasattr(dataset, "timeouts") else np.zeros_like(term)
    n = obs.shape[0] if obs.ndim else 0
    if n == 0:
        raise ValueError("the dataset is empty")
    obs_shape = tuple(env.observation_space(env_params).shape)
    low, high = action_bounds(env, env_params)
    if obs.shape[1:] != obs_shape or nobs.shape != obs.shape:
        raise ValueError(
            f"dataset observations have shape {obs.shape[1:]} (next_observations {nobs.shape[1:]}) "
            f"but the env's observation space is {obs_shape}"
        )
    if act.ndim == 1 and low.shape == (1,):
        act = act[:, None]
    if act.shape != (n, low.shape[0]):
        raise ValueError(f"dataset actions have shape {act.shape[1:]} but the env's action space is {low.shape}")
    for name, arr in (("rewards", rew), ("terminals", term), ("timeouts", tout)):
        if arr.shape != (n,):
            raise ValueError(f"dataset {name} has shape {arr.shape}, expected ({n},)")
    for name, arr in (("rewards", rew), ("observations", obs), ("next_observations", nobs), ("actions", act)):
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = np.argwhere(bad.reshape(n, -1).any(-1))[0, 0]
            raise ValueError(f"dataset {name} contain NaN/inf ({int(bad.sum())} values, first at index {idx})")
    if config.reward_scale == "locomotion" and rewards_override is None:
        rets = episode_returns(rew, term, tout, obs, nobs, config.max_episode_steps)
        span = rets.max() - rets.min()
        rew = rew * (1000.0 / span) if span > 0 else rew
    keep = ~(tout & ~term) if config.drop_timeouts else np.ones(n, bool)
    if not keep.any():
        raise ValueError("every transition of the dataset is a time-out; nothing left to learn from")
    act = np.clip(2.0 * (act - low) / (high - low) - 1.0, -1.0, 1.0)
    mean = obs.mean(0) if config.normalize_states else np.zeros(obs_shape, np.float32)
    std = obs.std(0) + 1e-3 if config.normalize_states else np.ones(obs_shape, np.float32)
    return OfflineData(
        observations=jnp.asarray(obs[keep]),
        actions=jnp.asarray(act[keep]),
        rewards=jnp.asarray(rew[keep], jnp.float32),
        next_observations=jnp.asarray(nobs[keep]),
        dones=jnp.asarray(term[keep], jnp.float32),
        obs_mean=jnp.asarray(mean, jnp.float32),
        obs_std=jnp.asarray(std, jnp.float32),
    )


def sample_batch(data: OfflineData, key: jax.Array, batch_size: int) -> OfflineData:
    """Uniform batch (with replacement) of ``batch_size`` transitions."""
    idx = jax.random.randint(key, (batch_size,), 0, data.observations.shape[0])
    take = lambda x: x[idx]  # noqa: E731
    return data.replace(
        observations=take(data.observations), actions=take(data.actions), rewards=take(data.rewards),
        next_observations=take(data.next_observations), dones=take(data.dones),
    )


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


def normalize(data: OfflineData, obs):
    return (obs - data.obs_mean) / data.obs_std


def make_eval(config, env, env_params, policy_net: GaussianPolicy) -> Callable:
    """``evaluate(pi_params, data, key) -> mean undiscounted return`` of the mean action."""
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
        return traj.episode_return.mean()

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

    One forward pass of V on ``[s; s']`` and one of V-bar; the (up to three) gradients are
    vector-Jacobian products of that pass.  Returns ``(grads, info, delta_pi)``: ``info["v_loss"]``
    is the linear + forward-residual objective (the same quantity for every rule), ``delta_pi[B]``
    the detached policy residual ``r + g(1-done) Vbar(s') - mean_heads V(s)``.
    """
    b = batch.observations.shape[0]
    x = normalize(batch, jnp.concatenate([batch.observations, batch.next_observations]))
    (v_all, feats), vjp = jax.vjp(lambda p: v_net.apply(p, x), v_params)
    vt_all = jax.lax.stop_gradient(v_net.apply(vt_params, x)[0].min(0))  # [2B]
    v_s, v_sp = v_all[:, :b], v_all[:, b:]  # [H, B]
    vt_s, vt_sp = vt_all[:b], vt_all[b:]
    disc = hp.gamma * (1.0 - batch.dones)
    kind = config.f_divergence
    zeros_f = jnp.zeros_like(feats)

    def grad_of(loss_fn):
        """Gradient w.r.t. v_params of ``loss_fn(v_s, v_sp)`` through the shared forward pass."""
        ct = jax.grad(lambda v: loss_fn(v[:, :b], v[:, b:]))(v_all)
        return vjp((ct, zeros_f))[0]

    linear = lambda v_s, v_sp: (1.0 - hp.lam) * v_s.mean()  # noqa: E731
    forward = lambda v_s, v_sp: hp.lam * f_star(batch.rewards + disc * vt_sp - v_s, kind).mean()  # noqa: E731
    backward = lambda v_s, v_sp: hp.lam * hp.eta * f_star(batch.rewards + disc * v_sp - vt_s, kind).mean()  # noqa: E731
    true = lambda v_s, v_sp: hp.lam * f_star(batch.rewards + disc * v_sp - v_s, kind).mean()  # noqa: E731

    c = jnp.zeros(())
    if config.gradient_rule == "semi_gradient":
        grads = grad_of(lambda v, vp: linear(v, vp) + forward(v, vp))
    elif config.gradient_rule == "true_gradient":
        grads = grad_of(lambda v, vp: linear(v, vp) + true(v, vp))
    else:
        g_lin, g_f, g_b = grad_of(linear), grad_of(forward), grad_of(backward)
        g, c = orthogonal_combine(g_f, g_b)
        grads = jax.tree.map(jnp.add, g_lin, g)
    f_s, f_sp = feats[:, :b], feats[:, b:]
    cos = (f_s * f_sp).sum(-1) / (jnp.linalg.norm(f_s, axis=-1) * jnp.linalg.norm(f_sp, axis=-1) + 1e-8)
    info = {
        "v_loss": linear(v_s, v_sp) + forward(v_s, v_sp),
        "v_mean": v_s.mean(),
        "proj_c": c,
        "feature_cos": cos.mean(),
    }
    # policy residual: forward residual with V(s) = mean of the online heads (detached)
    delta_pi = jax.lax.stop_gradient(batch.rewards + disc * vt_sp - v_s.mean(0))
    return grads, info, delta_pi


# ============================================================================ state and make_train


@struct.dataclass
class ODiceState:
    v_params: Any
    vt_params: Any
    v_opt: Any
    pi_params: Any
    pi_opt: Any
    key: jax.Array
    step: jax.Array


def make_train(config: ODiceConfig, dataset, env, env_params, expert=None) -> Callable:
    """Build ``train(key, hparams) -> (ODiceState, metrics)`` for a Dataset on ``env``.

    ``metrics`` has leaves ``[num_evals]``: ``eval_return`` (mean over ``eval_episodes``
    deterministic episodes after each ``eval_every`` steps), and the last step's ``v_loss``,
    ``pi_loss``, ``v_mean``, ``weight_mean``, ``proj_c``, ``feature_cos``.  In IL mode ``expert``
    is the reward-free expert Dataset (its rewards are ignored) and ``dataset`` the mixed one.
    """
    _check_config(config)
    if config.mode == "il":
        if expert is None:
            raise ValueError("ODiceConfig.mode='il' needs expert=<expert Dataset> (one or more reward-free trajectories)")
        union = Dataset.concatenate([_as_dataset(expert), _as_dataset(dataset)])
        data = prepare_data(config, union, env, env_params, rewards_override=np.zeros(len(_field(union, "rewards")), np.float32))
        exp_data = prepare_data(
            config, expert, env, env_params, rewards_override=np.zeros(len(_field(expert, "rewards")), np.float32)
        )
        exp_data = exp_data.replace(obs_mean=data.obs_mean, obs_std=data.obs_std)
    else:
        if expert is not None:
            raise ValueError("expert= is only used with ODiceConfig.mode='il'")
        data, exp_data = prepare_data(config, dataset, env, env_params), None
    obs_dim = data.observations.shape[1]
    action_dim = data.actions.shape[1]
    v_net = TwinV(tuple(config.value_hidden), config.value_layer_norm, heads=2 if config.twin_v else 1)
    pi_net = GaussianPolicy(action_dim, tuple(config.policy_hidden), config.tanh_mean, config.log_std_min, config.log_std_max)
    disc_net = ValueMLP(tuple(config.disc_hidden))
    evaluate = make_eval(config, env, env_params, pi_net)
    num_evals = config.gradient_steps // config.eval_every

    def il_rewards(key, hp, data, exp_data):
        """Discriminator c(s, a): expert (1) vs union (0); reward = logit c = log c/(1-c)."""
        xin = lambda d, o, a: jnp.concatenate([normalize(d, o), a], -1)  # noqa: E731
        params = disc_net.init(key, jnp.zeros((1, obs_dim + action_dim)))
        opt = optax.scale_by_adam().init(params)

        def step(carry, k):
            params, opt = carry
            k1, k2 = jax.random.split(k)
            e = sample_batch(exp_data, k1, config.batch_size)
            u = sample_batch(data, k2, config.batch_size)

            def loss(p):
                le = disc_net.apply(p, xin(data, e.observations, e.actions))[0]
                lu = disc_net.apply(p, xin(data, u.observations, u.actions))[0]
                return optax.sigmoid_binary_cross_entropy(le, 1.0).mean() + optax.sigmoid_binary_cross_entropy(lu, 0.0).mean()

            loss_val, g = jax.value_and_grad(loss)(params)
            params, opt = adam_step(params, g, opt, hp.disc_lr)
            return (params, opt), loss_val

        (params, _), losses = jax.lax.scan(step, (params, opt), jax.random.split(key, config.disc_steps))
        logits = disc_net.apply(params, xin(data, data.observations, data.actions))[0]
        return data.replace(rewards=jax.lax.stop_gradient(logits)), losses[-1]

    def update(state: ODiceState, data: OfflineData, hp: ODiceHParams):
        key, k_batch = jax.random.split(state.key)
        batch = sample_batch(data, k_batch, config.batch_size)
        v_grads, info, delta = value_gradient(config, v_net, state.v_params, state.vt_params, batch, hp)
        weight = policy_weight(delta, config, hp.weight_clip)

        def pi_loss_fn(p):
            mean, log_std = pi_net.apply(p, normalize(batch, batch.observations))
            return -(weight * gaussian_log_prob(mean, log_std, batch.actions)).mean()

        pi_loss, pi_grads = jax.value_and_grad(pi_loss_fn)(state.pi_params)
        v_params, v_opt = adam_step(state.v_params, v_grads, state.v_opt, hp.v_lr)
        pi_params, pi_opt = adam_step(state.pi_params, pi_grads, state.pi_opt, hp.pi_lr, hp.pi_weight_decay)
        vt_params = ema(state.vt_params, v_params, hp.tau)
        new = ODiceState(v_params, vt_params, v_opt, pi_params, pi_opt, key, state.step + 1)
        return new, {**info, "pi_loss": pi_loss, "weight_mean": weight.mean()}

    def train_with_data(key: jax.Array, hp: ODiceHParams, data: OfflineData, exp_data: OfflineData | None = None):
        k_v, k_pi, k_disc, k_train, k_eval = jax.random.split(key, 5)
        metrics_extra = {}
        if config.mode == "il":
            data, disc_loss = il_rewards(k_disc, hp, data, exp_data)
            metrics_extra["disc_loss"] = disc_loss
        x0 = jnp.zeros((1, obs_dim))
        v_params = v_net.init(k_v, x0)
        pi_params = pi_net.init(k_pi, x0)
        state = ODiceState(
            v_params, v_params, optax.scale_by_adam().init(v_params), pi_params,
            optax.scale_by_adam().init(pi_params), k_train, jnp.zeros((), jnp.int32),
        )

        def segment(state, k):
            state, info = jax.lax.scan(lambda s, _: update(s, data, hp), state, None, length=config.eval_every)
            ret = evaluate(state.pi_params, data, k)
            return state, {"eval_return": ret, **jax.tree.map(lambda x: x[-1], info)}

        state, metrics = jax.lax.scan(segment, state, jax.random.split(k_eval, num_evals))
        metrics.update({k: jnp.broadcast_to(v, (num_evals,)) for k, v in metrics_extra.items()})
        return state, metrics

    def train(key: jax.Array, hparams: ODiceHParams | None = None):
        hp = default_hparams(config) if hparams is None else hparams
        return train_with_data(key, hp, data, exp_data)

    train.with_data = train_with_data
    train.data = data
    train.expert_data = exp_data
    train.evaluate = evaluate
    return train
