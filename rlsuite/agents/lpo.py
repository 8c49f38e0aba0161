"""Learned / Discovered Policy Optimisation: PPO with its clipped objective replaced by a drift.

Lu et al., "Discovered Policy Optimisation" (LPO / DPO, NeurIPS 2022, arXiv:2210.05639) and
Jackson, Lu, Kirsch, Lange, Whiteson, Foerster, "Discovering Temporally-Aware Reinforcement
Learning Algorithms" (TA-LPO, ICLR 2024, arXiv:2402.05828).  Mirror learning: the policy loss is

    L = -mean( r A - D(r, A) ),   r = pi / pi_old,   A = GAE advantage normalised per minibatch,

with a *drift* ``D >= 0``, ``D = 0`` and ``dD/dr = 0`` at ``r = 1``.  Value and entropy losses,
rollouts, GAE, minibatching and the optimiser are PPO's (:func:`rlsuite.agents.ppo.ppo_loss` with
its ``objective`` override point; :mod:`rlsuite.agents.actor_critic`).  ``LPOConfig.method``:

- ``lpo``: learned drift, a bias-free MLP Dense(128) -> tanh -> Dense(1) on 8 features
  ``[r-1, (r-1)^2, log r, (log r)^2]`` and the same four times ``A``;
  ``D = relu(net(x) - 1e-4)`` (``net(0) = 0``, so the constraints hold for any weights);
- ``ta-lpo``: the same with ``(n/N) x`` appended (16 inputs), ``n`` = updates done before this one
  (the learner state's counter, broadcast to every minibatch sample), ``N = config.num_updates``;
- ``dpo``: the closed form (hparams ``dpo_alpha`` = 2, ``dpo_beta`` = 0.6)
  ``A >= 0: relu((r-1)A - alpha tanh((r-1)A/alpha))``, ``A < 0: relu(log(r)A - beta tanh(log(r)A/beta))``;
- ``ppo-clip``: PPO's drift ``relu((r - clip(r, 1 +- eps)) A)``, for which ``-mean(rA - D)`` is
  PPO's clipped loss (a reference and a test of the machinery; not registered).

The learned drift lives in the traced hyper-parameters: ``LPOHParams.drift`` is the flax params
dict ``{"params": {"hidden": {"kernel": [F, 128]}, "out": {"kernel": [128, 1]}}}`` (F = 8 or 16;
``{}`` for dpo / ppo-clip), so a meta-ES evolves ``hparams.drift`` by ``vmap`` over a population
with no special code.  A scalar ``drift`` (``--hparam drift=0``) sets every weight to that value.
Objective files: :func:`save_drift` / :func:`load_drift` (flax msgpack; shapes and the drift's
meaning, ``method`` / ``ppo_init`` / ``clip_inputs``, are checked with one clear message);
``rlsuite train lpo --objective FILE`` makes :func:`default_hparams` load FILE.

Choices and deviations from the papers / reference code, with reasons:

- Default drift without ``objective``: all weights **zero**, so net = 0 everywhere.  With the
  default ``ppo_init=True`` this is PPO's clip drift (up to the 1e-4 margin): an untrained LPO
  trains like PPO, and a meta-ES started from it starts where the original DPO search started
  (PPO-initialised drift; the spec sheet's CPU check compares against that first generation).
  With ``ppo_init=False`` zeros give ``D = 0``, plain unclipped PG.  :func:`init_drift` gives the
  random (lecun-normal) initialisation instead.
- PPO-initialised form: the original repo's ``D = relu(relu((r - clip(r, 1 +- eps)) A) + net -
  1e-4)`` (additive), not the modern repo's ``relu(net - 1e-4 - relu(ppo_drift))``: only the
  additive form *is* PPO's drift when net = 0; the subtractive one is 0 there (sheet §8.6).
  ``eps`` is ``hparams.clip_eps`` (also PPO's value-clipping range, as in PureJaxRL).
- Features in the sheet's order ``r-1`` (the original uses ``1-r``, the same function class up
  to weight signs); ``log r`` is ``log pi - log pi_old`` exactly, not ``log(exp(.))``.
- Optional input clipping to [-2, 2] (``clip_inputs``, a later variant): applied to the 8 base
  features before the temporal copy, off by default as in the original LPO.
- TA-LPO: ``n/N`` only, no ``log N`` (one env, one horizon, as in the paper); ``n`` is constant
  within an update (all epochs / minibatches), ``n/N`` runs over ``0 .. (N-1)/N``.
- Exploding ratios (sheet §8.7): no ``nan_to_num`` on gradients; gradients are norm-clipped as in
  PPO, ``clip_inputs`` bounds the drift's inputs, and the runner stops on the first non-finite
  metric instead of silently zeroing NaNs.
- Base PPO settings are PureJaxRL's CartPole ones (``LPOConfig.preset`` gives the MinAtar / Brax
  ones); the original DPO ran on Brax Ant with its own settings (sheet §6).  PPO's own deviations
  (time-outs bootstrap, normalisation statistics in the learner) apply.
- The drift is a hyper-parameter, not learner state: it is not in checkpoints; a resumed run
  reloads ``objective`` from its path (a moved or changed file fails / changes the run).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization, struct

from rlsuite.agents import actor_critic as ac
from rlsuite.agents import ppo
from rlsuite.core import validate as V
from rlsuite.core.agent import Agent
from rlsuite.core.agent import make_train as make_train_of

METHODS = ("lpo", "ta-lpo", "dpo", "ppo-clip")
LEARNED = ("lpo", "ta-lpo")
DRIFT_WIDTH = 128
DRIFT_MARGIN = 1e-4
INPUT_CLIP = 2.0
FILE_FORMAT = "rlsuite-drift-v1"


@dataclasses.dataclass(frozen=True)
class LPOConfig(ppo.PPOConfig):
    """LPO / DPO / TA-LPO configuration: PPO's fields (``clip_eps`` is the value-clipping range
    and, with ``ppo_init`` or ``method='ppo-clip'``, the PPO drift's range) plus the drift's."""

    method: str = "lpo"
    """lpo (learned drift), ta-lpo (learned, temporally aware), dpo (closed form) or ppo-clip
    (PPO's drift, a reference)."""
    objective: Optional[str] = None
    """lpo / ta-lpo: path of a learned drift (save_drift); None = all-zero weights (see ppo_init)."""
    ppo_init: bool = True
    """lpo / ta-lpo: add PPO's clip drift inside the relu, D = relu(D_ppo + net - 1e-4)."""
    clip_inputs: bool = False
    """lpo / ta-lpo: clip the drift network's features to [-2, 2]."""
    dpo_alpha: float = 2.0
    """dpo: default alpha of the A >= 0 branch (hparams.dpo_alpha)."""
    dpo_beta: float = 0.6
    """dpo: default beta of the A < 0 branch (hparams.dpo_beta)."""

    @staticmethod
    def preset(name: str, **overrides) -> "LPOConfig":
        """PPO's presets (``cartpole``, ``minatar``, ``brax``) with LPO's fields."""
        base = dataclasses.asdict(ppo.PPOConfig.preset(name))
        return dataclasses.replace(LPOConfig(**base), **overrides)


@struct.dataclass
class LPOHParams:
    """Numeric hyper-parameters (a pytree: ``vmap`` sweeps them, an ES evolves ``drift``)."""

    lr: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    dpo_alpha: jax.Array
    dpo_beta: jax.Array
    drift: Any
    """lpo / ta-lpo: the drift network's flax params dict (see the module docstring); else ``{}``."""


Config, HParams = LPOConfig, LPOHParams
HPARAM_RANGES = {**ppo.HPARAM_RANGES, "dpo_alpha": V.POSITIVE, "dpo_beta": V.POSITIVE}
INERT = {"eval_episodes": "evaluation only"}


# ----------------------------------------------------------------------------- drift network


class DriftNet(nn.Module):
    """Bias-free Dense(128) -> tanh -> Dense(1): ``[..., F] -> [...]``, ``net(0) = 0``."""

    width: int = DRIFT_WIDTH

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(self.width, use_bias=False, name="hidden")(x))
        return nn.Dense(1, use_bias=False, name="out")(h)[..., 0]


def num_inputs(config: LPOConfig) -> int:
    """Features of the drift network: 8 (lpo), 16 (ta-lpo)."""
    return 16 if config.method == "ta-lpo" else 8


def drift_shapes(n_inputs: int) -> dict:
    """The params-dict shapes of a drift with ``n_inputs`` features."""
    return {"params": {"hidden": {"kernel": (n_inputs, DRIFT_WIDTH)}, "out": {"kernel": (DRIFT_WIDTH, 1)}}}


def init_drift(key: jax.Array, config: LPOConfig) -> dict:
    """Random (flax lecun-normal) drift params for ``config.method`` (lpo / ta-lpo)."""
    if config.method not in LEARNED:
        raise ValueError(f"LPOConfig.method={config.method!r} has no learned drift (lpo / ta-lpo do)")
    return DriftNet().init(key, jnp.zeros((1, num_inputs(config)), jnp.float32))


def es_start_drift(key: jax.Array, config: LPOConfig) -> dict:
    """Where an ES over the drift starts: random (lecun-normal) hidden layer, **zero** output layer.

    The drift is then exactly the default one (PPO's clip drift with ``ppo_init``, net = 0), but
    the ES gradient is first order.  At the all-zero default the bias-free network is odd in
    ``(W1, W2) -> (-W1, -W2)``: the two members of an antithetic pair (which share their keys)
    are the same function, get the same fitness, and the estimated gradient is round-off that
    Adam amplifies into a random walk.  ``rlsuite meta lpo|ta-lpo`` start here without ``--init``.
    """
    p = init_drift(key, config)
    return {"params": {"hidden": {"kernel": p["params"]["hidden"]["kernel"]},
                       "out": {"kernel": jnp.zeros_like(p["params"]["out"]["kernel"])}}}


def zero_drift(config: LPOConfig) -> dict:
    """All-zero drift params (the default: PPO's drift with ``ppo_init``, else D = 0)."""
    return jax.tree.map(lambda s: jnp.zeros(s, jnp.float32), drift_shapes(num_inputs(config)),
                        is_leaf=lambda s: isinstance(s, tuple))


def to_temporal(params: Mapping) -> dict:
    """An 8-input (lpo) drift as a 16-input (ta-lpo) one with zero temporal weights."""
    _check_shapes(params, 8, "to_temporal(params)")
    k = jnp.asarray(params["params"]["hidden"]["kernel"])
    return {"params": {"hidden": {"kernel": jnp.concatenate([k, jnp.zeros_like(k)], 0)},
                       "out": {"kernel": jnp.asarray(params["params"]["out"]["kernel"])}}}


def _check_shapes(params: Any, n_inputs: int, what: str) -> None:
    want = drift_shapes(n_inputs)
    try:
        got = {"params": {layer: {"kernel": tuple(np.shape(params["params"][layer]["kernel"]))}
                          for layer in ("hidden", "out")}}
        extra = set(params) - {"params"} or set(params["params"]) - {"hidden", "out"}
    except (KeyError, TypeError, IndexError):
        got, extra = None, set()
    if got != want or extra:
        raise ValueError(f"{what}: expected a drift params dict with shapes {want}, got "
                         f"{jax.tree.map(np.shape, params) if isinstance(params, Mapping) else type(params).__name__}")


def _guess_inputs(params: Any) -> int:
    """8 or 16 from a params dict's first kernel (8 when it is neither: the check then fails)."""
    try:
        n = int(np.shape(params["params"]["hidden"]["kernel"])[0])
    except (KeyError, TypeError, IndexError):
        return 8
    return n if n in (8, 16) else 8


def _drift_params(drift: Any, config: LPOConfig) -> dict:
    """``hparams.drift`` as params: a dict is checked, a scalar fills every weight."""
    if isinstance(drift, Mapping):
        _check_shapes(drift, num_inputs(config), "LPOHParams.drift")
        return drift
    drift = jnp.asarray(drift, jnp.float32)
    if drift.ndim:
        raise ValueError(f"LPOHParams.drift must be a params dict or a scalar, got shape {drift.shape}")
    return jax.tree.map(lambda z: jnp.full(z.shape, drift), zero_drift(config))


# ----------------------------------------------------------------------------- drifts


def drift_features(ratio, adv, log_ratio=None, progress=None, clip_inputs: bool = False):
    """``[..., 8]`` features ``[r-1, (r-1)^2, log r, (log r)^2] (+ the same x A)``; with
    ``progress`` (n/N, broadcastable) ``[..., 16]`` with ``progress * x`` appended."""
    log_ratio = jnp.log(ratio) if log_ratio is None else log_ratio
    ratio, adv, log_ratio = jnp.broadcast_arrays(ratio, adv, log_ratio)
    d = ratio - 1.0
    base = jnp.stack([d, d * d, log_ratio, log_ratio * log_ratio], -1)
    x = jnp.concatenate([base, base * adv[..., None]], -1)
    if clip_inputs:
        x = jnp.clip(x, -INPUT_CLIP, INPUT_CLIP)
    if progress is not None:
        x = jnp.concatenate([x, jnp.asarray(progress, x.dtype)[..., None] * x], -1)
    return x


def ppo_clip_drift(ratio, adv, clip_eps):
    """PPO's drift ``relu((r - clip(r, 1 - eps, 1 + eps)) A)``: ``rA - D = min(rA, clip(r) A)``."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)) * adv)


def dpo_drift(ratio, adv, alpha, beta, log_ratio=None):
    """DPO's closed-form drift (Lu et al. 2022, alpha = 2, beta = 0.6)."""
    log_ratio = jnp.log(ratio) if log_ratio is None else log_ratio
    pos = (ratio - 1.0) * adv
    neg = log_ratio * adv
    return jnp.where(adv >= 0,
                     jax.nn.relu(pos - alpha * jnp.tanh(pos / alpha)),
                     jax.nn.relu(neg - beta * jnp.tanh(neg / beta)))


def drift(config: LPOConfig, hp: LPOHParams, ratio, adv, progress=0.0, log_ratio=None):
    """``D(r, A)`` of ``config.method`` with hyper-parameters ``hp`` (elementwise over ``ratio``,
    ``adv``; ``progress`` = n/N is used by ta-lpo only)."""
    log_ratio = jnp.log(ratio) if log_ratio is None else log_ratio
    if config.method == "dpo":
        return dpo_drift(ratio, adv, hp.dpo_alpha, hp.dpo_beta, log_ratio)
    if config.method == "ppo-clip":
        return ppo_clip_drift(ratio, adv, hp.clip_eps)
    params = _drift_params(hp.drift, config)
    p = progress if config.method == "ta-lpo" else None
    out = DriftNet().apply(params, drift_features(ratio, adv, log_ratio, p, config.clip_inputs))
    if config.ppo_init:
        out = ppo_clip_drift(ratio, adv, hp.clip_eps) + out
    return jax.nn.relu(out - DRIFT_MARGIN)


def make_objective(config: LPOConfig, progress=0.0):
    """``objective(log_ratio, adv, hp) = r A - D(r, A)`` for :func:`rlsuite.agents.ppo.ppo_loss`."""

    def objective(log_ratio, adv, hp):
        ratio = jnp.exp(log_ratio)
        return ratio * adv - drift(config, hp, ratio, adv, progress, log_ratio)

    return objective


# ----------------------------------------------------------------------------- objective files


def save_drift(path: str, params: Mapping, config: LPOConfig | None = None) -> str:
    """Write a drift (8- or 16-input params dict) to ``path`` (flax msgpack).

    With ``config`` the file also records ``method``, ``ppo_init`` and ``clip_inputs``, which
    :func:`load_drift` then checks against the loading config.  Returns ``path``.
    """
    n = num_inputs(config) if config is not None else _guess_inputs(params)
    _check_shapes(params, n, f"save_drift({path!r})" + (f" for method={config.method!r}" if config else ""))
    record = {"format": FILE_FORMAT, "params": jax.tree.map(lambda a: np.asarray(a, np.float32), params)}
    if config is not None:
        record["meta"] = {"method": config.method, "ppo_init": bool(config.ppo_init),
                          "clip_inputs": bool(config.clip_inputs)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(record))
    return path


def load_drift(path: str, config: LPOConfig | None = None) -> dict:
    """Read a drift written by :func:`save_drift`; with ``config`` check that it fits (input
    count, and ``method`` / ``ppo_init`` / ``clip_inputs`` when the file records them)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"drift objective file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            record = serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several types on garbage
        raise ValueError(f"drift objective file {path!r} is corrupt or not a drift file ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FILE_FORMAT or "params" not in record:
        raise ValueError(f"drift objective file {path!r} is not a {FILE_FORMAT} file (write it with save_drift)")
    params = record["params"]
    if config is not None:
        meta = record.get("meta", {})
        for k in ("method", "ppo_init", "clip_inputs"):
            if k in meta and meta[k] != getattr(config, k):
                raise ValueError(f"drift objective file {path!r} was saved with {k}={meta[k]!r}, but "
                                 f"LPOConfig.{k}={getattr(config, k)!r}; set --{k.replace('_', '-')} to match")
        _check_shapes(params, num_inputs(config), f"drift objective file {path!r} (method={config.method!r})")
    else:
        _check_shapes(params, _guess_inputs(params), f"drift objective file {path!r}")
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)


# ----------------------------------------------------------------------------- protocol


def default_drift(config: LPOConfig) -> dict:
    """``hparams.drift`` by default: the ``objective`` file, else zeros; ``{}`` for dpo / ppo-clip."""
    if config.method not in LEARNED:
        return {}
    if config.objective is not None:
        return load_drift(config.objective, config)
    return zero_drift(config)


def default_hparams(config: LPOConfig) -> LPOHParams:
    f = lambda x: jnp.asarray(x, jnp.float32)
    return LPOHParams(
        f(config.lr), f(config.gamma), f(config.gae_lambda), f(config.clip_eps), f(config.ent_coef),
        f(config.vf_coef), f(config.max_grad_norm), f(config.dpo_alpha), f(config.dpo_beta),
        default_drift(config),
    )


def validate(config: LPOConfig) -> None:
    ppo.validate(config)
    V.choice(config, "method", METHODS)
    V.positive(config, "dpo_alpha", "dpo_beta")
    if config.objective is not None:
        if config.method not in LEARNED:
            raise ValueError(f"LPOConfig.objective applies to method lpo / ta-lpo, not {config.method!r}")
        load_drift(config.objective, config)


def make(config: LPOConfig, env, env_params) -> Agent:
    """The protocol :class:`~rlsuite.core.agent.Agent`: PPO's update with the drift objective;
    metrics as PPO's (``loss/actor`` is ``-mean(rA - D)``)."""
    validate(config)
    n_updates = config.num_updates

    def learn(state: ac.ACState, batch: ac.Batch, hp, net, discrete, optimizer, key):
        progress = state.update.astype(jnp.float32) / n_updates  # n/N, the same for every sample
        loss = functools.partial(ppo.ppo_loss, objective=make_objective(config, progress))
        return ppo._make_learn(config, loss)(state, batch, hp, net, discrete, optimizer, key)

    return ac.make_agent(config, env, env_params, learn, ppo._optimizer_fn(config))


def make_train(config: LPOConfig, env, env_params):
    """``train(key, hparams) -> (ACState, metrics)`` over all ``config.num_updates`` updates."""
    return make_train_of(make(config, env, env_params))


make_policy, policy_params = ppo.make_policy, ppo.policy_params
