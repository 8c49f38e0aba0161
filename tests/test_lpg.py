"""LPG agent: the meta-network's reverse scan, episode resets, the A2C special case, rule files,
TA-LPG inputs and bad input (meta_discovery.md §1, §4, §9)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rlsuite.agents import a2c, lpg
from rlsuite.envs import registry

SMALL = lpg.LPGConfig(total_timesteps=4 * 8 * 3, num_envs=4, num_steps=8, meta_width=8, embed_width=4,
                      pred_dim=3, eval_episodes=2, lr=0.5, critic_lr=0.5)


@pytest.fixture(scope="module")
def cartpole():
    return registry.make("gymnax:CartPole-v1")


def _random_inputs(key, T=7, N=3, config=SMALL):
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (T, N, lpg.num_meta_inputs(config)))
    done = jax.random.bernoulli(k2, 0.3, (T, N))
    return x, done, lpg.init_meta(k3, config)


def test_reverse_scan_equals_a_python_loop():
    x, done, meta = _random_inputs(jax.random.PRNGKey(0))
    hs = lpg.reverse_gru(SMALL, meta["gru"], x, done)
    cell = jax.jit(lambda h, x_t: nn.GRUCell(features=SMALL.meta_width).apply({"params": meta["gru"]}, h, x_t)[0])
    h = jnp.zeros((x.shape[1], SMALL.meta_width))
    want = [None] * x.shape[0]
    for t in reversed(range(x.shape[0])):
        h = jnp.where(done[t][:, None], 0.0, h)
        h = cell(h, x[t])
        want[t] = h
    np.testing.assert_allclose(hs, jnp.stack(want), rtol=1e-5, atol=1e-6)


def test_an_episode_end_resets_the_recurrent_state():
    x, _, meta = _random_inputs(jax.random.PRNGKey(1), T=6, N=1)
    done = jnp.zeros((6, 1), bool).at[2].set(True)  # step 2 ends an episode: steps 3.. are another
    x2 = x.at[3:].set(jax.random.normal(jax.random.PRNGKey(9), x[3:].shape))
    out1, out2 = (lpg.meta_outputs(SMALL, meta, xx, done) for xx in (x, x2))
    np.testing.assert_allclose(out1[0][:3], out2[0][:3], rtol=1e-6)  # nothing after the end leaks back
    np.testing.assert_allclose(out1[1][:3], out2[1][:3], rtol=1e-6)
    assert not np.allclose(out1[0][3:], out2[0][3:])
    no_end = jnp.zeros_like(done)  # without the end, the later steps do reach the earlier ones
    assert not np.allclose(lpg.meta_outputs(SMALL, meta, x, no_end)[0][:3],
                           lpg.meta_outputs(SMALL, meta, x2, no_end)[0][:3])


def test_rule_outputting_minus_advantage_with_alpha_y_zero_is_an_a2c_policy_gradient_step(cartpole):
    env, params = cartpole
    config = dataclasses.replace(SMALL, hidden=(16,), lr=0.05)
    learner = lpg.make_learner(config, env, params)
    hp = lpg.default_hparams(config).replace(alpha_y=jnp.float32(0.0), max_grad_norm=jnp.float32(jnp.inf))
    state = learner.init(jax.random.PRNGKey(3), hp, params)
    # a hand-set rule: pi_hat = -A (GAE of the agent's own critic), y_hat anything

    rule = lpg.a2c_rule(learner, hp, normalize=False)
    new, _, _ = jax.jit(lambda s: learner.update(s, hp, hp.meta, params, rule_fn=rule))(state)
    # A2C's loss on the same rollout, with the same advantages, through a2c.a2c_loss
    tr = jax.jit(lambda s: learner.collect(s, params)[1])(state)
    adv, target = jax.jit(learner.critic_targets)(state.critic, tr, hp)

    class PolicyOnly:  # a2c_loss reads (dist, value) from net.apply
        @staticmethod
        def apply(p, obs):
            return learner.apply(p, obs)[0], jnp.zeros(obs.shape[:-1])

    a2c_hp = a2c.default_hparams(a2c.A2CConfig(vf_coef=0.0, ent_coef=0.0))
    from rlsuite.agents.actor_critic import Batch

    batch = Batch(tr.obs, tr.action, jnp.zeros_like(adv), jnp.zeros_like(adv), adv, target)
    grads = jax.jit(jax.grad(lambda p: a2c.a2c_loss(p, PolicyOnly, True, batch, a2c_hp)[0]))(state.params)
    want = optax.apply_updates(state.params, jax.tree.map(lambda g: -hp.lr * g, grads))
    got_pi, want_pi = new.params["params"]["pi"], want["params"]["pi"]
    for a, b in zip(jax.tree.leaves(got_pi), jax.tree.leaves(want_pi)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got_pi["kernel"], state.params["params"]["pi"]["kernel"])  # it did move
    # the y head does not move with alpha_y = 0 (the KL term is the only one that reaches it)
    np.testing.assert_allclose(new.params["params"]["y"]["kernel"], state.params["params"]["y"]["kernel"])


def test_ta_lpg_inputs_are_progress_and_log_lifetime():
    n_over_N, log_N = lpg.lifetime_inputs(jnp.int32(5), 20)
    assert float(n_over_N) == pytest.approx(0.25) and float(log_N) == pytest.approx(np.log(20))
    config = dataclasses.replace(SMALL, temporal=True)
    T, N = 4, 2
    x = lpg.meta_inputs(config, lpg.init_meta(jax.random.PRNGKey(0), config), jnp.ones((T, N)),
                        jnp.zeros((T, N), bool), jnp.full((T, N), 0.5), jnp.ones((T, N, 3)) / 3,
                        jnp.ones((T, N, 3)) / 3, 0.99, (n_over_N, log_N))
    assert x.shape == (T, N, 7)
    np.testing.assert_allclose(x[..., -2], 0.25)
    np.testing.assert_allclose(x[..., -1], np.log(20), rtol=1e-6)
    with pytest.raises(ValueError, match="lifetime"):
        lpg.meta_inputs(config, None, *(jnp.zeros((T, N)),) * 3, jnp.zeros((T, N, 3)), jnp.zeros((T, N, 3)), 0.99)


def test_rule_file_roundtrip_and_clear_errors(tmp_path, cartpole):
    meta = lpg.init_meta(jax.random.PRNGKey(2), SMALL)
    path = lpg.save_rule(str(tmp_path / "rule.msgpack"), meta, SMALL)
    cfg = dataclasses.replace(SMALL, rule=path)
    got = lpg.default_hparams(cfg).meta
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(meta)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lpg.validate(dataclasses.replace(SMALL, rule=str(tmp_path / "missing")))
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt|not a rlsuite-lpg-rule"):
        lpg.validate(dataclasses.replace(SMALL, rule=str(bad)))
    with pytest.raises(ValueError, match="meta_width=8"):
        lpg.validate(dataclasses.replace(SMALL, rule=path, meta_width=16))
    with pytest.raises(ValueError, match="discrete-action"):
        lpg.make(SMALL, *registry.make("gymnax:Pendulum-v1"))
    with pytest.raises(ValueError, match="optimizer"):
        lpg.validate(dataclasses.replace(SMALL, optimizer="rmsprop"))


def test_trains_through_the_protocol_and_the_rule_changes_training(cartpole):
    from rlsuite.core.agent import make_train

    env, params = cartpole
    agent = lpg.make(SMALL, env, params)
    hp = lpg.default_hparams(SMALL)
    train = jax.jit(make_train(agent))
    _, m1 = train(jax.random.PRNGKey(0), hp)
    _, m2 = train(jax.random.PRNGKey(0), hp.replace(meta=lpg.init_meta(jax.random.PRNGKey(7), SMALL)))
    assert m1["env_steps"][-1] == SMALL.total_timesteps
    assert np.all(np.isfinite(m1["loss/agent"]))
    assert not np.allclose(m1["loss/agent"], m2["loss/agent"])
