"""``rlsuite reproduce <paper|all> [--scale smoke|cpu|paper]``: rerun a paper's experiment scripts,
then rebuild ``results/README.md`` (and the README's generated result tables) from the results files.

    rlsuite reproduce all --scale smoke --jobs 2     # CI: every script with --smoke, tables in /tmp
    rlsuite reproduce odice                           # CPU scale: rebuilds results/odice/, then the tables
    rlsuite reproduce lpo --scale paper --dry-run     # the commands, without running them
    rlsuite reproduce all --tables-only               # only rebuild the tables from results/

A paper's scripts are ``experiments/<paper>/*.py`` (``benchmarks/*.py`` for the ``benchmarks``
pseudo-paper) not starting with ``_``, in the order its ``rlsuite.claims.Paper.order`` gives (data
building before training, ...), the rest sorted.  Scale to flags: ``smoke`` -> ``--smoke`` (scripts
then write under ``/tmp/rlsuite-smoke``, mirroring ``results/``, so the tables are built there and
``results/`` is never touched); ``cpu`` -> no flag (the scripts' defaults write ``results/``);
``paper`` -> ``--scale paper`` or ``--paper-scale`` / ``--paper`` where the script has such a field,
otherwise the script runs at its default scale and says so.  At smoke scale the scripts are
independent and run ``--jobs`` at a time; at cpu / paper scale a paper's scripts run one after the
other (later ones read what earlier ones wrote) and ``--jobs`` papers run side by side.

Tables: for each claim in ``rlsuite.claims`` the figures are read from the results files, the
verdict is computed by the claim's rule, and the row names the seeds, device, date, wall time and
command recorded in the files' provenance (wall time: the file's own ``wall_seconds`` /
``total_seconds`` entry, else the time ``reproduce`` measured for the script that wrote it, kept in
``reproduce_log.json`` next to the tables).  A missing file makes its row read "not run".

No JAX import here: ``rlsuite reproduce --help`` and ``--tables-only`` start instantly.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from typing import Optional

from rlsuite.claims import PAPERS, Cell, Claim, Embed, Figure, Paper, find_paper
from rlsuite.core import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_ROOT = "/tmp/rlsuite-smoke"
SCALES = ("smoke", "cpu", "paper")
NUM = r"[-+−]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
LOG_NAME = "reproduce_log.json"
VERDICTS = ("holds", "partly", "does not hold", "not run", "not measured")


# ----------------------------------------------------------------------------- results files


@dataclasses.dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclasses.dataclass
class ResultsFile:
    meta: dict[str, str]
    tables: list[Table]


def _split_row(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [c.strip() for c in re.split(r"\s\|\s", f" {inner} ")]


def read_results(path: str) -> Optional[ResultsFile]:
    """The provenance entries and tables of a results ``.md`` or ``.csv`` file; None if missing."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    meta: dict[str, str] = {}
    if path.endswith(".csv"):
        import csv

        body = []
        for line in lines:
            m = re.match(r"#\s*([\w ]+):\s*(.*)", line)
            if m and not body:
                meta.setdefault(m.group(1).strip(), m.group(2).strip())
            elif line.strip():
                body.append(line)
        rows = list(csv.reader(body))
        return ResultsFile(meta, [Table(rows[0], rows[1:])] if rows else [])
    tables: list[Table] = []
    cur: Optional[Table] = None
    for line in lines:
        if line.lstrip().startswith("|"):
            cells = _split_row(line)
            if cur is None:
                cur = Table(cells, [])
                tables.append(cur)
            elif not re.fullmatch(r"\s*\|?(\s*:?-{3,}:?\s*\|)*\s*:?-{3,}:?\s*\|?\s*", line):  # not |---|---|
                cur.rows.append(cells)
            continue
        cur = None
        m = re.match(r"- ([\w ]+): (.*)", line)
        if m and not tables:
            meta.setdefault(m.group(1).strip(), m.group(2).strip().strip("`"))
    return ResultsFile(meta, tables)


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().lower())


def _number(text: str) -> Optional[float]:
    m = re.search(NUM, text.replace("**", ""))
    return None if m is None else float(m.group(0).replace(",", "").replace("−", "-"))


def _matches(cell: str, want: str) -> bool:
    if cell.replace("**", "") == want:
        return True
    a, b = _number(cell), _number(want)
    return a is not None and b is not None and re.fullmatch(f"(?:{NUM})", want.strip()) is not None and (
        re.fullmatch(f"\\**(?:{NUM})\\**", cell.strip()) is not None) and a == b


def _col(header: list[str], name: str, nth: int = 0) -> Optional[int]:
    hits = [i for i, h in enumerate(header) if _norm(h) == _norm(name)]
    return hits[nth] if len(hits) > nth else None


def _part(text: str, part: str, pattern: Optional[str]) -> Optional[float]:
    text = text.replace("**", "").replace("−", "-")
    if part == "value":
        return _number(text)
    if part in ("lo", "hi"):
        m = re.search(rf"\[\s*({NUM})\s*,\s*({NUM})\s*\]", text)
        if m:
            return _number(m.group(1 if part == "lo" else 2))
        m = re.search(rf"({NUM})\s*(?:±|\+-|\+/-)\s*({NUM})", text)
        if m:
            mid, half = _number(m.group(1)), _number(m.group(2))
            return mid - half if part == "lo" else mid + half
        return None
    if part == "fraction":
        m = re.search(r"(\d+)\s*/\s*(\d+)", text)
        return None if m is None else int(m.group(1)) / int(m.group(2))
    if part == "seeds":
        return [float(m.replace(",", "")) for m in re.findall(NUM, text)] or None
    if part == "pattern":
        m = re.search((pattern or "").replace("NUM", f"(?:{NUM})"), text)
        return None if m is None else _number(m.group(1))
    raise ValueError(f"Cell.part={part!r} is unknown; choose value, lo, hi, fraction or pattern")


class _Files:
    """Results files under one root, each read once."""

    def __init__(self, root: str):
        self.root = root
        self._cache: dict[str, Optional[ResultsFile]] = {}

    def get(self, rel: str) -> Optional[ResultsFile]:
        if rel not in self._cache:
            self._cache[rel] = read_results(os.path.join(self.root, rel))
        return self._cache[rel]

    def json(self, rel: str, key: str) -> tuple[Optional[list], str]:
        try:
            with open(os.path.join(self.root, rel)) as f:
                data = json.load(f)
        except OSError:
            return None, "not run"
        except ValueError:
            return None, "not found"
        v = data.get(key) if isinstance(data, dict) else None
        return (v, "") if isinstance(v, list) and v else (None, "not found")


def read_cell(files: _Files, cell: Cell) -> tuple[Optional[float], str]:
    """``(value, "")``, or ``(None, why)`` with why "not run" (no file) or "not found"."""
    if cell.file.endswith(".json"):
        return files.json(cell.file, cell.column)
    rf = files.get(cell.file)
    if rf is None:
        return None, "not run"
    for t in rf.tables:
        ci = _col(t.header, cell.column)
        wi = [(_col(t.header, k), v) for k, v in cell.where]
        if ci is None or any(i is None for i, _ in wi):
            continue
        for row in t.rows:
            if len(row) > max([ci] + [i for i, _ in wi]) and all(_matches(row[i], v) for i, v in wi):
                v = _part(row[ci], cell.part, cell.pattern)
                return (v, "") if v is not None else (None, "not found")
    return None, "not found"


# ----------------------------------------------------------------------------- verdicts


@dataclasses.dataclass
class ClaimResult:
    claim: Claim
    values: list[tuple[str, Optional[float], str]]  # (label, value, why missing)
    verdict: str
    files: list[str]
    cis: list[Optional[tuple[float, float]]] = dataclasses.field(default_factory=list)


def _figure(files: _Files, fig: Figure) -> tuple[Optional[float], str, Optional[tuple[float, float]]]:
    """``(value, why missing, 95% CI or None)`` of one figure."""
    a, why = read_cell(files, fig.a)
    if a is None:
        return None, why, None
    if fig.op == "iqm":
        m, lo, hi = stats.iqm_ci(a)
        return m, "", (lo, hi)
    if fig.op is None:
        return a, why, None
    b, why = read_cell(files, fig.b)
    if b is None:
        return None, why, None
    if fig.op == "P>":
        p, lo, hi = stats.prob_improvement(a, b)
        return p, "", (lo, hi)
    if fig.op == "-":
        return a - b, "", None
    return (a / b if b != 0 else math.nan), "", None


def _passes(v: float, cmp: str, target: float) -> bool:
    return {">=": v >= target, ">": v > target, "<=": v <= target, "<": v < target}[cmp]


def verdict(values: list[Optional[float]], rule) -> str:
    """holds / partly / does not hold / not run, from the figures and the claim's rule."""
    got = [v for v in values if v is not None]
    if not got:
        return "not run"
    full = [_passes(v, rule.cmp, rule.target) for v in got]
    near = [rule.partly is not None and _passes(v, rule.cmp, rule.partly) for v in got]
    if all(full) and len(got) == len(values):
        return "holds"
    if not any(full) and not any(near):
        return "does not hold"
    return "partly"


def rule_text(rule) -> str:
    s = f"each {rule.cmp} {rule.target:g}"
    return s + (f"; partly if {rule.cmp} {rule.partly:g}" if rule.partly is not None else "")


def evaluate(paper: Paper, root: str) -> list[ClaimResult]:
    files = _Files(root)
    out = []
    for c in paper.claims:
        figs = [_figure(files, f) for f in c.figures]
        vals = [(f.label, v, why) for f, (v, why, _) in zip(c.figures, figs)]
        names = []
        for f in c.figures:
            for cell in (f.a, f.b):
                if cell is not None and cell.file not in names:
                    names.append(cell.file)
        v = verdict([v for _, v, _ in vals], c.rule)
        if v == "not run" and any(why == "not found" for _, _, why in vals):
            v = "not measured"  # the files exist but lack the rows (e.g. a smoke run covers a subset)
        out.append(ClaimResult(c, vals, v, names, [ci for _, _, ci in figs]))
    return out


# ----------------------------------------------------------------------------- tables


def _fmt(v: float, signed: bool) -> str:
    if math.isnan(v):
        return "nan"
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def _measured(res: ClaimResult) -> str:
    parts = []
    for (label, v, why), fig, ci in zip(res.values, res.claim.figures, res.cis):
        if v is None:
            parts.append(f"{label}: {why}")
        elif ci is not None:
            what = "P(>)" if fig.op == "P>" else "IQM"
            parts.append(f"{label}: {what} {stats.fmt_ci(v, *ci)}")
        else:
            parts.append(f"{label}: {_fmt(v, fig.op == '-')}")
    return "; ".join(parts)


def _script_of(command: str) -> Optional[str]:
    m = re.search(r"((?:experiments|benchmarks)/[\w./-]+\.py)", command or "")
    return m.group(1) if m else None


def _wall(meta: dict[str, str], log: dict) -> str:
    for k in ("wall_seconds", "total_seconds", "wall_s", "wall time"):
        if k in meta and _number(meta[k]) is not None:
            return f"{_number(meta[k]):.0f} s"
    entry = log.get(_script_of(meta.get("command", "")) or "", {})
    return f"{entry['wall_s']:.0f} s ({entry['scale']})" if "wall_s" in entry else "-"


def _provenance(res: ClaimResult, files: _Files, log: dict) -> dict[str, str]:
    out: dict[str, list[str]] = {k: [] for k in ("seeds", "device", "date", "wall", "command")}
    for name in res.files:
        rf = files.get(name)
        if rf is None:
            continue
        vals = {k: rf.meta.get(k, "-") for k in ("seeds", "device", "date")}
        vals["wall"] = _wall(rf.meta, log)
        vals["command"] = f"`{rf.meta['command']}`" if "command" in rf.meta else "-"
        for k, v in vals.items():
            if v not in out[k]:
                out[k].append(v)
    return {k: "<br>".join(v) if v else "-" for k, v in out.items()}


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _claims_table(results: list[ClaimResult], files: _Files, log: dict, full: bool) -> list[str]:
    head = ["claim", "scale", "measured here", "verdict (rule)"]
    if full:
        head += ["seeds", "device", "date", "wall time", "command"]
    else:
        head += ["source"]
    lines = [_row(head), "|" + "---|" * len(head)]
    for r in results:
        cells = [r.claim.claim, r.claim.scale, _measured(r), f"**{r.verdict}** ({rule_text(r.claim.rule)})"]
        if full:
            p = _provenance(r, files, log)
            cells += [p["seeds"], p["device"], p["date"], p["wall"], p["command"]]
        else:
            cells += ["<br>".join(f"`results/{f}`" for f in r.files)]
        lines.append(_row(cells))
    return lines


def embed_table(files: _Files, emb: Embed) -> list[str]:
    """Rows of the embedded columns from each file (a file that is missing adds no rows)."""
    rows = []
    for name in emb.files:
        rf = files.get(name)
        for t in rf.tables if rf else []:
            seen: dict[str, int] = {}
            idx = []
            for c in emb.columns:
                idx.append(_col(t.header, c, seen.get(c, 0)))
                seen[c] = seen.get(c, 0) + 1
            if all(i is not None for i in idx):
                rows += [[row[i] for i in idx] for row in t.rows if len(row) > max(idx)]
                break
    if not rows:
        return [f"*({', '.join(emb.files)}: not run)*"]
    lines = [_row(list(emb.names or emb.columns)), "|" + "---|" * len(emb.columns)] + [_row(r) for r in rows]
    return ([emb.caption, ""] if emb.caption else []) + lines


def paper_block(paper: Paper, root: str, log: dict, full: bool) -> list[str]:
    files = _Files(root)
    results = evaluate(paper, root)
    if not results:
        return [f"No claims registered for {paper.name} yet (`rlsuite/claims.py`)."]
    if full:
        return _claims_table(results, files, log, full)
    lines = []
    for emb in paper.readme_tables:
        lines += embed_table(files, emb) + [""]
    if lines:
        lines += ["Claims checked against these results (verdicts computed by `rlsuite/claims.py`):", ""]
    return lines + _claims_table(results, files, log, full)


def _shown(path: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), REPO)
    return path if rel.startswith("..") else rel + "/"


def results_readme(papers: list[Paper], root: str, scale: str) -> str:
    log = load_log(root)
    out = ["# Results: each paper's claims against what we measured", "",
           "Generated by `rlsuite reproduce` from the results files in this folder; do not edit by hand "
           "(`rlsuite reproduce all --tables-only` rebuilds it). Each verdict is computed from the "
           "figures by the rule next to it (`rlsuite/claims.py`): every figure passes -> holds; none "
           "passes, none within the partly band -> does not hold; otherwise partly. Scale `paper` marks a "
           "claim whose fair test needs `--scale paper`; at CPU scale its verdict is indicative only. "
           "Timings come from a 2-core CPU shared with other jobs unless the device says otherwise.", "",
           f"Tables built {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC from `{_shown(root)}`"
           f"{' (smoke scale: tiny runs, numbers meaningless)' if scale == 'smoke' else ''}.", ""]
    counts = {v: 0 for v in VERDICTS}
    for p in papers:
        for r in evaluate(p, root):
            counts[r.verdict] += 1
    out += ["Summary: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", ""]
    for p in papers:
        out += [f"## {p.name}: {p.title}", "", f"Scripts: `{p.experiments}/`; results: `{p.results}/`.", ""]
        out += paper_block(p, root, log, full=True) + [""]
    return "\n".join(out).rstrip() + "\n"


_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def update_readme(readme: str, papers: list[Paper], root: str) -> int:
    """Rewrite the ``<!-- results:<paper> -->`` blocks of ``readme``; returns how many changed."""
    if not os.path.isfile(readme):
        return 0
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    log = load_log(root)
    wanted = {p.name: p for p in papers}

    def repl(m: re.Match) -> str:
        p = wanted.get(m.group("name"))
        if p is None:
            return m.group(0)
        body = "\n".join(paper_block(p, root, log, full=False))
        note = (f"<sub>Generated from `results/{p.results}/` by `rlsuite reproduce` (seeds, device, wall time and "
                "command of each row: `results/README.md`).</sub>")
        return f"{m.group(1)}{body}\n\n{note}\n{m.group(4)}"

    new = _BLOCK.sub(repl, text)
    changed = sum(1 for a, b in zip(_BLOCK.finditer(text), _BLOCK.finditer(new)) if a.group(0) != b.group(0))
    if new != text:
        with open(readme, "w", encoding="utf-8") as f:
            f.write(new)
    return changed


# ----------------------------------------------------------------------------- running scripts


@dataclasses.dataclass
class Job:
    paper: str
    script: str
    args: list[str]
    after: Optional[int] = None
    note: str = ""


def scripts(paper: Paper, repo: str = REPO) -> list[str]:
    found = sorted(os.path.relpath(f, repo) for f in glob.glob(os.path.join(repo, paper.experiments, "*.py"))
                   if not os.path.basename(f).startswith("_"))
    first = [f"{paper.experiments}/{n}" for n in paper.order if f"{paper.experiments}/{n}" in found]
    return first + [f for f in found if f not in first]


def scale_flags(script: str, scale: str, repo: str = REPO) -> tuple[list[str], str]:
    """The flags that run ``script`` at ``scale``, and a note when the script has no such scale."""
    if scale == "smoke":
        return ["--smoke"], ""
    if scale == "cpu":
        return [], ""
    with open(os.path.join(repo, script), encoding="utf-8") as f:
        src = f.read()
    if re.search(r"^\s+scale\s*:\s*Literal\[[^\]]*[\"']paper[\"']", src, re.M):
        return ["--scale", "paper"], ""
    m = re.search(r"^\s+(paper\w*)\s*:\s*bool", src, re.M)
    if m:
        return ["--" + m.group(1).replace("_", "-")], ""
    return [], "no paper scale in this script: runs at its default (CPU) scale"


def plan(papers: list[Paper], scale: str, repo: str = REPO) -> list[Job]:
    jobs: list[Job] = []
    for p in papers:
        prev = None
        for s in scripts(p, repo):
            flags, note = scale_flags(s, scale, repo)
            jobs.append(Job(p.name, s, flags, None if scale == "smoke" else prev, note))
            prev = len(jobs) - 1
    return jobs


def all_papers(repo: str = REPO) -> list[Paper]:
    """The registered papers plus every other folder under ``experiments/`` that holds scripts (no
    claims), so that ``rlsuite reproduce all --scale smoke`` (CI) runs every script there is."""
    known = {p.experiments for p in PAPERS}
    dirs = sorted({os.path.relpath(os.path.dirname(f), repo)
                   for f in glob.glob(os.path.join(repo, "experiments", "**", "*.py"), recursive=True)
                   if not os.path.basename(f).startswith("_")})
    extra = [Paper(d[len("experiments/"):].replace("/", "_"), "(not registered in rlsuite/claims.py)", d,
                   d[len("experiments/"):]) for d in dirs if d not in known]
    return list(PAPERS) + extra


def load_log(root: str) -> dict:
    try:
        with open(os.path.join(root, LOG_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _record(root: str, script: str, entry: dict) -> None:
    log = load_log(root)
    log[script] = entry
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, LOG_NAME + ".tmp")
    with open(tmp, "w") as f:
        json.dump(log, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(root, LOG_NAME))


def _tail(path: str, n: int = 50) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def run_jobs(jobs: list[Job], n_parallel: int, timeout: float, log_dir: str, root: str, scale: str,
             python: str = sys.executable, repo: str = REPO) -> list[Job]:
    """Run the jobs (``n_parallel`` at a time, each after its ``after``); returns the failed ones.

    After a failure no further job starts (the running ones finish); the failing script's log tail
    is printed.  Each script runs in its own process group, killed whole on ``timeout`` seconds.
    """
    os.makedirs(log_dir, exist_ok=True)
    pending = list(range(len(jobs)))
    running: dict[int, tuple[subprocess.Popen, float, str]] = {}
    done: set[int] = set()
    failed: list[Job] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def loop() -> None:
        while running or (pending and not failed):
            if not failed:
                for i in [i for i in pending if jobs[i].after is None or jobs[i].after in done]:
                    if len(running) >= n_parallel:
                        break
                    job = jobs[i]
                    if job.note:
                        print(f"  note   {job.script}: {job.note}", flush=True)
                    log = os.path.join(log_dir, job.script.replace("/", "_") + ".log")
                    with open(log, "w") as fh:
                        proc = subprocess.Popen([python, job.script, *job.args], cwd=repo, stdout=fh,
                                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
                    running[i] = (proc, time.monotonic(), log)
                    pending.remove(i)
            time.sleep(0.1)
            for i, (proc, t0, log) in list(running.items()):
                rc = proc.poll()
                secs = time.monotonic() - t0
                if rc is None and timeout and secs > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc = f"killed after the {timeout:.0f} s timeout"
                if rc is None:
                    continue
                del running[i]
                job = jobs[i]
                _record(root, job.script, {"wall_s": round(secs, 1), "scale": scale, "ok": rc == 0, "note": job.note,
                                           "command": " ".join(["python", job.script, *job.args]),
                                           "date": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"})
                if rc == 0:
                    done.add(i)
                    print(f"   ok   {job.script} ({secs:.0f} s)", flush=True)
                else:
                    failed.append(job)
                    print(_tail(log), end="", flush=True)
                    print(f"FAILED: {job.script} ({'exit ' + str(rc) if isinstance(rc, int) else rc}; log {log})",
                          flush=True)

    try:
        loop()
    finally:  # Ctrl-C or an error here: the scripts run in their own sessions, so end them explicitly
        for proc, _, _ in running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return failed


# ----------------------------------------------------------------------------- command line


def main(argv: Optional[list[str]] = None) -> int:
    names = [p.name for p in PAPERS]
    ap = argparse.ArgumentParser(
        prog="rlsuite reproduce",
        description="Rerun a paper's experiment scripts at a scale, then rebuild results/README.md (claim, "
                    "measured figure, verdict, seeds, device, wall time, command) and the README's result tables.")
    ap.add_argument("paper", help=f"one of {', '.join(names)} (lpo = meta_discovery), or all")
    ap.add_argument("--scale", default="cpu", choices=SCALES,
                    help="smoke: every script with --smoke, tables in /tmp/rlsuite-smoke (never results/); "
                         "cpu: the scripts' defaults (default); paper: --scale paper where a script has it")
    ap.add_argument("--out", default=None,
                    help="results tree to build the tables from and write README.md into (default: results/, "
                         f"or {SMOKE_ROOT} at --scale smoke, where the scripts' --smoke runs write)")
    ap.add_argument("--jobs", type=int, default=1, help="scripts (smoke) or papers (cpu, paper) run at once")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds before a script is killed and counts as failed (default 600 at smoke scale, "
                         "none otherwise; 0 = none)")
    ap.add_argument("--tables-only", action="store_true", help="run nothing; only rebuild the tables")
    ap.add_argument("--dry-run", action="store_true", help="print the commands that would run, run nothing")
    a = ap.parse_args(argv)
    everything = all_papers(REPO)
    papers = everything if a.paper == "all" else (
        [p for p in everything if a.paper in (p.name, *p.aliases)] or [find_paper(a.paper)])
    if a.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, got {a.jobs}")
    timeout = (600.0 if a.scale == "smoke" else 0.0) if a.timeout is None else a.timeout
    if timeout < 0:
        raise ValueError(f"--timeout must be >= 0 seconds, got {a.timeout}")
    results_dir = os.path.join(REPO, "results")
    root = os.path.abspath(a.out or (SMOKE_ROOT if a.scale == "smoke" else results_dir))
    if a.scale == "smoke" and os.path.realpath(root) == os.path.realpath(results_dir):
        raise ValueError(f"--out {a.out!r}: smoke runs never write to results/; choose a temporary folder")

    failed: list[Job] = []
    if not a.tables_only:
        jobs = plan(papers, a.scale, REPO)
        if a.dry_run:
            for j in jobs:
                after = f"   # after {jobs[j.after].script}" if j.after is not None else ""
                note = f"   # {j.note}" if j.note else ""
                print(" ".join(["python", j.script, *j.args]) + after + note)
            return 0
        log_dir = "/tmp/rlsuite-smoke-logs" if a.scale == "smoke" else f"/tmp/rlsuite-reproduce-logs/{a.scale}"
        t0 = time.monotonic()
        print(f"rlsuite reproduce: {len(jobs)} scripts at {a.scale} scale, {a.jobs} at a time; logs in {log_dir}",
              flush=True)
        failed = run_jobs(jobs, a.jobs, timeout, log_dir, root, a.scale)
        print(f"scripts took {time.monotonic() - t0:.0f} s", flush=True)

    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write(results_readme(everything, root, a.scale))
    print(f"tables: {os.path.join(root, 'README.md')}")
    if os.path.realpath(root) == os.path.realpath(results_dir):
        n = update_readme(os.path.join(REPO, "README.md"), everything, root)
        print(f"README.md: {n} generated result block(s) changed")
    if failed:
        print(f"rlsuite reproduce: {len(failed)} script(s) failed: {', '.join(j.script for j in failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
