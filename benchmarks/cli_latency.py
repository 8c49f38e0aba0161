"""How long the CLI takes to answer before doing any work: `--help` (with the help cache empty)
and refused inputs, each a whole `python -m rlsuite.cli ...` process, median of a few repeats.
The target (issue 14) is under one second on this 2-core CPU; a bare `python -c pass` and
`python -c "import jax"` are timed alongside as the floor.

    python benchmarks/cli_latency.py [--repeats 5]
    python benchmarks/cli_latency.py --smoke     # CI: 1 repeat, writes to /tmp

Writes results/benchmarks/cli_latency.md (``--smoke``: /tmp/rlsuite-smoke/benchmarks).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time

import tyro

from rlsuite.core import validate as V
from rlsuite.core.results import markdown_table, provenance, write_markdown

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"

# (label, argv after `python`, expected exit code)
CASES = [
    ("floor: python -c pass", ["-c", "pass"], 0),
    ("floor: python -c 'import jax'", ["-c", "import jax"], 0),
    ("rlsuite --help", ["-m", "rlsuite.cli", "--help"], 0),
    ("rlsuite train ppo --help (help cache empty)", ["-m", "rlsuite.cli", "train", "ppo", "--help"], 0),
    ("rlsuite train gbrl-ppo --help (help cache empty)", ["-m", "rlsuite.cli", "train", "gbrl-ppo", "--help"], 0),
    ("rlsuite train ppo --num-envs 0", ["-m", "rlsuite.cli", "train", "ppo", "--num-envs", "0"], 2),
    ("rlsuite train a2c --lr -1", ["-m", "rlsuite.cli", "train", "a2c", "--lr", "-1"], 2),
    ("rlsuite train bpg --num-episodes 0", ["-m", "rlsuite.cli", "train", "bpg", "--num-episodes", "0"], 2),
    ("rlsuite train ppo --seeds 0", ["-m", "rlsuite.cli", "train", "ppo", "--seeds", "0"], 2),
    ("rlsuite data --help", ["-m", "rlsuite.cli", "data", "--help"], 0),
    ("rlsuite meta es --help", ["-m", "rlsuite.cli", "meta", "es", "--help"], 0),
]


@dataclasses.dataclass(frozen=True)
class Args:
    """Wall time of CLI invocations that must answer at once (help, refused input)."""

    repeats: int = 5
    """Runs per invocation (the median is reported)."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/benchmarks unless --out is given)."""
    smoke: bool = False
    """One repeat, to check the script end to end."""


def _time(argv: list[str], code: int, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != code:
        raise SystemExit(f"{argv} exited {proc.returncode}, expected {code}:\n{proc.stderr[-2000:]}")
    return dt


def main(a: Args) -> None:
    if a.smoke:
        a = dataclasses.replace(a, repeats=1, out=SMOKE_OUT if a.out == OUT else a.out)
    V.require_positive_int("--repeats", a.repeats)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv, code in CASES:
            times = []
            for r in range(a.repeats):  # a fresh cache folder each time: the help is rendered anew
                env = {**os.environ, "RLSUITE_CACHE": os.path.join(tmp, f"{len(rows)}-{r}")}
                times.append(_time(argv, code, env))
            med = statistics.median(times)
            rows.append((label, round(med, 2), round(min(times), 2), round(max(times), 2)))
            print(f"{label}: median {med:.2f} s", flush=True)
    load = os.getloadavg()[0]
    body = markdown_table(["invocation", "median (s)", "min (s)", "max (s)"], rows)
    body += (f"\n\nLoad average (1 min) when the script finished: {load:.2f} on {os.cpu_count()} cores; "
             "every figure is a whole process (interpreter start-up included).\n")
    write_markdown(os.path.join(a.out, "cli_latency.md"), "CLI latency: help and refused inputs", body,
                   provenance(repeats=a.repeats))


if __name__ == "__main__":
    main(tyro.cli(Args))
