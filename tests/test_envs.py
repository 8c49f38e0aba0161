"""rlsuite.envs: registry, Brax adapter, wrappers, gymnasium export and host path, plus the
bad-input errors of the env layer and the engine (each message must name the bad value).

Brax compiles slowly, so the Brax tests share one module-scoped fixture of jitted functions and
there are only two of them.
"""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment, spaces

from rlsuite.core import returns
from rlsuite.core import rollout as R
from rlsuite.envs import ClipAction, FlattenObservation, make, register, to_gymnasium
from rlsuite.envs import registry as registry_mod
from rlsuite.envs.wrappers import BraxToGymnax

# ----------------------------------------------------------------------------- registry vs gymnax


@pytest.mark.parametrize("name", ["CartPole-v1", "Breakout-MinAtar"])
def test_registry_matches_raw_gymnax(name):
    env, params = make(f"gymnax:{name}")
    raw, raw_params = gymnax.make(name)
    assert type(env) is type(raw)
    assert jax.tree.structure(params) == jax.tree.structure(raw_params)
    jax.tree.map(np.testing.assert_array_equal, params, raw_params)
    space = raw.action_space(raw_params)
    key = jax.random.PRNGKey(0)
    o1, s1 = env.reset(key, params)
    o2, s2 = raw.reset(key, raw_params)
    np.testing.assert_array_equal(o1, o2)
    for _ in range(5):
        key, k_a, k_s = jax.random.split(key, 3)
        a = space.sample(k_a)
        o1, s1, r1, te1, tr1, _ = env.step(k_s, s1, a, params)
        o2, s2, r2, te2, tr2, _ = raw.step(k_s, s2, a, raw_params)
        np.testing.assert_array_equal(o1, o2)
        assert float(r1) == float(r2) and bool(te1) == bool(te2) and bool(tr1) == bool(tr2)


def test_gymnax_kwargs_override_params():
    env, params = make("gymnax:CartPole-v1", max_steps_in_episode=7, gravity=20.0)
    assert params.max_steps_in_episode == 7 and params.gravity == 20.0
    _, default = make("gymnax:CartPole-v1")
    assert default.max_steps_in_episode == 500 and default.gravity == 9.8
    obs, state = env.reset_env(jax.random.PRNGKey(0), params)
    for _ in range(7):
        obs, state, *_ = env.step_env(jax.random.PRNGKey(0), state, 0, params)
    assert bool(env.is_truncated(state, params))


def test_unknown_id_lists_close_matches():
    with pytest.raises(ValueError, match=r"'gymnax:CartPol-v1'.*Did you mean: gymnax:CartPole-v1"):
        make("gymnax:CartPol-v1")
    with pytest.raises(ValueError, match=r"'brax:hoper'.*brax:hopper"):
        make("brax:hoper")
    with pytest.raises(ValueError, match=r"'gymnasium:CartPole-v9'.*gymnasium:CartPole-v1"):
        make("gymnasium:CartPole-v9")


# ----------------------------------------------------------------------------- Brax adapter


@pytest.fixture(scope="module")
def brax_run():
    """Our adapter and raw Brax (spring) stepped side by side in ONE jitted scan (one compile)."""
    import brax.envs

    ours, params = make("brax:inverted_pendulum", backend="spring", episode_length=3)
    raw = brax.envs.get_environment("inverted_pendulum", backend="spring")

    @jax.jit
    def run(key, actions):
        obs0, st = ours.reset_env(key, params)
        rs = raw.reset(key)

        def body(c, a):
            st, rs = c
            obs, st, r, term, _ = ours.step_env(key, st, a, params)
            rs = raw.step(rs, a)
            mine = (obs, r, term, ours.is_truncated(st, params))
            return (st, rs), (mine, (rs.obs, rs.reward, rs.done))

        _, (mine, theirs) = jax.lax.scan(body, (st, rs), actions)
        return (obs0, raw.reset(key).obs), mine, theirs

    actions = jnp.array([[0.5], [-1.0], [1.0], [0.0]])
    return ours, params, run(jax.random.PRNGKey(0), actions)


def test_brax_adapter_matches_raw_brax(brax_run):
    env, params, ((obs0, raw_obs0), mine, theirs) = brax_run
    assert env.backend == "spring" and params.max_steps_in_episode == 3
    assert env.action_space(params).shape == (1,) and env.observation_space(params).shape == (4,)
    np.testing.assert_array_equal(obs0, raw_obs0)
    obs, r, term, trunc = mine
    raw_obs, raw_r, raw_done = theirs
    np.testing.assert_allclose(obs, raw_obs, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(r, raw_r)
    np.testing.assert_array_equal(term, raw_done.astype(bool))
    assert term.dtype == jnp.bool_
    # our own time limit (episode_length=3) is reported apart from Brax's done
    np.testing.assert_array_equal(trunc, [False, False, True, True])


def test_brax_backend_and_episode_length_errors():
    with pytest.raises(ValueError, match="'warp'"):
        make("brax:inverted_pendulum", backend="warp")
    with pytest.raises(ValueError, match="episode_length.*0"):
        make("brax:inverted_pendulum", episode_length=0)


# ----------------------------------------------------------------------------- wrappers


class _ActionEcho(environment.Environment):
    """Probe env: the observation is the action it received (shows what a wrapper passed on)."""

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=3)

    def reset_env(self, key, params):
        return jnp.zeros(2), environment.EnvState(time=0)

    def step_env(self, key, state, action, params):
        return action, environment.EnvState(time=state.time + 1), -jnp.sum(action**2), jnp.array(False), {}

    def action_space(self, params=None):
        return spaces.Box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.5]), (2,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


def test_clip_action_clips_into_bounds():
    env = ClipAction(_ActionEcho())
    params = env.default_params
    _, s = env.reset_env(jax.random.PRNGKey(0), params)
    obs, s2, r, _, _ = env.step_env(jax.random.PRNGKey(0), s, jnp.array([3.0, -2.0]), params)
    np.testing.assert_array_equal(obs, [1.0, 0.0])
    obs, *_ = env.step_env(jax.random.PRNGKey(0), s, jnp.array([-0.25, 0.75]), params)
    np.testing.assert_array_equal(obs, [-0.25, 0.5])
    assert env.action_space(params).shape == (2,) and bool(env.is_truncated(s2, params)) is False
    # on a real env: Pendulum-v1 with torque 10 behaves as with the bound 2
    raw, pp = make("gymnax:Pendulum-v1")
    key = jax.random.PRNGKey(0)
    _, s = raw.reset_env(key, pp)
    o1, _, r1, _, _ = ClipAction(raw).step_env(key, s, jnp.array([10.0]), pp)
    o2, _, r2, _, _ = raw.step_env(key, s, jnp.array([2.0]), pp)
    np.testing.assert_array_equal(o1, o2)
    assert float(r1) == float(r2)


def test_wrappers_copy_and_pickle():
    """Wrappers forward unknown attributes to the inner env without breaking copy / pickle
    (gymnax's ``with_transition_gradients`` copies envs)."""
    import copy
    import pickle

    env, params = make("gymnax:Pendulum-v1")
    for w in (ClipAction(env), FlattenObservation(ClipAction(env))):
        for c in (copy.copy(w), pickle.loads(pickle.dumps(w))):
            assert type(c) is type(w) and c.action_space(params).shape == (1,)
        assert w.num_actions == env.num_actions and w.name == env.name  # forwarded


def test_flatten_observation_minatar():
    raw, params = make("gymnax:Breakout-MinAtar")
    env = FlattenObservation(raw)
    assert env.observation_space(params).shape == (400,)

    @jax.jit
    def both(key):
        o, s = env.reset_env(key, params)
        o_raw, s_raw = raw.reset_env(key, params)
        o1, _, r1, _, _ = env.step_env(key, s, 1, params)
        o1_raw, _, r1_raw, _, _ = raw.step_env(key, s_raw, 1, params)
        return (o, o1, r1), (o_raw, o1_raw, r1_raw)

    (o, o1, r1), (o_raw, o1_raw, r1_raw) = both(jax.random.PRNGKey(1))
    assert o.shape == (400,) and o_raw.shape == (10, 10, 4)
    np.testing.assert_array_equal(o, o_raw.reshape(-1))
    np.testing.assert_array_equal(o1, o1_raw.reshape(-1))
    assert float(r1) == float(r1_raw)


# ----------------------------------------------------------------------------- gymnasium export / host path


def test_to_gymnasium_passes_checker_and_matches_jax_env():
    from gymnasium.utils.env_checker import check_env

    env, params = make("gymnax:CartPole-v1", max_steps_in_episode=5)
    genv = to_gymnasium(env, params)
    check_env(genv, skip_render_check=True)

    obs, _ = genv.reset(seed=3)
    key = jax.random.PRNGKey(3)
    key, k = jax.random.split(key)
    o_jax, s = env.reset_env(k, params)
    np.testing.assert_allclose(obs, o_jax)
    for t, a in enumerate([0, 1, 1, 0, 1]):
        obs, r, term, trunc, _ = genv.step(a)
        key, k = jax.random.split(key)
        o_jax, s, r_jax, te_jax, _ = env.step_env(k, s, a, params)
        np.testing.assert_allclose(obs, o_jax, rtol=1e-5, atol=1e-6)  # jitted vs eager
        assert r == float(r_jax) and term == bool(te_jax)
        assert trunc == (t == 4)  # the time limit becomes gymnasium's truncated flag


def test_to_gymnasium_continuous_passes_checker():
    from gymnasium.utils.env_checker import check_env

    env, params = make("gymnax:Pendulum-v1")
    genv = to_gymnasium(env, params)
    check_env(genv, skip_render_check=True)
    assert genv.action_space.shape == (1,) and genv.observation_space.shape == (3,)


def test_host_rollout_matches_jax_path_types():
    """gymnasium CartPole on the host gives the same Transition types/shapes as gymnax CartPole."""

    @jax.jit
    def policy(pp, obs, key):
        a = jax.random.randint(key, (obs.shape[0],), 0, 2)
        return a, {"logp": jnp.full(obs.shape[0], jnp.log(0.5))}

    T, n = 30, 3
    henv, hparams = make("gymnasium:CartPole-v1", num_envs=n)
    assert hparams is None and henv.action_space().n == 2 and henv.observation_space().shape == (4,)
    hcarry = R.init_rollout_host(henv, seed=0)
    hcarry, htr = R.rollout_host(henv, policy, None, hcarry, T)

    env, params = make("gymnax:CartPole-v1")
    carry = R.init_rollout(env, params, jax.random.PRNGKey(0), n)
    carry, tr = R.rollout(env, params, policy, None, carry, T)

    assert jax.tree.structure(htr) == jax.tree.structure(tr)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(htr), jax.tree.leaves(tr), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (jax.tree_util.keystr(path), a.dtype, b.dtype)
    assert hcarry.obs.shape == carry.obs.shape
    # host auto-reset: statistics and terminations behave like the JAX path
    term = np.asarray(htr.terminated)
    assert term.any() and not (term & np.asarray(htr.truncated)).any()
    done_returns = np.asarray(htr.episode_return)[term]
    np.testing.assert_array_equal(done_returns, np.asarray(htr.episode_length)[term])  # reward 1 per step
    t, i = np.argwhere(term)[0]
    if t + 1 < T:
        assert np.all(np.abs(np.asarray(htr.obs)[t + 1, i]) <= 0.05)


# ----------------------------------------------------------------------------- bad inputs


def _cartpole():
    return make("gymnax:CartPole-v1")


def _noop(p, obs, key):
    return jnp.zeros(obs.shape[0], jnp.int32), ()


def test_bad_num_envs():
    env, params = _cartpole()
    with pytest.raises(ValueError, match=r"num_envs.*\b0\b"):
        R.init_rollout(env, params, jax.random.PRNGKey(0), 0)
    with pytest.raises(ValueError, match=r"num_envs.*2\.5"):
        R.rollout_episodes(env, params, _noop, None, jax.random.PRNGKey(0), 2.5, 4)


def test_bad_num_steps():
    env, params = _cartpole()
    carry = R.init_rollout(env, params, jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match=r"num_steps.*-3"):
        R.rollout(env, params, _noop, None, carry, -3)


def test_bad_horizon():
    env, params = _cartpole()
    with pytest.raises(ValueError, match=r"horizon.*\b0\b"):
        R.rollout_episodes(env, params, _noop, None, jax.random.PRNGKey(0), 2, 0)


def test_unknown_env_id_and_namespace():
    with pytest.raises(ValueError, match="'gymnax:NoSuchEnv-v0'"):
        make("gymnax:NoSuchEnv-v0")
    with pytest.raises(ValueError, match="'nons:thing'"):
        make("nons:thing")


def test_id_without_namespace():
    with pytest.raises(ValueError, match=r"'CartPole-v1'.*namespace:name"):
        make("CartPole-v1")


def test_bad_gymnax_param():
    with pytest.raises(ValueError, match=r"'gravityy'.*gravity"):
        make("gymnax:CartPole-v1", gravityy=1.0)


def test_unknown_brax_backend():
    with pytest.raises(ValueError, match=r"'warp'.*spring"):
        BraxToGymnax("inverted_pendulum", backend="warp")


def test_register_reserved_namespace_and_missing_namespace():
    def f():
        return _cartpole()

    for ns in ("gymnax", "brax", "gymnasium"):
        with pytest.raises(ValueError, match=f"'{ns}'.*reserved"):
            register(f"{ns}:mine", f)
    with pytest.raises(ValueError, match="'mine-v0'.*namespace"):
        register("mine-v0", f)


def test_duplicate_registration():
    def f1():
        return _cartpole()

    def f2():
        return _cartpole()

    try:
        register("testdup:cartpole", f1, "first")
        register("testdup:cartpole", f1, "same factory again is fine")
        with pytest.raises(ValueError, match="'testdup:cartpole'.*already registered"):
            register("testdup:cartpole", f2)
        env, params = make("testdup:cartpole")
        assert params.max_steps_in_episode == 500
    finally:
        registry_mod._REGISTRY.pop("testdup:cartpole", None)
        registry_mod._DESCRIPTIONS.pop("testdup:cartpole", None)


def test_unsupported_spaces():
    from rlsuite.envs.wrappers import _to_gymnasium_space

    with pytest.raises(TypeError, match="Tuple"):
        make("gymnasium:Blackjack-v1")  # Tuple observation space: refused when made
    with pytest.raises(TypeError, match="Dict"):
        _to_gymnasium_space(spaces.Dict({"a": spaces.Discrete(2)}))


def test_bad_host_num_envs():
    with pytest.raises(ValueError, match=r"num_envs.*-1"):
        make("gymnasium:CartPole-v1", num_envs=-1)


def test_bad_reward_to_go_mode():
    with pytest.raises(ValueError, match="'episode'"):
        returns.reward_to_go(jnp.ones(3), jnp.ones(3), 0.9, discount_from="episode")
