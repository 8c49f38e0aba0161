"""Regression test for the jaxlib CPU deadlock worked around in rlsuite/__init__.py.

Without the flag this program (vmapped PPO training whose metrics are dropped) never finishes on
jaxlib 0.10.2; the test runs it in a subprocess with a time limit so a regression fails instead
of hanging the suite."""

import os
import subprocess
import sys

PROGRAM = """
import jax, rlsuite
from rlsuite.agents import ppo
from rlsuite.envs import make
env, p = make("gymnax:CartPole-v1")
cfg = ppo.PPOConfig(total_timesteps=512 * 20)
train = ppo.make_train(cfg, env, p)
f = jax.jit(jax.vmap(lambda k: train(k, ppo.default_hparams(cfg))[0].params))
jax.block_until_ready(f(jax.random.split(jax.random.PRNGKey(0), 4)))
print("finished")
"""


def test_vmapped_training_without_metrics_finishes():
    assert "concurrency_optimized_scheduler=false" in os.environ.get("XLA_FLAGS", "")
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # rlsuite must set it by itself
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "finished" in out.stdout


def test_an_explicit_scheduler_setting_is_kept():
    """The benchmarks' opt-out (jaxlib's default scheduler, ``...=true``) must survive ``import rlsuite``."""
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_enable_concurrency_optimized_scheduler=true")
    code = "import os, rlsuite; print(os.environ['XLA_FLAGS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["--xla_cpu_enable_concurrency_optimized_scheduler=true"]
