"""Metrics out of training runs: JSONL files and a terminal progress bar.

Training runs in jitted segments (:mod:`rlsuite.train`); between segments the host appends one
JSON line per segment to ``metrics.jsonl`` and advances the progress bar (steps/s, mean return).
Inside ``jit`` use ``jax.debug.callback`` with :meth:`MetricsWriter.write` if a per-step stream is
really needed; segment-level logging keeps host round trips off the hot path.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import numpy as np


def _jsonable(x: Any):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return [_jsonable(v) for v in a]


class MetricsWriter:
    """Append-only JSONL metrics file (one object per line)."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(_jsonable(record)) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_after(self, key: str, value: int) -> None:
        """Drop records with ``record[key] > value`` (used when resuming from a checkpoint)."""
        keep = [r for r in self.read() if r.get(key, 0) <= value]
        with open(self.path, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")


class Progress:
    """A rich progress bar over environment steps (or samples) showing the rate and a metric.

    Falls back to one plain line per update when stderr is not a terminal (CI logs).
    """

    def __init__(self, total_steps: int, description: str, start_steps: int = 0, enabled: bool = True,
                 counter: str = "steps", metric: str = "return"):
        self.total = total_steps
        self.t0 = time.perf_counter()
        self.start_steps = start_steps
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._bar = None
        if enabled and self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RP

            self._bar = RP(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(f"{{task.fields[sps]}} {counter}/s"), TextColumn(f"{metric} {{task.fields[ret]}}"),
                TimeElapsedColumn(), transient=False,
            )
            self._task = self._bar.add_task(description, total=total_steps, completed=start_steps, sps="-", ret="-")
            self._bar.start()
        self.description = description
        self.counter, self.metric = counter, metric

    def update(self, steps: int, mean_return: float | None) -> None:
        if not self.enabled:
            return
        dt = max(time.perf_counter() - self.t0, 1e-9)
        sps = (steps - self.start_steps) / dt
        ret = "-" if mean_return is None or not math.isfinite(mean_return) else f"{mean_return:.4g}"
        if self._bar is not None:
            self._bar.update(self._task, completed=steps, sps=f"{sps:,.0f}", ret=ret)
        else:
            print(f"[{self.description}] {steps}/{self.total} {self.counter}  {sps:,.0f} {self.counter}/s  {self.metric} {ret}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
