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

    def read(self, tolerate_partial_tail: bool = False) -> list[dict[str, Any]]:
        """All records; with ``tolerate_partial_tail`` a last line cut short by a kill is dropped."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            lines = [line for line in f if line.strip()]
        out = []
        for i, line in enumerate(lines):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if tolerate_partial_tail and i == len(lines) - 1:
                    break
                raise ValueError(f"{self.path!r} line {i + 1} is not JSON (damaged metrics file)") from None
        return out

    def truncate_after(self, key: str, value: int) -> None:
        """Drop records with ``record[key] > value`` and a partial last line (resuming from a
        checkpoint at ``value``); the file is rewritten atomically."""
        keep = [r for r in self.read(tolerate_partial_tail=True) if r.get(key, 0) <= value]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, self.path)


def _si(x: float) -> str:
    """Compact count: 950, 12.3k, 1.5M (keeps the progress line within 80 columns)."""
    x = float(x)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.0f}"


class Progress:
    """A rich progress bar over environment steps (or samples) showing the rate and a metric.

    Falls back to one plain line per update when stderr is not a terminal (CI logs).  Counts are
    compact (``1.2M/5M``) so the line fits an 80-column terminal.
    """

    def __init__(self, total_steps: int, description: str, start_steps: int = 0, enabled: bool = True,
                 counter: str = "steps", metric: str = "return"):
        self.total = total_steps
        self.t0 = time.perf_counter()
        self.start_steps = start_steps
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._bar = None
        unit = "steps" if "step" in counter else counter
        if enabled and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RP

            self._bar = RP(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=14), TextColumn("{task.fields[done]}"),
                TextColumn(f"{{task.fields[sps]}} {unit}/s"), TextColumn(f"{metric} {{task.fields[ret]}}"),
                TimeElapsedColumn(), transient=False, console=Console(stderr=True),
            )
            self._task = self._bar.add_task(description, total=total_steps, completed=start_steps, sps="-", ret="-",
                                            done=f"{_si(start_steps)}/{_si(total_steps)}")
            self._bar.start()
        self.description = description
        self.counter, self.metric, self.unit = counter, metric, unit

    def update(self, steps: int, mean_return: float | None) -> None:
        if not self.enabled:
            return
        dt = max(time.perf_counter() - self.t0, 1e-9)
        sps = (steps - self.start_steps) / dt
        ret = "-" if mean_return is None or not math.isfinite(mean_return) else f"{mean_return:.4g}"
        if self._bar is not None:
            self._bar.update(self._task, completed=steps, sps=_si(sps), ret=ret, done=f"{_si(steps)}/{_si(self.total)}")
        else:
            print(f"[{self.description}] {_si(steps)}/{_si(self.total)} {self.unit}  {_si(sps)} {self.unit}/s  "
                  f"{self.metric} {ret}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """A warning on its own line above the bar (always shown, even with the bar disabled)."""
        if self._bar is not None:
            self._bar.console.print(f"[yellow]{message}[/yellow]")
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
