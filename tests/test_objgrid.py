"""objgrid: the MiniGrid-like go-to-object task with categorical features (GBRL's structured-input task).

A scripted oracle that reads only the observation (match the mission colour, walk along dx then dy)
solves the task through the rollout engine, which checks the observation layout, the dynamics and
the reward together; the spurious hint follows ``spurious_corr``; bad parameters fail early.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make


def oracle(obs):
    """Batched policy from observations ``[N, obs_dim]``: go to the object whose colour is the mission's."""
    k = jnp.argmax(obs[:, 3:10:4] == obs[:, 1:2], axis=1)  # slot of the mission colour (2 objects)
    dx = jnp.take_along_axis(obs[:, 4::4][:, :2], k[:, None], 1)[:, 0]
    dy = jnp.take_along_axis(obs[:, 5::4][:, :2], k[:, None], 1)[:, 0]
    return jnp.where(dx > 0, 2, jnp.where(dx < 0, 3, jnp.where(dy > 0, 0, 1)))


def test_oracle_solves_goto_through_the_engine():
    env, params = make("objgrid:goto")
    assert env.observation_space(params).shape == (10,)
    assert env.categorical_features == (0, 1, 2, 3, 6, 7)
    key = jax.random.PRNGKey(0)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, 256), params)
    # layout: mission = target's (type, colour); per object (type, colour, dx, dy); distinct colours
    t = np.asarray(state.target)
    np.testing.assert_array_equal(obs[:, 0], np.asarray(state.types)[np.arange(256), t])
    np.testing.assert_array_equal(obs[:, 1], np.asarray(state.colours)[np.arange(256), t])
    np.testing.assert_array_equal(obs[:, 4:6], np.asarray(state.pos[:, 0] - state.agent))
    assert np.all(np.asarray(state.colours[:, 0] != state.colours[:, 1]))

    traj = jax.jit(lambda k: rollout_episodes(env, params, lambda p, o, k: (oracle(o), {}), None, k, 256, 30))(key)
    ret, length = np.asarray(traj.episode_return), np.asarray(traj.episode_length)
    success = ret > 0
    # the oracle walks the Manhattan path (x first): it only fails when the distractor blocks it
    assert success.mean() > 0.8
    np.testing.assert_allclose(ret[success], 1.0 - 0.9 * length[success] / 30, rtol=1e-6)
    assert np.all(np.asarray(traj.terminated).any(0))  # every episode ends on an object, none times out
    # the random policy is far worse
    rand = jax.jit(lambda k: rollout_episodes(env, params, lambda p, o, k: (jax.random.randint(k, (o.shape[0],), 0, 4), {}),
                                              None, k, 256, 30))(key)
    assert np.asarray(rand.episode_return).mean() < 0.5 * ret.mean()


@pytest.mark.parametrize("corr, lo, hi", [(0.9, 0.85, 0.97), (1.0, 1.0, 1.0), (0.0, 0.4, 0.6)])
def test_spurious_hint_follows_its_correlation(corr, lo, hi):
    env, params = make("objgrid:goto-spurious", spurious_corr=corr)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 2000), params)
    assert obs.shape == (2000, 11) and env.categorical_features[-1] == 10
    np.testing.assert_array_equal(obs[:, 10], state.hint)
    match = float((state.hint == state.target).mean())
    assert lo <= match <= hi


def test_bad_parameters_fail_early():
    from rlsuite.envs.objgrid import ObjGrid

    with pytest.raises(ValueError, match="spurious_corr"):
        make("objgrid:goto-spurious", spurious_corr=1.5)
    with pytest.raises(ValueError, match="no parameter 'size'"):
        make("objgrid:goto", size=7)
    with pytest.raises(ValueError, match="max_steps_in_episode"):
        make("objgrid:goto", max_steps_in_episode=0)
    with pytest.raises(ValueError, match="n_colours >= n_objects"):
        ObjGrid(n_objects=5, n_colours=4)
