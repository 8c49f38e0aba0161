"""The rollout engine (rlsuite.core.rollout) on real gymnax CartPole.

Covers: shapes and dtypes; auto-reset that keeps terminated vs truncated apart and exposes the
pre-reset final observation; episode statistics; chunked rollouts equal one rollout; the scan
engine equals a Python loop of per-env single steps; the fixed-horizon episode mode (masks,
frozen state after the end, horizon cut with neither flag).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control.cartpole import EnvState as CartPoleState

from rlsuite.core import rollout as R
from rlsuite.envs import make

N = 4


def balance(policy_params, obs, key):
    """A hand-written controller that keeps CartPole up for hundreds of steps."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(jnp.int32), {"tag": jnp.ones(obs.shape[0])}


def uniform(policy_params, obs, key):
    a = jax.random.randint(key, (obs.shape[0],), 0, 2)
    return a, {"logp": jnp.full(obs.shape[0], jnp.log(0.5))}


@partial(jax.jit, static_argnums=(0, 2, 5))
def _rollout(env, params, policy, pp, carry, num_steps):
    return R.rollout(env, params, policy, pp, carry, num_steps)


@partial(jax.jit, static_argnums=(0, 2, 5, 6))
def _episodes(env, params, policy, key, pp, num_envs, horizon):
    return R.rollout_episodes(env, params, policy, pp, key, num_envs, horizon)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax:CartPole-v1")


@pytest.fixture(scope="module")
def cartpole10():
    return make("gymnax:CartPole-v1", max_steps_in_episode=10)


def _cartpole_step(env, params, obs, action, time):
    """Deterministic CartPole dynamics from an observation (the state is the observation)."""
    s = CartPoleState(x=obs[0], x_dot=obs[1], theta=obs[2], theta_dot=obs[3], time=time)
    o, _, r, term, _ = env.step_env(jax.random.PRNGKey(0), s, action, params)
    return np.asarray(o), float(r), bool(term)


def test_rollout_shapes_and_dtypes(cartpole):
    env, params = cartpole
    T = 7
    carry = R.init_rollout(env, params, jax.random.PRNGKey(0), N)
    carry2, tr = _rollout(env, params, uniform, None, carry, T)
    assert tr.obs.shape == (T, N, 4) and tr.next_obs.shape == (T, N, 4)
    assert tr.action.shape == (T, N) and tr.reward.shape == (T, N)
    assert tr.terminated.shape == tr.truncated.shape == (T, N)
    assert tr.terminated.dtype == jnp.bool_ and tr.truncated.dtype == jnp.bool_
    assert tr.reward.dtype == jnp.float32 and tr.episode_return.dtype == jnp.float32
    assert tr.episode_length.dtype == jnp.int32
    assert tr.extras["logp"].shape == (T, N)
    assert carry2.obs.shape == (N, 4) and carry2.ep_return.shape == (N,)
    np.testing.assert_array_equal(tr.obs[0], carry.obs)


def test_truncation_keeps_final_obs_and_resets(cartpole10):
    """Time limit 10 with a balancing policy: every episode is truncated, never terminated."""
    env, params = cartpole10
    T = 25
    carry = R.init_rollout(env, params, jax.random.PRNGKey(1), N)
    _, tr = _rollout(env, params, balance, None, carry, T)
    trunc, term = np.asarray(tr.truncated), np.asarray(tr.terminated)
    assert not term.any()
    expected = np.zeros((T, N), bool)
    expected[[9, 19]] = True
    np.testing.assert_array_equal(trunc, expected)
    obs, nxt, act = np.asarray(tr.obs), np.asarray(tr.next_obs), np.asarray(tr.action)
    for t in range(T - 1):
        for n in range(N):
            # next_obs is the true successor of obs (pre-reset at t = 9, 19)
            o, r, te = _cartpole_step(env, params, obs[t, n], act[t, n], t % 10)
            np.testing.assert_allclose(nxt[t, n], o, rtol=1e-5, atol=1e-6)
            assert tr.reward[t, n] == r == 1.0
            if trunc[t, n]:
                # after the reset: a fresh start, not the final observation
                assert np.all(np.abs(obs[t + 1, n]) <= 0.05)
                assert not np.allclose(obs[t + 1, n], nxt[t, n])
                assert np.abs(nxt[t, n]).max() > 0.0
            else:
                np.testing.assert_array_equal(obs[t + 1, n], nxt[t, n])
    # episode statistics: exactly at the truncation steps
    np.testing.assert_array_equal(tr.episode_return, np.where(expected, 10.0, 0.0))
    np.testing.assert_array_equal(tr.episode_length, np.where(expected, 10, 0))


def test_termination_and_episode_statistics(cartpole):
    """Random actions: CartPole falls (terminated, never truncated); statistics equal a numpy
    recount of the rewards; the observation after a termination is a fresh start."""
    env, params = cartpole
    T = 120
    carry = R.init_rollout(env, params, jax.random.PRNGKey(2), N)
    carry, tr = _rollout(env, params, uniform, None, carry, T)
    term, trunc = np.asarray(tr.terminated), np.asarray(tr.truncated)
    assert term.sum() >= N and not trunc.any()
    assert not (term & trunc).any()
    ret = np.zeros(N)
    length = np.zeros(N, int)
    for t in range(T):
        ret += np.asarray(tr.reward[t])
        length += 1
        done = term[t] | trunc[t]
        np.testing.assert_allclose(tr.episode_return[t], np.where(done, ret, 0.0))
        np.testing.assert_array_equal(tr.episode_length[t], np.where(done, length, 0))
        if t + 1 < T:
            assert np.all(np.abs(np.asarray(tr.obs[t + 1])[done]) <= 0.05)
        ret[done], length[done] = 0.0, 0
    np.testing.assert_allclose(carry.ep_return, ret)
    np.testing.assert_array_equal(carry.ep_length, length)
    # a terminal next_obs is outside the thresholds
    nxt = np.asarray(tr.next_obs)[term]
    assert np.all((np.abs(nxt[:, 0]) > params.x_threshold) | (np.abs(nxt[:, 2]) > params.theta_threshold_radians))


def test_chunked_rollout_equals_one_rollout(cartpole):
    """The carry holds everything (state, obs, key, running stats): 3 x 10 steps == 30 steps."""
    env, params = cartpole
    carry = R.init_rollout(env, params, jax.random.PRNGKey(3), N)
    c_all, tr_all = _rollout(env, params, uniform, None, carry, 30)
    c, parts = carry, []
    for _ in range(3):
        c, tr = _rollout(env, params, uniform, None, c, 10)
        parts.append(tr)
    tr_chunks = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), tr_all, tr_chunks)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), c_all, c)


def test_scan_engine_equals_python_loop(cartpole):
    """lax.scan + vmap equals a Python loop over single steps of each env separately, with the
    engine's key schedule, auto-reset and statistics written out by hand."""
    env, params = cartpole
    T = 40
    carry = R.init_rollout(env, params, jax.random.PRNGKey(4), N)
    _, tr = _rollout(env, params, uniform, None, carry, T)

    step = jax.jit(env.step_env)
    reset = jax.jit(env.reset_env)
    key = carry.key
    obs = [carry.obs[n] for n in range(N)]
    states = [jax.tree.map(lambda x: x[n], carry.env_state) for n in range(N)]
    ret, length = np.zeros(N), np.zeros(N, int)
    for t in range(T):
        key, k_act, k_step, k_reset = jax.random.split(key, 4)
        action, _ = uniform(None, jnp.stack(obs), k_act)
        k_steps = jax.random.split(k_step, N)
        k_resets = jax.random.split(k_reset, N)
        for n in range(N):
            o, s, r, te, _ = step(k_steps[n], states[n], action[n], params)
            tru = bool(env.is_truncated(s, params)) and not bool(te)
            ret[n] += float(r)
            length[n] += 1
            np.testing.assert_allclose(tr.obs[t, n], obs[n], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tr.next_obs[t, n], o, rtol=1e-5, atol=1e-6)
            assert tr.action[t, n] == action[n] and tr.reward[t, n] == r
            assert bool(tr.terminated[t, n]) == bool(te) and bool(tr.truncated[t, n]) == tru
            if bool(te) or tru:
                assert tr.episode_return[t, n] == ret[n] and tr.episode_length[t, n] == length[n]
                ret[n], length[n] = 0.0, 0
                o, s = reset(k_resets[n], params)
            obs[n], states[n] = o, s


def test_episode_mode_masks_and_frozen_state(cartpole):
    env, params = cartpole
    H = 80
    traj = _episodes(env, params, uniform, jax.random.PRNGKey(5), None, 6, H)
    mask = np.asarray(traj.mask)
    assert traj.obs.shape == (H, 6, 4) and mask.shape == (H, 6)
    term, trunc = np.asarray(traj.terminated), np.asarray(traj.truncated)
    assert not trunc.any()
    for n in range(6):
        m = mask[:, n]
        L = int(m.sum())
        np.testing.assert_array_equal(m, (np.arange(H) < L).astype(np.float32))  # 1...1 0...0
        assert L < H, "random CartPole episodes end well before 80 steps"
        assert term[:, n].sum() == 1 and term[L - 1, n]  # flag on the last valid step only
        np.testing.assert_array_equal(np.asarray(traj.reward)[L:, n], 0.0)
        assert float(traj.episode_return[n]) == L == float(traj.episode_length[n])
        # frozen after the end: obs and next_obs stay at the final observation
        final = np.asarray(traj.next_obs[L - 1, n])
        np.testing.assert_array_equal(np.asarray(traj.obs)[L:, n], np.broadcast_to(final, (H - L, 4)))
        np.testing.assert_array_equal(np.asarray(traj.next_obs)[L:, n], np.broadcast_to(final, (H - L, 4)))
        # inside the episode next_obs[t] == obs[t + 1]
        np.testing.assert_array_equal(np.asarray(traj.next_obs)[: L - 1, n], np.asarray(traj.obs)[1:L, n])
    assert np.all(np.abs(np.asarray(traj.obs[0])) <= 0.05)  # every env starts fresh


def test_episode_mode_horizon_cut_and_truncation(cartpole, cartpole10):
    # horizon shorter than any episode: all mask, neither flag (cut by the horizon)
    env, params = cartpole
    traj = _episodes(env, params, balance, jax.random.PRNGKey(6), None, N, 5)
    assert np.all(np.asarray(traj.mask) == 1.0)
    assert not np.asarray(traj.terminated).any() and not np.asarray(traj.truncated).any()
    # time limit 10 inside a horizon of 15: truncated at t = 9, masked afterwards
    env, params = cartpole10
    traj = _episodes(env, params, balance, jax.random.PRNGKey(6), None, N, 15)
    trunc = np.asarray(traj.truncated)
    assert trunc[9].all() and trunc.sum() == N and not np.asarray(traj.terminated).any()
    np.testing.assert_array_equal(np.asarray(traj.mask)[:, 0], (np.arange(15) < 10).astype(np.float32))
    np.testing.assert_array_equal(traj.episode_return, np.full(N, 10.0))
    assert traj.extras["tag"].shape == (15, N)


def test_unconditional_reset_path_gives_identical_results():
    """Envs that opt out of the batch-level lax.cond (``reset_under_cond = False``, as Brax does)
    get exactly the same transitions."""
    from gymnax.environments.classic_control.cartpole import CartPole

    class CartPoleNoCond(CartPole):
        reset_under_cond = False

    env, params = make("gymnax:CartPole-v1")
    env2 = CartPoleNoCond()
    carry = R.init_rollout(env, params, jax.random.PRNGKey(7), N)
    c1, tr1 = _rollout(env, params, uniform, None, carry, 60)
    c2, tr2 = _rollout(env2, params, uniform, None, carry, 60)
    assert np.asarray(tr1.terminated).any()
    jax.tree.map(np.testing.assert_array_equal, tr1, tr2)
    jax.tree.map(np.testing.assert_array_equal, c1, c2)
