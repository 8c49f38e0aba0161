"""Regression test for the jaxlib CPU deadlock worked around in rlsuite/__init__.py.

Without the flag this program (vmapped PPO training whose metrics are dropped, with clip + Adam per
parameter leaf as PPO had before issue 17) never finishes on jaxlib 0.10.2 with 2 runtime threads
(results/benchmarks/xla_scheduler_hang.md); the test runs it in a subprocess with a time limit so
a regression fails instead of hanging the suite.  The slow test checks that the program does hang
without the flag, i.e. that the first test can fail."""

import os
import subprocess
import sys

import pytest

PROGRAM = """
import jax, optax, rlsuite
from rlsuite.agents import actor_critic as ac, ppo
from rlsuite.core.agent import make_train
from rlsuite.envs import make
env, p = make("gymnax:CartPole-v1")
cfg = ppo.PPOConfig(total_timesteps=512 * 20)
tree_adam = lambda hp: optax.chain(optax.clip_by_global_norm(hp.max_grad_norm),
                                   optax.adam(lambda c: hp.lr * (1.0 - (c // 16) / cfg.num_updates), eps=1e-5))
train = make_train(ac.make_agent(cfg, env, p, ppo._make_learn(cfg), tree_adam))
f = jax.jit(jax.vmap(lambda k: train(k, ppo.default_hparams(cfg))[0].params))
keys = jax.random.split(jax.random.PRNGKey(0), 4)
c = f.lower(keys).compile()
print("compiled", flush=True)
jax.block_until_ready(c(keys))
print("finished")
"""


def test_vmapped_training_without_metrics_finishes():
    assert "concurrency_optimized_scheduler=false" in os.environ.get("XLA_FLAGS", "")
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # rlsuite must set it by itself
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "finished" in out.stdout


@pytest.mark.slow
def test_the_program_hangs_without_the_flag():
    """Jaxlib's default scheduler on 2 runtime threads: the program compiles, then never finishes."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the deadlock needs >= 2 runtime threads")
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_enable_concurrency_optimized_scheduler=true", PJRT_NPROC="2")
    with pytest.raises(subprocess.TimeoutExpired) as e:
        subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=90)
    out = e.value.stdout or b""
    assert "compiled" in (out.decode() if isinstance(out, bytes) else out)


def test_an_explicit_scheduler_setting_is_kept():
    """The benchmarks' opt-out (jaxlib's default scheduler, ``...=true``) must survive ``import rlsuite``."""
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_enable_concurrency_optimized_scheduler=true")
    code = "import os, rlsuite; print(os.environ['XLA_FLAGS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["--xla_cpu_enable_concurrency_optimized_scheduler=true"]
