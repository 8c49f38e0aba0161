"""`rlsuite reproduce`: tables from fixture results files (no training), the run plan, the job runner.

The end-to-end check -- every paper's scripts at --smoke scale, then the tables -- is CI's smoke
tier (`make smoke` = `rlsuite reproduce all --scale smoke --jobs 2`).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rlsuite import claims as K
from rlsuite import reproduce as R
from rlsuite.claims import PAPERS, C, Claim, Embed, Paper, Rule, diff, find_paper, one, ratio

MD = textwrap.dedent("""\
    # Fixture results

    - command: `python experiments/toy/run.py --seeds 5`
    - device: cpu:cpu x1 (2 host cores, x86_64)
    - seeds: [0, 1, 2, 3, 4]
    - date: 2026-12-04 12:00 UTC
    - wall_seconds: 123.4

    Some prose with a | pipe.

    | env | method | return | diff to PPO | mean |gap| | solved | notes |
    |---|---|---|---|---|---|---|
    | cartpole | PPO | 400.0 ± 20.0 | - | 3.5 | 2/5 | rel L2 0.0189; 5 s |
    | cartpole | DPO | **450.5 [430.0, 470.0]** | +50.5 [+10.0, +90.0] | 1.0 | 5/5 | rel L2 0.031; 6 s |
    | hopper | PPO | −12.0 | - | 2.0 | 0/5 | - |

    | env | dataset | transitions | dataset |
    |---|---|---|---|
    | a | x | 1,000 | 44.4 |
    """)

CSV = textwrap.dedent("""\
    # command: python experiments/toy/other.py
    # device: cpu:cpu x1 (2 host cores, x86_64)
    # seeds: [0]
    # date: 2026-12-01 10:00 UTC
    env,M,noise_var,ratio
    lqr,5,1.0,0.9
    lqr,10,1.0,1.05
    """)


@pytest.fixture()
def root(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "summary.md").write_text(MD)
    (tmp_path / "toy" / "ratios.csv").write_text(CSV)
    (tmp_path / "toy" / "a.json").write_text(json.dumps({"returns": [1.0, 2.0, 3.0, 4.0]}))
    (tmp_path / "toy" / "b.json").write_text(json.dumps({"returns": [0.0, 0.0, 5.0, 5.0]}))
    return str(tmp_path)


S = "toy/summary.md"
TOY = Paper("toy", "A toy paper", "experiments/toy", "toy", claims=(
    Claim("DPO beats PPO", (diff("cartpole", C(S, "return", env="cartpole", method="DPO"),
                                 C(S, "return", env="cartpole", method="PPO")),), Rule(">=", 0.0)),
    Claim("CI lower end above 0", (one("lo", C(S, "diff to PPO", "lo", method="DPO")),), Rule(">", 0.0)),
    Claim("solves more often", (one("PPO", C(S, "solved", "fraction", env="cartpole", method="PPO")),
                                one("DPO", C(S, "solved", "fraction", method="DPO"))), Rule(">=", 0.8, partly=0.2)),
    Claim("small error", (one("err", C(S, "notes", "pattern", r"rel L2 (NUM)", method="DPO")),), Rule("<=", 0.02)),
    Claim("ratio and pipes", (ratio("gap", C(S, "mean |gap|", method="PPO", env="hopper"),
                                    C(S, "mean_|gap|", method="DPO")),
                              one("neg", C(S, "return", env="hopper"))), Rule(">=", 2.5, partly=1.5)),
    Claim("csv cells, numeric match", (one("M=5", C("toy/ratios.csv", "ratio", M=5, noise_var=1)),
                                       one("M=10", C("toy/ratios.csv", "ratio", M="10", noise_var="1"))),
          Rule("<=", 1.0, partly=1.1)),
    Claim("per-seed statistics", (K.p_improve("P", C("toy/a.json", "returns", "seeds"), C("toy/b.json", "returns", "seeds")),
                                  K.Figure("IQM", C(S, "notes", "seeds", method="PPO", env="hopper"), "iqm"),
                                  K.Figure("IQM of a", C("toy/a.json", "returns", "seeds"), "iqm")), Rule(">=", 0.5)),
    Claim("missing file", (one("x", C("toy/absent.md", "return", env="cartpole")),), Rule(">=", 0.0)),
    Claim("absent row", (one("x", C(S, "return", env="walker")),), Rule(">=", 0.0)),
    Claim("missing row", (one("x", C(S, "return", env="walker")),
                          one("y", C(S, "return", env="cartpole", method="PPO"))), Rule(">=", 0.0)),
), readme_tables=(Embed((S, "toy/absent.md"), ("env", "method", "return")),
                  Embed(("toy/summary.md",), ("dataset", "dataset")),
                  Embed(("toy/absent.md",), ("env",))))


def test_read_results_md_and_csv(root):
    rf = R.read_results(os.path.join(root, S))
    assert rf.meta["command"] == "python experiments/toy/run.py --seeds 5" and rf.meta["wall_seconds"] == "123.4"
    assert len(rf.tables) == 2
    assert rf.tables[0].header[4] == "mean |gap|" and len(rf.tables[0].rows) == 3
    assert rf.tables[0].rows[1][2] == "**450.5 [430.0, 470.0]**"
    csv = R.read_results(os.path.join(root, "toy/ratios.csv"))
    assert csv.meta["seeds"] == "[0]" and csv.tables[0].header == ["env", "M", "noise_var", "ratio"]
    assert R.read_results(os.path.join(root, "nope.md")) is None


def test_verdicts_and_measured_figures(root):
    res = {r.claim.claim: r for r in R.evaluate(TOY, root)}
    assert [(r.verdict, [v for _, v, _ in r.values]) for r in res.values()] == [
        ("holds", [pytest.approx(50.5)]),
        ("holds", [pytest.approx(10.0)]),
        ("partly", [pytest.approx(0.4), pytest.approx(1.0)]),
        ("does not hold", [pytest.approx(0.031)]),
        ("partly", [pytest.approx(2.0), pytest.approx(-12.0)]),  # "−12.0" with a Unicode minus
        ("partly", [pytest.approx(0.9), pytest.approx(1.05)]),
        ("partly", [0.5, None, 2.5]),  # 8 of 16 pairs; "-" has no number (never passes); IQM: middle two
        ("not run", [None]),
        ("not measured", [None]),
        ("partly", [None, pytest.approx(400.0)]),  # a missing figure never gives "holds"
    ]
    assert res["missing row"].values[0][2] == "not found" and res["missing file"].values[0][2] == "not run"
    assert R._measured(res["DPO beats PPO"]) == "cartpole: +50.5"
    assert R._measured(res["per-seed statistics"]).startswith("P: P(>) 0.50 [") and "IQM: not found" in (
        R._measured(res["per-seed statistics"]))
    assert R.rule_text(Rule(">=", 0.8, partly=0.2)) == "each >= 0.8; partly if >= 0.2"


def test_results_readme_names_provenance_and_wall_time(root):
    R._record(root, "experiments/toy/other.py", {"wall_s": 42.0, "scale": "cpu"})
    text = R.results_readme([TOY, Paper("empty", "no claims", "experiments/empty", "empty")], root, "cpu")
    assert "## toy: A toy paper" in text and "No claims registered for empty" in text
    row = next(line for line in text.splitlines() if line.startswith("| DPO beats PPO"))
    for want in ("[0, 1, 2, 3, 4]", "cpu:cpu x1", "2026-12-04 12:00 UTC", "123 s",
                 "`python experiments/toy/run.py --seeds 5`", "**holds** (each >= 0)"):
        assert want in row
    csv_row = next(line for line in text.splitlines() if line.startswith("| csv cells"))
    assert "42 s (cpu)" in csv_row  # no wall time in the file: the one reproduce measured
    assert "Summary: 2 holds, 5 partly, 1 does not hold, 1 not run, 1 not measured." in text


def test_readme_blocks_rewritten_between_markers_only(root, tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nprose | with | pipes\n\n", "\n\nmore prose\n"
    readme.write_text(f"{before}<!-- results:toy -->\nold hand-typed table\n<!-- /results:toy -->{after}"
                      "<!-- results:other -->\nkept\n<!-- /results:other -->\n")
    assert R.update_readme(str(readme), [TOY], root) == 1
    text = readme.read_text()
    assert text.startswith(before) and after in text and "old hand-typed" not in text
    assert "<!-- results:other -->\nkept\n<!-- /results:other -->" in text
    block = text.split("<!-- results:toy -->")[1].split("<!-- /results:toy -->")[0]
    assert "| DPO beats PPO | cpu | cartpole: +50.5 | **holds** (each >= 0) | `results/toy/summary.md` |" in block
    assert "| cartpole | DPO | **450.5 [430.0, 470.0]** |" in block  # embedded table, missing file skipped
    assert "| x | 44.4 |" in block  # a repeated column name takes the header's second column
    assert "*(toy/absent.md: not run)*" in block
    assert R.update_readme(str(readme), [TOY], root) == 0  # idempotent


def test_registered_claims_read_the_committed_results():
    """Every figure whose results file exists must be found in it (a renamed column fails here)."""
    results = os.path.join(R.REPO, "results")
    for paper in PAPERS:
        for res in R.evaluate(paper, results):
            for label, _value, why in res.values:
                assert why != "not found", f"{paper.name}: {res.claim.claim!r}: {label}: cell not found"
    for paper in PAPERS:  # an empty tree: every claim reads "not run"
        assert {r.verdict for r in R.evaluate(paper, "/nonexistent")} <= {"not run"}
    assert find_paper("meta_discovery").name == "lpo"
    with pytest.raises(ValueError, match="unknown paper 'nope'"):
        find_paper("nope")


def test_plan_orders_scripts_and_translates_scales():
    odice = find_paper("odice")
    jobs = R.plan([odice], "cpu")
    assert [os.path.basename(j.script) for j in jobs][:3] == ["build_datasets.py", "run_offline.py", "run_il.py"]
    assert [j.after for j in jobs][:3] == [None, 0, 1] and all(j.args == [] for j in jobs)
    smoke = R.plan([odice, find_paper("benchmarks")], "smoke")
    assert all(j.args == ["--smoke"] and j.after is None for j in smoke)
    assert any(j.script == "benchmarks/engine_overhead.py" for j in smoke)
    assert all(j.args in ([], ["--scale", "paper"], ["--paper-scale"], ["--paper"]) or j.note
               for j in R.plan(list(PAPERS), "paper"))
    every = {p.experiments for p in R.all_papers()}
    assert every >= {p.experiments for p in PAPERS if os.path.isdir(os.path.join(R.REPO, p.experiments))}
    scripts = [os.path.relpath(os.path.join(d, f), R.REPO) for d, _, fs in os.walk(os.path.join(R.REPO, "experiments"))
               for f in fs if f.endswith(".py") and not f.startswith("_")]
    assert {os.path.dirname(f) for f in scripts} <= every  # every script runs in the smoke tier


def test_paper_scale_flags_follow_the_script_config(tmp_path):
    for name, field, want in [("a.py", '    scale: Literal["cpu", "paper"] = "cpu"', ["--scale", "paper"]),
                              ("b.py", "    paper_scale: bool = False", ["--paper-scale"]),
                              ("c.py", "    paper: bool = False", ["--paper"]),
                              ("d.py", "    smoke: bool = False", [])]:
        (tmp_path / name).write_text(f"class Args:\n{field}\n")
        flags, note = R.scale_flags(name, "paper", str(tmp_path))
        assert flags == want and bool(note) == (not want)
        assert R.scale_flags(name, "smoke", str(tmp_path)) == (["--smoke"], "")
        assert R.scale_flags(name, "cpu", str(tmp_path)) == ([], "")


def test_run_jobs_stops_after_a_failure_and_shows_its_log(tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / "experiments" / "toy").mkdir(parents=True)
    for name, body in {"a.py": "print('fine')", "b.py": "import sys\nprint('boom')\nsys.exit(3)",
                       "c.py": "print('never')", "d.py": "import time\ntime.sleep(60)"}.items():
        (repo / "experiments" / "toy" / name).write_text(body)
    paper = Paper("toy", "t", "experiments/toy", "toy")
    jobs = R.plan([paper], "cpu", str(repo))
    out = tmp_path / "out"
    failed = R.run_jobs(jobs, 2, 0, str(tmp_path / "logs"), str(out), "cpu", repo=str(repo))
    text = capsys.readouterr().out
    assert [j.script for j in failed] == ["experiments/toy/b.py"]
    assert "ok   experiments/toy/a.py" in text and "boom" in text and "FAILED: experiments/toy/b.py (exit 3" in text
    log = json.loads((out / R.LOG_NAME).read_text())
    assert set(log) == {"experiments/toy/a.py", "experiments/toy/b.py"}  # c waits for b, d for c
    assert log["experiments/toy/a.py"]["ok"] and not log["experiments/toy/b.py"]["ok"]
    timed = [R.Job("toy", "experiments/toy/d.py", [])]
    failed = R.run_jobs(timed, 1, 1.0, str(tmp_path / "logs"), str(out), "smoke", repo=str(repo))
    assert failed and "killed after the 1 s timeout" in capsys.readouterr().out


def test_cli_help_is_jax_free_and_smoke_never_writes_results():
    code = ("import sys\nfrom rlsuite import cli\ntry:\n    cli.main(['reproduce', '--help'])\n"
            "except SystemExit as e:\n    assert e.code == 0\nassert 'jax' not in sys.modules, 'jax imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--scale {smoke,cpu,paper}" in proc.stdout
    with pytest.raises(ValueError, match="never write to results/"):
        R.main(["all", "--scale", "smoke", "--out", os.path.join(R.REPO, "results"), "--tables-only"])
    with pytest.raises(ValueError, match="--jobs must be a positive integer"):
        R.main(["all", "--jobs", "0", "--dry-run"])
