"""The runner compiles each segment function once per run, and a resume compiles nothing new.

Counted, not timed: :class:`rlsuite.core.agent.CompileWatch` listens to JAX's own compilation
events (``/jax/core/compile/backend_compile_duration`` per compiled program, and persistent-cache
hits).  The run goes in a subprocess with its own persistent compilation cache directory, so the
cache (a process-wide JAX setting) does not leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp

from rlsuite.core.agent import CompileWatch, jit_per_length

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CODE = """
import json, sys
from rlsuite import agents
from rlsuite.train import enable_compilation_cache, run_training

enable_compilation_cache(sys.argv[1] + "/cache")
cfg = agents.get("ppo").smoke_config()  # 16 updates: 4 segments of 4 updates
full = run_training("ppo", None, cfg, seeds=[0, 1], run_dir=sys.argv[1] + "/full", segments=4, progress=False)
part = sys.argv[1] + "/part"
assert run_training("ppo", None, cfg, seeds=[0, 1], run_dir=part, segments=4, progress=False, max_segments=2) is None
resumed = run_training(None, None, None, seeds=None, run_dir=part, segments=None, progress=False, resume=True)
print("RESULT " + json.dumps({"full": full["compiles_this_invocation"], "resumed": resumed["compiles_this_invocation"],
                              "compile_s": full["compile_s_this_invocation"],
                              "same": full["final"] == resumed["final"]}))
"""


def test_repeated_segments_compile_once_and_resume_hits_the_cache(tmp_path):
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE), str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=900, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, p.stderr[-3000:]
    out = json.loads(lines[-1][7:])
    ours = lambda records: sorted(r["function"] for r in records if "rlsuite_" in r["function"])  # noqa: E731
    # 4 segments of equal length, 5 evaluations: one program each, compiled once
    assert ours(out["full"]) == ["jit(rlsuite_evaluate)", "jit(rlsuite_init)", "jit(rlsuite_segment)"], out["full"]
    assert out["compile_s"] > 0
    # the resumed invocation lowers the very programs of an uninterrupted run (restored arrays are
    # made plain first): the persistent cache serves them, nothing is compiled again
    resumed = [r for r in out["resumed"] if "rlsuite_" in r["function"]]
    assert ours(resumed) == ["jit(rlsuite_evaluate)", "jit(rlsuite_segment)"], out["resumed"]
    assert all(r["persistent_cache_hit"] for r in resumed), out["resumed"]
    assert out["same"]


def test_jit_per_length_builds_one_program_per_length_and_compile_watch_counts_them():
    calls = []

    def segment(x, n):
        calls.append(n)  # Python side effect: runs once per trace
        return x * n

    get = jit_per_length(segment)
    with CompileWatch() as w:
        for n in (3, 3, 3, 2):
            assert float(get(n)(jnp.float32(2.0))) == 2.0 * n
    assert calls == [3, 2]
    assert w.count("<lambda>") == 2 and w.seconds > 0  # (tests/conftest.py's persistent cache may serve them)
