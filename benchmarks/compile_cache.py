"""First vs second wall time of the same `rlsuite train` command with JAX's persistent
compilation cache (a fresh cache directory, so the first run compiles and the second loads).

    python benchmarks/compile_cache.py [--seeds 8] [--total-steps 500000]

Writes results/benchmarks/compile_cache.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from rlsuite.core.results import markdown_table, provenance, write_markdown


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--total-steps", type=int, default=500_000)
    p.add_argument("--env", default="gymnax:CartPole-v1")
    a = p.parse_args()
    rlsuite = os.path.join(os.path.dirname(sys.executable), "rlsuite")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RLSUITE_JAX_CACHE": os.path.join(tmp, "cache")}
        for i, label in enumerate(["first run (compiles, fills cache)", "second run (cache hit)"]):
            cmd = [rlsuite, "train", "ppo", "--env", a.env, "--seeds", str(a.seeds), "--total-steps",
                   str(a.total_steps), "--run-dir", os.path.join(tmp, f"run{i}"), "--no-progress"]
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            rows.append((label, time.perf_counter() - t0))
            print(f"{label}: {rows[-1][1]:.1f} s", flush=True)
    ratio = rows[1][1] / rows[0][1]
    body = markdown_table(["invocation", "wall time (s)"], [(r[0], round(r[1], 1)) for r in rows])
    body += f"\n\nsecond / first = {ratio:.2f}\n"
    write_markdown("results/benchmarks/compile_cache.md", "Persistent compilation cache: repeated CLI run",
                   body, provenance(seeds=list(range(a.seeds)), env=a.env, total_steps=a.total_steps))
    print(f"second / first = {ratio:.2f}")


if __name__ == "__main__":
    main()
