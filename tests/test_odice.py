"""Tests for O-DICE (rlsuite.agents.odice) and the offline baselines (BC, IQL).

Datasets are built here with the rollout engine on gymnax Pendulum-v1 from a noisy hand-written
controller (energy-pumping swing-up + PD balance; with probability ``eps`` a uniformly random
torque instead).  eps = 0.7 gives a "medium" dataset (mean return ~ -770; the clean controller
scores ~ -150, uniform random ~ -1230).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite.agents import odice
from rlsuite.agents.offline_baselines import (
    BCConfig,
    IQLConfig,
    bc_default_hparams,
    make_train_bc,
    make_train_iql,
)
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.data.dataset import Dataset
from rlsuite.envs import make

# ----------------------------------------------------------------------------- data


def pendulum_expert(obs):
    c, s, w = obs[:, 0], obs[:, 1], obs[:, 2]
    th = jnp.arctan2(s, c)
    energy = 0.5 * w**2 + 15.0 * (c - 1.0)  # theta'' = 15 sin(theta) + 3u  (gymnax constants)
    swing = jnp.where(energy < 0, 2.0 * jnp.sign(w + 1e-3), -2.0 * jnp.sign(w))
    u = jnp.where(c > 0.85, -(10.0 * th + 2.0 * w), swing)
    return jnp.clip(u, -2.0, 2.0)[:, None]


def noisy_policy(eps, obs, key):
    k1, k2 = jax.random.split(key)
    a = pendulum_expert(obs)
    rnd = jax.random.uniform(k1, a.shape, minval=-2.0, maxval=2.0)
    use = jax.random.uniform(k2, (obs.shape[0], 1)) < eps
    return jnp.where(use, rnd, a), None


def collect(env, env_params, eps, key, num_envs, num_steps) -> Dataset:
    """Engine rollout -> Dataset with contiguous episodes (env-major order)."""
    carry = init_rollout(env, env_params, key, num_envs)
    _, tr = jax.jit(lambda c: rollout(env, env_params, noisy_policy, eps, c, num_steps))(carry)

    def flat(x):
        return np.asarray(jnp.swapaxes(x, 0, 1)).reshape((num_envs * num_steps,) + x.shape[2:])

    tout = np.asarray(tr.truncated).copy()
    tout[-1] |= ~np.asarray(tr.terminated)[-1]  # close the cut trajectories
    return Dataset.from_arrays(
        observations=flat(tr.obs), actions=flat(tr.action), rewards=flat(tr.reward),
        next_observations=flat(tr.next_obs), terminals=flat(tr.terminated), timeouts=flat(jnp.asarray(tout)),
    )


@pytest.fixture(scope="module")
def pendulum():
    return make("gymnax:Pendulum-v1")


@pytest.fixture(scope="module")
def small_ds(pendulum):
    env, p = pendulum
    return collect(env, p, 0.7, jax.random.PRNGKey(0), 4, 200)


TINY = dict(
    gradient_steps=20, eval_every=10, eval_episodes=2, eval_horizon=20, batch_size=32,
    value_hidden=(16, 16), policy_hidden=(16, 16),
)

# ----------------------------------------------------------------------------- f* and projection


def test_f_star_values_and_conjugate():
    assert float(odice.f_star(jnp.asarray(1.0))) == pytest.approx(1.25)
    assert float(odice.f_star(jnp.asarray(-3.0))) == pytest.approx(-1.0)
    # f*(d) = max_{x >= 0} x d - (x - 1)^2, checked on a grid of d and a fine grid of x
    d = np.linspace(-6, 6, 121)
    x = np.linspace(0, 10, 40001)
    ref = np.max(x[None] * d[:, None] - (x[None] - 1) ** 2, axis=1)
    np.testing.assert_allclose(np.asarray(odice.f_star(jnp.asarray(d))), ref, atol=1e-4)
    assert float(odice.f_star(jnp.asarray(0.3), "kl")) == pytest.approx(np.exp(-0.7), rel=1e-6)


def _rand_tree(key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "a": {"kernel": scale * jax.random.normal(k1, (5, 7)), "bias": scale * jax.random.normal(k2, (7,))},
        "b": scale * jax.random.normal(k3, (7, 3)),
    }


def _flat(t):
    return jax.flatten_util.ravel_pytree(t)[0]


def test_projection_is_orthogonal_and_parallel_case():
    g_f, g_b = _rand_tree(jax.random.PRNGKey(0)), _rand_tree(jax.random.PRNGKey(1), 3.0)
    g, c = odice.orthogonal_combine(g_f, g_b)
    f, gg = _flat(g_f), _flat(g)
    # <g - g_f, g_f> = 0 (float32 precision) and the component along g_f is g_f's
    assert abs(float(jnp.dot(gg - f, f))) < 1e-4 * float(jnp.dot(f, f))
    np.testing.assert_allclose(float(jnp.dot(gg, f)), float(jnp.dot(f, f)), rtol=1e-5)
    # g_b parallel to g_f -> g = g_f
    g_par, c_par = odice.orthogonal_combine(g_f, jax.tree.map(lambda x: -2.5 * x, g_f))
    np.testing.assert_allclose(_flat(g_par), f, atol=1e-5)
    assert float(c_par) == pytest.approx(-2.5, rel=1e-5)
    # the 1e-10 guard: g_f = 0 gives g = g_b, no NaN
    zero = jax.tree.map(jnp.zeros_like, g_f)
    g0, _ = odice.orthogonal_combine(zero, g_b)
    np.testing.assert_allclose(_flat(g0), _flat(g_b), atol=1e-6)


def test_flattened_projection_differs_from_per_layer():
    g_f, g_b = _rand_tree(jax.random.PRNGKey(2)), _rand_tree(jax.random.PRNGKey(3))
    g, _ = odice.orthogonal_combine(g_f, g_b)
    per_leaf = jax.tree.map(lambda f, b: odice.orthogonal_combine(f, b)[0], g_f, g_b)
    assert float(jnp.abs(_flat(g) - _flat(per_leaf)).max()) > 1e-2
    # and the flattened result is exactly the numpy formula over the concatenation
    f, b = np.asarray(_flat(g_f), np.float64), np.asarray(_flat(g_b), np.float64)
    ref = f + b - (f @ b) / (f @ f) * f
    np.testing.assert_allclose(np.asarray(_flat(g)), ref, rtol=1e-4, atol=1e-5)


_value_gradient = jax.jit(odice.value_gradient, static_argnums=(0, 1))


def _value_setup(small_ds, pendulum, **cfg):
    env, p = pendulum
    config = odice.ODiceConfig(**{**TINY, **cfg})
    data = odice.prepare_data(config, small_ds, env, p)
    net = odice.TwinV(config.value_hidden, config.value_layer_norm)
    params = net.init(jax.random.PRNGKey(0), data.observations[:1])
    target = net.init(jax.random.PRNGKey(1), data.observations[:1])
    batch = odice.sample_batch(data, jax.random.PRNGKey(2), 64)
    return config, net, params, target, batch


def test_eta_zero_is_semi_gradient(small_ds, pendulum):
    config, net, params, target, batch = _value_setup(small_ds, pendulum)
    hp = odice.default_hparams(eta=0.0)
    g_orth, _, d1 = _value_gradient(config, net, params, target, batch, hp)
    semi = config.__class__(**{**config.__dict__, "gradient_rule": "semi_gradient"})
    g_semi, _, d2 = _value_gradient(semi, net, params, target, batch, hp)
    np.testing.assert_allclose(_flat(g_orth), _flat(g_semi), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(d1, d2)


def test_true_gradient_is_full_gradient(small_ds, pendulum):
    config, net, params, target, batch = _value_setup(small_ds, pendulum, gradient_rule="true_gradient")
    hp = odice.default_hparams()
    g, _, _ = _value_gradient(config, net, params, target, batch, hp)
    disc = hp.gamma * (1 - batch.dones)

    def loss(p_):
        v, v2 = net.apply(p_, batch.observations)[0], net.apply(p_, batch.next_observations)[0]
        return (1 - hp.lam) * v.mean() + hp.lam * odice.f_star(batch.rewards + disc * v2 - v).mean()

    np.testing.assert_allclose(_flat(g), _flat(jax.grad(loss)(params)), rtol=1e-4, atol=1e-6)


def test_value_gradient_decomposition(small_ds, pendulum):
    """O-DICE's gradient minus the linear term has component g_f along g_f, where g_f / eta g_b
    are recomputed here independently with jax.grad of the sheet's two losses."""
    config, net, params, target, batch = _value_setup(small_ds, pendulum)
    hp = odice.default_hparams(eta=0.7)
    g, info, _ = _value_gradient(config, net, params, target, batch, hp)
    s = batch.observations
    s2 = batch.next_observations
    vt_s, vt_s2 = net.apply(target, s)[0].min(0), net.apply(target, s2)[0].min(0)
    disc = hp.gamma * (1 - batch.dones)
    g_lin = jax.grad(lambda p_: (1 - hp.lam) * net.apply(p_, s)[0].mean())(params)
    g_f = jax.grad(lambda p_: hp.lam * odice.f_star(batch.rewards + disc * vt_s2 - net.apply(p_, s)[0]).mean())(params)
    g_b = jax.grad(
        lambda p_: hp.lam * hp.eta * odice.f_star(batch.rewards + disc * net.apply(p_, s2)[0] - vt_s).mean()
    )(params)
    rest = _flat(g) - _flat(g_lin)
    f, b = _flat(g_f), _flat(g_b)
    assert float(jnp.abs(jnp.dot(rest - f, f))) < 1e-4 * float(jnp.dot(f, f))
    c = jnp.dot(f, b) / jnp.dot(f, f)
    np.testing.assert_allclose(rest, f + b - c * f, rtol=1e-3, atol=1e-6)
    assert float(info["proj_c"]) == pytest.approx(float(c), rel=1e-3)


# ----------------------------------------------------------------------------- vmap, baselines


def test_vmap_over_seeds_and_hparams_equals_separate_runs(small_ds, pendulum):
    """One vmap over (seed, (lambda, eta)) pairs equals separate runs of the same train."""
    env, p = pendulum
    train = odice.make_train(odice.ODiceConfig(**TINY), small_ds, env, p)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    hp_list = [odice.default_hparams(lam=0.5, eta=0.2), odice.default_hparams(lam=0.8, eta=1.0)]
    hps = jax.tree.map(lambda *x: jnp.stack(x), *hp_list)
    _, m_vmap = jax.jit(jax.vmap(train))(keys, hps)
    one = jax.jit(train)
    for i in range(2):
        _, m_i = one(keys[i], hp_list[i])
        np.testing.assert_allclose(m_vmap["eval_return"][i], m_i["eval_return"], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(m_vmap["v_loss"][i], m_i["v_loss"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(m_vmap["v_loss"][0], m_vmap["v_loss"][1])


def test_baselines_run(small_ds, pendulum):
    env, p = pendulum
    common = dict(gradient_steps=20, eval_every=10, eval_episodes=2, eval_horizon=20, batch_size=32, policy_hidden=(16, 16))
    _, m = jax.jit(make_train_bc(BCConfig(**common), small_ds, env, p))(jax.random.PRNGKey(0), bc_default_hparams())
    assert m["eval_return"].shape == (2,) and np.isfinite(m["pi_loss"]).all()
    _, m = jax.jit(make_train_iql(IQLConfig(hidden=(16, 16), **common), small_ds, env, p))(jax.random.PRNGKey(0))
    assert np.isfinite(m["q_loss"]).all() and np.isfinite(m["eval_return"]).all()


def test_il_mode_runs(small_ds, pendulum):
    env, p = pendulum
    expert = collect(env, p, 0.0, jax.random.PRNGKey(5), 1, 200)
    cfg = odice.il_config(**{**TINY, "disc_steps": 10})
    train = odice.make_train(cfg, small_ds, env, p, expert=expert)
    assert float(jnp.abs(train.data.rewards).max()) == 0.0  # reward-free inputs
    _, m = jax.jit(train)(jax.random.PRNGKey(0))
    assert np.isfinite(m["disc_loss"]).all() and m["eval_return"].shape == (2,)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs(small_ds, pendulum):
    env, p = pendulum
    cfg = odice.ODiceConfig(**TINY)
    with pytest.raises(ValueError, match="observation space"):
        bad = small_ds.replace(observations=small_ds.observations[:, :2], next_observations=small_ds.next_observations[:, :2])
        odice.make_train(cfg, bad, env, p)
    with pytest.raises(ValueError, match="rewards contain NaN"):
        r = np.array(small_ds.rewards)
        r[7] = np.nan
        odice.make_train(cfg, small_ds.replace(rewards=r), env, p)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        odice.make_train(odice.ODiceConfig(**{**TINY, "batch_size": 0}), small_ds, env, p)
    with pytest.raises(ValueError, match="gradient_steps must be positive"):
        odice.make_train(odice.ODiceConfig(**{**TINY, "gradient_steps": -5}), small_ds, env, p)
    with pytest.raises(ValueError, match="value_hidden"):
        odice.make_train(odice.ODiceConfig(**{**TINY, "value_hidden": (16, 0)}), small_ds, env, p)
    with pytest.raises(ValueError, match="gradient_rule"):
        odice.make_train(odice.ODiceConfig(**{**TINY, "gradient_rule": "full"}), small_ds, env, p)
    with pytest.raises(ValueError, match="must divide"):
        odice.make_train(odice.ODiceConfig(**{**TINY, "eval_every": 7}), small_ds, env, p)
    with pytest.raises(ValueError, match="expert="):
        odice.make_train(odice.il_config(**TINY), small_ds, env, p)
    with pytest.raises(ValueError, match="unknown O-DICE hyper-parameter"):
        odice.default_hparams(lamda=0.5)
    cart, cp = make("gymnax:CartPole-v1")
    with pytest.raises(ValueError, match="continuous"):
        odice.make_train(cfg, small_ds, cart, cp)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        make_train_bc(BCConfig(batch_size=0), small_ds, env, p)


# ----------------------------------------------------------------------------- learning (slow)


@pytest.mark.slow
def test_odice_beats_medium_dataset_on_pendulum(pendulum):
    """Medium dataset (eps = 0.7 noisy controller, 20k transitions, mean return ~ -770); O-DICE
    with small networks and 5k gradient steps must reach a clearly better policy (> mean + 300)."""
    env, p = pendulum
    ds = collect(env, p, 0.7, jax.random.PRNGKey(0), 10, 2000)
    data_mean = float(ds.episode_returns().mean())
    cfg = odice.ODiceConfig(gradient_steps=5000, eval_every=2500, value_hidden=(64, 64), policy_hidden=(64, 64))
    _, m = jax.jit(odice.make_train(cfg, ds, env, p))(jax.random.PRNGKey(0))
    final = float(m["eval_return"][-1])
    assert final > data_mean + 300.0, (final, data_mean)
