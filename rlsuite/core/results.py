"""Writing ``results/`` files that say how they were produced.

Every table or plot an experiment script writes goes through :func:`provenance` so that it
names the command, device, seeds and date.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import shlex
import sys
from typing import Any, Iterable, Sequence


def device_description() -> str:
    import jax

    devs = jax.devices()
    kind = devs[0].device_kind if devs else "?"
    cpu = platform.processor() or platform.machine()
    threads = os.environ.get("PJRT_NPROC")  # --cpu-threads N: the CPU runtime's thread count
    extra = f", {threads} CPU-runtime thread(s)" if threads and devs and devs[0].platform == "cpu" else ""
    return f"{devs[0].platform}:{kind} x{len(devs)} ({os.cpu_count()} host cores, {cpu}{extra})"


def provenance(seeds: Any = None, command: str | None = None, **extra: Any) -> dict[str, Any]:
    """A dict with command, device, seeds, date (and anything passed in ``extra``)."""
    cmd = command or " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable)] + sys.argv)
    meta = {
        "command": cmd,
        "device": device_description(),
        "seeds": seeds,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    meta.update(extra)
    return meta


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence[Any]], meta: dict[str, Any]) -> None:
    """CSV whose first lines are ``# key: value`` provenance comments."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        for k, v in meta.items():
            f.write(f"# {k}: {v}\n")
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(r)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def fmt(x):
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def write_markdown(path: str, title: str, body: str, meta: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# {title}\n\n")
        for k, v in meta.items():
            f.write(f"- {k}: `{v}`\n" if k == "command" else f"- {k}: {v}\n")
        f.write("\n" + body.rstrip() + "\n")
