"""Two processes joined by ``jax.distributed`` on localhost train one sharded run, stop, resume,
and agree with a one-process run.

Each process has 2 virtual CPU devices (4 in the mesh; 3 seeds padded to 4), initialises through
the CLI's flag parser (``--coordinator 127.0.0.1:PORT --num-processes 2 --process-id I``, a free
loopback port), trains one segment, resumes from process 0's checkpoint and finishes.  Both must
exit by themselves within the timeout; only process 0 writes files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = """
import json, os, sys
import rlsuite
from rlsuite.core import sharding

port, pid, run = sys.argv[1], sys.argv[2], sys.argv[3]
scale, rest = sharding.from_argv(["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", pid])
import jax
from rlsuite import agents
from rlsuite.train import run_training

assert jax.process_count() == 2 and jax.device_count() == 4 and rest == []
cfg = agents.get("ppo").smoke_config()
assert run_training("ppo", None, cfg, seeds=range(3), run_dir=run, segments=2, progress=False, max_segments=1) is None
s = run_training(None, None, None, seeds=None, run_dir=run, segments=None, progress=False, resume=True)
print("RESULT " + json.dumps({"final": s["final"], "sharding": s["sharding"], "files": sorted(os.listdir(run))}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_train_resume_and_agree_with_one_process(tmp_path):
    import rlsuite  # noqa: F401  (keep its scheduler flag in XLA_FLAGS)
    from rlsuite import agents
    from rlsuite.train import run_training

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        env.pop(k, None)
    port, run = _free_port(), str(tmp_path / "two")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), str(port), str(i), run], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=900)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    results = []
    for rc, out, err in outs:
        lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        assert rc == 0 and lines, f"rc {rc}\n{out[-2000:]}\n{err[-4000:]}"
        results.append(json.loads(lines[-1][7:]))
    assert results[0]["sharding"] == "3 runs over 4 devices in 2 processes, padded to 4"
    assert results[0]["final"] == results[1]["final"]  # every process sees the gathered metrics
    assert {"summary.json", "results.md", "checkpoints", "metrics.jsonl"} <= set(results[0]["files"])

    one = run_training("ppo", None, agents.get("ppo").smoke_config(), seeds=range(3), run_dir=str(tmp_path / "one"),
                       segments=2, progress=False, devices=1)
    assert results[0]["final"] == one["final"]  # final evaluation returns: bit-identical
    lines = [[json.loads(x) for x in open(os.path.join(d, "metrics.jsonl"))] for d in (run, tmp_path / "one")]
    assert [r["update"] for r in lines[0]] == [r["update"] for r in lines[1]] == [0, 8, 16]
    for a, b in zip(*lines):
        assert a["eval_return"] == b["eval_return"] and a.get("episode_return") == b.get("episode_return")
        if "loss/value" in a:
            np.testing.assert_allclose(a["loss/value"], b["loss/value"], rtol=1e-4)
