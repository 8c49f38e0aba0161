"""Actor / critic networks and the two action distributions (flax.linen).

Distributions are plain functions on their parameters (no distrax dependency):
categorical over logits for ``Discrete`` spaces, diagonal Gaussian (mean, log_std) for ``Box``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# ----------------------------------------------------------------------------- distributions


def categorical_sample(key, logits):
    return jax.random.categorical(key, logits)


def categorical_log_prob(logits, action):
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits):
    logp = jax.nn.log_softmax(logits)
    return -(jnp.exp(logp) * logp).sum(-1)


def gaussian_sample(key, mean, log_std):
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def gaussian_log_prob(mean, log_std, action):
    z = (action - mean) * jnp.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)


def gaussian_entropy(mean, log_std):
    return (log_std + 0.5 * (1.0 + jnp.log(2 * jnp.pi))).sum(-1) * jnp.ones(mean.shape[:-1])


# ----------------------------------------------------------------------------- action spaces


def action_info(space) -> tuple[bool, int]:
    """``(discrete, dim)``: number of actions for ``Discrete``, vector size for ``Box``."""
    from gymnax.environments import spaces  # not at import time: gymnax takes ~1.3 s to import

    if isinstance(space, spaces.Discrete):
        return True, int(space.n)
    if isinstance(space, spaces.Box):
        if len(space.shape) != 1:
            raise ValueError(f"Box action spaces must be 1-D, got shape {space.shape}")
        return False, int(space.shape[0])
    raise ValueError(f"unsupported action space {type(space).__name__}; expected Discrete or Box")


def obs_dim(space) -> int:
    return int(np.prod(space.shape))


# ----------------------------------------------------------------------------- networks


ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "elu": nn.elu}


def _act(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose tanh, relu, gelu or elu") from None


class MLP(nn.Module):
    """Orthogonally initialised MLP with a linear output layer of size ``out``; input ``[..., features]``."""

    hidden: Sequence[int]
    out: int
    activation: str = "tanh"
    out_scale: float = 1.0
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.Dense(h, kernel_init=nn.initializers.orthogonal(np.sqrt(2)), bias_init=nn.initializers.zeros)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = _act(self.activation)(x)
        return nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.out_scale), bias_init=nn.initializers.zeros)(x)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs (PureJaxRL layout).

    Returns ``(dist_params, value)`` where ``dist_params`` is ``logits`` (discrete) or
    ``(mean, log_std)`` with a state-independent ``log_std`` (continuous).
    """

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden, self.action_dim, self.activation, out_scale=0.01, name="actor")(obs)
        value = MLP(self.hidden, 1, self.activation, out_scale=1.0, name="critic")(obs)[..., 0]
        if self.discrete:
            return out, value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return (out, jnp.broadcast_to(log_std, out.shape)), value


def dist_sample(discrete: bool, key, dist):
    return categorical_sample(key, dist) if discrete else gaussian_sample(key, *dist)


def dist_log_prob(discrete: bool, dist, action):
    return categorical_log_prob(dist, action) if discrete else gaussian_log_prob(*dist, action)


def dist_entropy(discrete: bool, dist):
    return categorical_entropy(dist) if discrete else gaussian_entropy(*dist)


def dist_mode(discrete: bool, dist):
    return jnp.argmax(dist, -1) if discrete else dist[0]
