"""First vs second wall time of the same `rlsuite train` command with JAX's persistent
compilation cache (a fresh cache directory, so the first run compiles and the second loads).

    python benchmarks/compile_cache.py [--seeds 8] [--total-steps 500000]
    python benchmarks/compile_cache.py --smoke     # CI: 1 seed, 4096 steps, writes to /tmp

Writes results/benchmarks/compile_cache.md (``--smoke``: /tmp/rlsuite-smoke/benchmarks).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import tyro

from rlsuite.core import validate as V
from rlsuite.core.results import markdown_table, provenance, write_markdown

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """Persistent compilation cache: the same `rlsuite train ppo` command twice on a fresh cache."""

    seeds: int = 8
    """Vmapped seeds of the PPO run."""
    total_steps: int = 500_000
    """Environment steps per seed."""
    env: str = "gymnax:CartPole-v1"
    """Environment id."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/benchmarks unless --out is given)."""
    smoke: bool = False
    """Tiny run (1 seed, 4096 steps) that checks the script end to end."""


def main(a: Args) -> None:
    if a.smoke:
        a = dataclasses.replace(a, seeds=1, total_steps=4096, out=SMOKE_OUT if a.out == OUT else a.out)
    V.require_positive_int("--seeds", a.seeds)
    V.require_positive_int("--total-steps", a.total_steps)
    rlsuite = [sys.executable, "-m", "rlsuite.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RLSUITE_JAX_CACHE": os.path.join(tmp, "cache")}
        for i, label in enumerate(["first run (compiles, fills cache)", "second run (cache hit)"]):
            cmd = rlsuite + ["train", "ppo", "--env", a.env, "--seeds", str(a.seeds), "--total-steps",
                             str(a.total_steps), "--run-dir", os.path.join(tmp, f"run{i}"), "--no-progress"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            rows.append((label, time.perf_counter() - t0))
            print(f"{label}: {rows[-1][1]:.1f} s", flush=True)
    ratio = rows[1][1] / rows[0][1]
    body = markdown_table(["invocation", "wall time (s)"], [(r[0], round(r[1], 1)) for r in rows])
    body += f"\n\nsecond / first = {ratio:.2f}\n"
    write_markdown(os.path.join(a.out, "compile_cache.md"), "Persistent compilation cache: repeated CLI run",
                   body, provenance(seeds=list(range(a.seeds)), env=a.env, total_steps=a.total_steps))
    print(f"second / first = {ratio:.2f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
