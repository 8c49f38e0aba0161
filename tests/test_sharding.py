"""Sharding the run axis over devices (rlsuite.core.sharding): flags, padding, and sharded == unsharded.

The 8-device checks run in a subprocess with ``--xla_force_host_platform_device_count=8``
appended to ``XLA_FLAGS`` (after the scheduler flag ``import rlsuite`` sets), so the virtual
devices never leak into other tests.  What "identical" means here: the same runs with the same
keys; discrete outcomes (evaluation returns, training-episode returns) are bit-identical, float
metrics and parameters agree to float rounding (XLA's CPU kernels sum in an order that depends on
the batch shape each device sees, as a multi-seed vmap does against single runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rlsuite.core import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_with_devices(code: str, n: int = 8, timeout: int = 600, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter with ``n`` virtual CPU devices; it prints one JSON line
    prefixed ``RESULT``, returned as a dict."""
    import rlsuite  # noqa: F401  (its scheduler flag is in os.environ["XLA_FLAGS"] now; keep it)

    e = dict(os.environ, **(env or {}))
    e["XLA_FLAGS"] = (e.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
    e["JAX_PLATFORMS"] = "cpu"
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, f"subprocess failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


# ----------------------------------------------------------------------------- flags (no jax)


def test_flags_are_taken_out_of_argv_and_checked():
    scale, rest = sharding.parse_flags(["ppo", "--devices", "4", "--seeds", "8", "--coordinator=10.0.0.1:1234",
                                        "--num-processes", "2", "--process-id", "1"])
    assert rest == ["ppo", "--seeds", "8"]
    assert scale == sharding.Scale(4, "10.0.0.1:1234", 2, 1) and scale.distributed
    assert sharding.parse_flags(["--devices=all"])[0] == sharding.Scale(None)
    env = {"JAX_COORDINATOR_ADDRESS": "h:99", "JAX_NUM_PROCESSES": "3", "JAX_PROCESS_ID": "2"}
    assert sharding.make_scale(environ=env) == sharding.Scale(None, "h:99", 3, 2)
    assert sharding.make_scale(environ={"RLSUITE_DISTRIBUTED": "auto"}).auto


@pytest.mark.parametrize("argv, message", [
    (["--devices", "0"], "--devices must be a positive integer or 'all', got '0'"),
    (["--devices", "two"], "--devices must be a positive integer or 'all', got 'two'"),
    (["--devices"], "--devices needs a value"),
    (["--devices", "2", "--devices", "3"], "--devices given twice"),
    (["--coordinator", "localhost"], "missing ['--num-processes', '--process-id']"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in [0, 1]"),
    (["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"], "--num-processes must be a positive"),
    (["--cpu-threads", "0"], "--cpu-threads must be a positive integer, got '0'"),
    (["--cpu-threads", "1.5"], "--cpu-threads must be a positive integer, got '1.5'"),
])
def test_bad_flags_fail_with_one_clear_message(argv, message):
    with pytest.raises(ValueError) as e:
        sharding.parse_flags(argv, environ={})
    assert message in str(e.value)


def test_cpu_threads_sets_the_runtime_thread_count_before_the_backend_starts():
    """``--cpu-threads N`` is taken out of argv and the CPU runtime then runs N worker threads
    (counted by name in /proc); after the backend started, another count is refused clearly."""
    code = """
        import collections, json, os
        from rlsuite.core import sharding
        scale, rest = sharding.from_argv(["ppo", "--cpu-threads", "1", "--seeds", "2"])
        import jax
        jax.numpy.ones(3).sum().block_until_ready()
        names = collections.Counter(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
        try:
            sharding.set_cpu_threads(2)
            refused = ""
        except RuntimeError as e:
            refused = str(e)
        print("RESULT " + json.dumps(dict(rest=rest, threads=scale.cpu_threads, eigen=names["tf_XLAEigen"],
                                          refused=refused)))
    """
    r = run_with_devices(code, n=1, timeout=120)  # an inherited PJRT_NPROC is overridden by the flag
    assert r["rest"] == ["ppo", "--seeds", "2"] and r["threads"] == 1
    assert r["eigen"] == 1
    assert "--cpu-threads 2: JAX's backend has already started" in r["refused"]


def test_too_many_devices_and_padding():
    with pytest.raises(ValueError, match="--devices 5: this process has only 1 cpu device"):
        sharding.mesh_devices(5)
    x = {"a": np.arange(6).reshape(3, 2)}
    assert np.array_equal(sharding.pad_rows(x, 5)["a"], np.array([[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]))
    r = sharding.Runs(3)  # one device: the plain programs, no padding
    assert not r.sharded and r.padded == 3 and r.describe() == "1 device"


# ----------------------------------------------------------------------------- 8 virtual devices

ES_CODE = """
import json
import rlsuite, jax, jax.numpy as jnp, numpy as np
from rlsuite.meta.es import ESConfig, make_es, run_es

assert jax.device_count() == 8, jax.devices()

def fitness(p, k):  # a noisy non-linear fitness: every run draws its own noise from its key
    x = p["w"] + 0.1 * jax.random.normal(k, p["w"].shape)
    return -jnp.sum(jnp.tanh(x) ** 2) + jnp.sum(jnp.sin(x @ jnp.ones((4, 4))))

z = {"w": jnp.zeros(4)}
out = {}
for d in (1, 8):  # 6 members x 2 seeds = 12 runs: padded to 16 on 8 devices
    es = make_es(ESConfig(population=6, seeds=2, generations=2, segments=1, sigma=0.1), fitness, z, devices=d)
    s = run_es(es, z, f"{TMP}/es{d}", progress=False)
    out[d] = {"fitness": [json.loads(l)["fitness"] for l in open(f"{TMP}/es{d}/metrics.jsonl")],
              "devices": s["devices"]}

from rlsuite.meta import deep_ga
ga_cfg = deep_ga.GAConfig(population=6, truncation=3, generations=2, segments=1, horizon=30, elite_candidates=2,
                          elite_episodes=2, test_episodes=2, hidden=(8,))
for d in (1, 8):  # 6 individuals (+ elite re-evaluations): padded to 8 on 8 devices
    deep_ga.run("gymnax:CartPole-v1", ga_cfg, f"{TMP}/ga{d}", devices=d, progress=False)
    out[f"ga{d}"] = [{k: v for k, v in json.loads(l).items() if k != "wall_s"}
                     for l in open(f"{TMP}/ga{d}/metrics.jsonl")]
print("RESULT " + json.dumps(out))
"""


def test_es_and_ga_generations_sharded_over_8_devices_equal_one_device(tmp_path):
    out = run_with_devices(ES_CODE.replace("{TMP}", str(tmp_path)))
    one, eight = out["1"], out["8"]
    assert one["devices"] == 1 and eight["devices"] == 8
    np.testing.assert_allclose(np.array(eight["fitness"]), np.array(one["fitness"]), rtol=1e-6, atol=1e-7)
    assert out["ga1"] == out["ga8"] and len(out["ga1"]) == 2  # episode returns: bit-identical


PPO_CODE = """
import json
import rlsuite, jax, numpy as np
from rlsuite import agents
from rlsuite.train import run_training
from rlsuite.meta.es import ESConfig, tune_hparams

assert jax.device_count() == 8, jax.devices()
cfg = agents.get("ppo").smoke_config()
out = {}
for d in (1, 8):  # 5 seeds: padded to 8 on 8 devices
    s = run_training("ppo", None, cfg, seeds=range(5), run_dir=f"{TMP}/ppo{d}", segments=2, progress=False,
                     devices=d)
    out[f"ppo{d}"] = [json.loads(l) for l in open(f"{TMP}/ppo{d}/metrics.jsonl")]
    out[f"ppo{d}_sharding"] = s["sharding"]
    m = tune_hparams("ppo", None, ["lr"], ["lr=1e-4:1e-2:log"], ESConfig(population=4, generations=1, segments=1),
                     config=cfg, run_dir=f"{TMP}/meta{d}", progress=False, devices=d)
    out[f"meta{d}"] = [json.loads(l) for l in open(f"{TMP}/meta{d}/metrics.jsonl")]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_ppo_runner_and_a_meta_generation_sharded_over_8_devices_equal_one_device(tmp_path):
    out = run_with_devices(PPO_CODE.replace("{TMP}", str(tmp_path)))
    assert out["ppo1_sharding"] == "1 device" and out["ppo8_sharding"] == "5 runs over 8 devices, padded to 8"
    a, b = out["ppo1"], out["ppo8"]
    assert [r["update"] for r in a] == [r["update"] for r in b] == [0, 8, 16]
    for ra, rb in zip(a, b):
        for k in ra:
            if k in ("wall_s", "compile_s"):
                continue
            if k.startswith("eval_") or k in ("episode_return", "episodes", "update", "env_steps"):
                assert ra[k] == rb[k], k  # the same episodes: bit-identical
            else:
                np.testing.assert_allclose(rb[k], ra[k], rtol=1e-4, atol=1e-6, err_msg=k)
    fa, fb = out["meta1"][0]["fitness"], out["meta8"][0]["fitness"]
    assert fa == fb  # each member's fitness is a final evaluation return: bit-identical
