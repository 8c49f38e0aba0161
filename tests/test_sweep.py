"""Sweeps: grid construction, run_sweep == separate runs, chunked == unchunked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.agents import ppo
from rlsuite.core.sweep import grid, run_sweep, seed_keys
from rlsuite.envs import make

TINY = ppo.PPOConfig(total_timesteps=4 * 16 * 2, num_envs=4, num_steps=16, num_minibatches=2, update_epochs=1)


def test_grid_and_sweep_match_separate_runs():
    env, params = make("gymnax:CartPole-v1")
    train = ppo.make_train(TINY, env, params)
    hps, points = grid(ppo.default_hparams(TINY), lr=[1e-4, 1e-3], ent_coef=[0.0])
    assert points == [{"lr": 1e-4, "ent_coef": 0.0}, {"lr": 1e-3, "ent_coef": 0.0}]
    keys = seed_keys([0, 1])
    out, _ = run_sweep(train, keys, hps)
    chunked, _ = run_sweep(train, keys, hps, chunk_size=3)
    single, _ = jax.jit(train)(jax.random.PRNGKey(1), ppo.default_hparams(TINY).replace(lr=jnp.float32(1e-3), ent_coef=jnp.float32(0.0)))
    for a, b, c in zip(jax.tree.leaves(out.params), jax.tree.leaves(chunked.params), jax.tree.leaves(single.params)):
        assert a.shape[:2] == (2, 2)
        np.testing.assert_allclose(np.asarray(a[1, 1]), np.asarray(c), rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)


def test_sweep_bad_inputs():
    hp = ppo.default_hparams(TINY)
    with pytest.raises(ValueError, match="'learning_rate'"):
        grid(hp, learning_rate=[1e-3])
    with pytest.raises(ValueError, match="'lr' are empty"):
        grid(hp, lr=[])
    with pytest.raises(ValueError, match="at least one seed"):
        seed_keys([])
