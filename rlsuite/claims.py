"""Each paper's claims, where our measurement of each lives in ``results/``, and the rule that
turns the numbers into a verdict.

``rlsuite reproduce`` reads this file to build ``results/README.md`` and the README's result
tables.  Nothing here is a measured number: every figure is read from a results file when the
tables are built, so the tables cannot drift from what the scripts wrote.

* A ``Cell`` is one cell of a table in a results file (a Markdown table in ``*.md``, or the table
  of a ``*.csv``): the first table whose header has ``column`` and every ``where`` column, the
  first row whose ``where`` cells match.  ``part`` says which number of the cell: ``value`` (the
  first number), ``lo`` / ``hi`` (the bounds of ``m [lo, hi]`` or ``m ± h``), ``fraction``
  (``a/b``), ``pattern`` (a regex whose one group is the number), or ``seeds`` (all numbers of the
  cell, one per seed; a ``.json`` file's list).
* A ``Figure`` is a cell, the difference ``a - b`` / ratio ``a / b`` of two cells, or, on per-seed
  cells, the probability of improvement ``P(a > b)`` / the IQM of ``a``, each with a 95% bootstrap
  CI from ``rlsuite.core.stats`` (rliable's estimators).
* A ``Rule`` is the comparison each figure must pass (``>= target``), with an optional
  ``partly`` band.  Verdict of a claim: every figure passes -> **holds**; none passes and none is
  in the partly band -> **does not hold**; anything between -> **partly** (a figure that cannot be
  read never counts as passing).  A claim whose results files do not exist yet reads **not run**;
  one whose files exist but lack every figure's row (a smoke run covers a subset) **not measured**.

``scale`` is the scale a claim belongs to: ``cpu`` claims are what the paper's sheet says should
show at our CPU scale; ``paper`` claims need ``--scale paper`` to be a fair test, and a verdict
measured at CPU scale says so.

A new paper: one ``Paper`` entry below (its scripts are found by folder; ``order`` only for those
that read another's output), claims whose cells name its results files, and a
``<!-- results:<name> --> <!-- /results:<name> -->`` pair in README.md where its table should go.
``tests/test_reproduce.py`` checks that every cell named here exists in the committed results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Cell:
    file: str
    """Results file, relative to the results root (``pg_estimators/summary.md``)."""
    column: str
    """Column header (the first column of that name)."""
    where: tuple[tuple[str, str], ...] = ()
    """(column, value) pairs that select the row."""
    part: str = "value"
    """``value`` | ``lo`` | ``hi`` | ``fraction`` | ``pattern`` | ``seeds`` (every number in the cell:
    per-seed scores ``"52.6 49.5 60.0"``; in a ``.json`` file, ``column`` is the key of a list)."""
    pattern: Optional[str] = None
    """With ``part="pattern"``: a regex whose group 1 is the number (``NUM`` stands for a number)."""


@dataclass(frozen=True)
class Figure:
    label: str
    a: Cell
    op: Optional[str] = None
    """``None`` (the cell itself), ``"-"`` (a - b), ``"/"`` (a / b); on per-seed cells
    (``part="seeds"``) ``"P>"``: rliable's probability of improvement P(a > b) with its 95% bootstrap
    CI, or ``"iqm"``: the interquartile mean of ``a`` with its CI (``rlsuite.core.stats``)."""
    b: Optional[Cell] = None


@dataclass(frozen=True)
class Rule:
    cmp: str
    """``>=``, ``>``, ``<=`` or ``<``."""
    target: float
    partly: Optional[float] = None
    """A figure that misses ``target`` but passes ``cmp partly`` counts as partly met."""


@dataclass(frozen=True)
class Claim:
    claim: str
    figures: tuple[Figure, ...]
    rule: Rule
    scale: str = "cpu"


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    experiments: str
    """Script folder (``experiments/<name>`` or ``benchmarks``)."""
    results: str
    """Results folder under the results root."""
    order: tuple[str, ...] = ()
    """Scripts that must run first, in this order (data building before training, ...)."""
    claims: tuple[Claim, ...] = field(default_factory=tuple)
    aliases: tuple[str, ...] = ()
    readme_tables: tuple["Embed", ...] = ()
    """Results tables copied (generated) into the README's block for this paper, after its claims."""


@dataclass(frozen=True)
class Embed:
    """The rows of the first table that has ``columns`` in each of ``files``, those columns only
    (a name listed twice takes the header's second column of that name)."""

    files: tuple[str, ...]
    columns: tuple[str, ...]
    caption: str = ""
    names: tuple[str, ...] = ()
    """Headers to print instead of ``columns`` (same length)."""


def C(file: str, column: str, part: str = "value", pattern: Optional[str] = None, **where: object) -> Cell:
    """A cell.  Column names match with ``_`` and spaces treated alike (``elite_choice="reeval"``)."""
    return Cell(file, column, tuple((k, str(v)) for k, v in where.items()), part, pattern)


def diff(label: str, a: Cell, b: Cell) -> Figure:
    return Figure(label, a, "-", b)


def ratio(label: str, a: Cell, b: Cell) -> Figure:
    return Figure(label, a, "/", b)


def one(label: str, a: Cell) -> Figure:
    return Figure(label, a)


def p_improve(label: str, a: Cell, b: Cell) -> Figure:
    """P(a run of ``a`` beats a run of ``b``); both cells per-seed (``part="seeds"``)."""
    return Figure(label, a, "P>", b)


# ----------------------------------------------------------------------------------- papers

_PG = "pg_estimators/summary.md"
_AUC = "AUC: mean eval return over run"
_PG_ENVS = ("cartpole", "acrobot", "hopper")

_BPG = "bayesian_pg/gradient_accuracy.md"
_ODICE_SETS = (("offline_pendulum.md", "pendulum-medium"), ("offline_pendulum.md", "pendulum-medium-replay"),
               ("offline_brax.md", "hopper-medium"), ("offline_brax_walker2d.md", "walker2d-medium"),
               ("offline_brax_halfcheetah.md", "halfcheetah-medium"))
_GA_ENVS = ("spaceinvaders_minatar", "inverted_double_pendulum")
_GBRL_CLAIMS = "gbrl/claims.md"
_GROOVE = "meta_discovery/groove/summary_heldout_throughput.md"
_LPO = "meta_discovery/lpo/"
_HG = _LPO + "horizon_generalization.md"


def _odice(method: str) -> tuple[Figure, ...]:
    def seeds(f: str, ds: str, algo: str) -> Cell:
        return C(f"odice/{f.replace('.md', '.csv')}", "per_seed", "seeds", dataset=ds, algo=algo)

    return tuple(p_improve(ds, seeds(f, ds, "O-DICE"), seeds(f, ds, method)) for f, ds in _ODICE_SETS)


def _lpo_raw(env: str, method: str, horizon: str) -> Cell:
    return C(f"{_LPO}raw/{env}_{method}_{horizon}.json", "returns", "seeds")


PAPERS: tuple[Paper, ...] = (
    Paper(
        "pg_estimators", "Fatkhullin et al., ICML 2023: N-PG-IGT and (N-)HARPG", "experiments/pg_estimators",
        "pg_estimators",
        readme_tables=(Embed((_PG,), ("env", "method", "best gamma0", "final eval return (95% CI)", _AUC,
                                      "diverged seeds"),
                             "Best step size per method (`summary.md`; ± = 95% Student-t interval over 10 seeds):",
                             ("env", "method", "best gamma0", "final eval return", "AUC (mean eval return over the run)",
                              "diverged seeds")),),
        claims=(
            Claim("N-PG-IGT >= Vanilla-PG at equal samples (AUC of the evaluation return, best step size each)",
                  tuple(diff(e, C(_PG, _AUC, env=e, method="N-PG-IGT"), C(_PG, _AUC, env=e, method="Vanilla-PG"))
                        for e in _PG_ENVS), Rule(">=", 0.0)),
            Claim("N-HARPG >= N-PG-IGT at equal samples (AUC)",
                  tuple(diff(e, C(_PG, _AUC, env=e, method="N-HARPG"), C(_PG, _AUC, env=e, method="N-PG-IGT"))
                        for e in _PG_ENVS), Rule(">=", 0.0)),
        ),
    ),
    Paper(
        "bayesian_pg", "Ghavamzadeh, Engel, Valko, JMLR 2016: Bayesian policy gradient and actor-critic",
        "experiments/bayesian_pg", "bayesian_pg",
        claims=(
            Claim("BPG Model 1 estimates the gradient more accurately than MC (angle to the exact LQR gradient, "
                  "M = 20 episodes; ratio BPG-1 / MC)",
                  tuple(ratio(f"noise var {nv}", C(_BPG, "angle_deg", env="lqr:lqr-1d", M=20, estimator="bpg1", noise_var=nv),
                              C(_BPG, "angle_deg", env="lqr:lqr-1d", M=20, estimator="mc"))
                        for nv in ("0.1", "1", "10")), Rule("<=", 1.0)),
            Claim("BPG Model 2 with M episodes is at least as accurate as MC with 2M (relative-error ratio, LQR)",
                  tuple(one(f"M={m}", C("bayesian_pg/gradient_accuracy_ratio.csv", "rel_err_ratio_vs_mc_2M",
                                        env="lqr:lqr-1d", M=m, estimator="bpg2", noise_var="1.0"))
                        for m in (5, 10, 20)), Rule("<=", 1.0, partly=1.1)),
            Claim("BAC learns faster than MC-PG on the LQR (final J, best step size of each: BAC - MC-PG)",
                  (diff("final J", C("bayesian_pg/learning_lqr.md", "final_J", method="BAC", step_size="0.1"),
                        C("bayesian_pg/learning_lqr.md", "final_J", method="MC-PG", step_size="0.01")),),
                  Rule(">=", 0.0)),
        ),
    ),
    Paper(
        "martingale", "Jia & Zhou, JMLR 2022: martingale policy evaluation", "experiments/martingale", "martingale",
        readme_tables=(Embed(("martingale/dt_convergence.md",),
                             ("method", "q (dt>=0.01)", "err dt=0.1", "err dt=0.01", "err dt=0.001"),
                             "Relative L2 error vs dt on the OU task and the fitted rate q (`dt_convergence.md`):"),),
        claims=(
            Claim("LSTD reaches < 2% relative L2 error with 1e4 paths at dt = 0.01 (OU task)",
                  (one("rel L2, seed 0", C("martingale/closed_form_checks.md", "notes", "pattern", r"rel L2 (NUM)",
                                           task="ou", method="lstd (target: 1e4 paths, dt=0.01)")),
                   one("rel L2, max of 20 seeds", C("martingale/closed_form_checks.md", "notes", "pattern",
                                                    r"max (NUM)", task="ou", method="lstd, 20 more seeds"))),
                  Rule("<=", 0.02, partly=0.03)),
            Claim("Martingale methods converge at first order in dt (fitted rate q over dt >= 0.01)",
                  tuple(one(m, C("martingale/dt_convergence.md", "q (dt>=0.01)", method=m))
                        for m in ("lstd", "ml", "td0-online", "tdlambda-online", "gtd-online")),
                  Rule(">=", 0.8, partly=0.5)),
            Claim("MSTDE is biased: its error does not vanish as dt -> 0 (relative error at dt = 0.001)",
                  (one("MSTDE err", C("martingale/dt_convergence.md", "err dt=0.001", method="mstde")),),
                  Rule(">=", 0.1)),
        ),
    ),
    Paper(
        "odice", "Mao et al., ICLR 2024: O-DICE", "experiments/odice", "odice",
        order=("build_datasets.py", "run_offline.py", "run_il.py"),
        readme_tables=(Embed(tuple(f"odice/{f}" for f in dict.fromkeys(f for f, _ in _ODICE_SETS)),
                             ("dataset", "dataset", "BC", "IQL", "semi-DICE", "true-DICE", "O-DICE"),
                             "Normalised scores, mean ± std over 5 seeds (`offline_*.md`):",
                             ("dataset", "data", "BC", "IQL", "semi-DICE", "true-DICE", "O-DICE")),),
        claims=(
            Claim("O-DICE >= BC on D4RL-style medium datasets (probability that an O-DICE seed beats a BC seed, "
                  "normalised score)", _odice("BC"), Rule(">=", 0.5), scale="paper"),
            Claim("O-DICE >= true-gradient DICE (the orthogonal gradient fixes the conflict; P(O-DICE > true-DICE))",
                  _odice("true-DICE"), Rule(">=", 0.5), scale="paper"),
            Claim("Offline imitation from one expert trajectory: O-DICE >= BC on that trajectory",
                  (diff("O-DICE - BC", C("odice/il_pendulum.md", "normalised score (mean ± std)", algorithm="O-DICE"),
                        C("odice/il_pendulum.md", "normalised score (mean ± std)", algorithm="BC (expert traj)")),),
                  Rule(">=", 0.0), scale="paper"),
        ),
    ),
    Paper(
        "lpo", "Lu et al., NeurIPS 2022 (LPO, DPO); Jackson et al., ICLR 2024 (TA-LPO)", "experiments/lpo",
        "meta_discovery/lpo", order=("meta_train.py", "evaluate.py", "plot_drift.py"), aliases=("meta_discovery",),
        readme_tables=(Embed((_HG,), ("env", "role", "horizon", "steps", "ppo", "dpo", "lpo", "ta-lpo"),
                             "Final evaluation return, mean [95% bootstrap CI] over 8 seeds "
                             "(`horizon_generalization.md`):"),),
        claims=(
            Claim("DPO >= PPO on CartPole at equal steps (upper end of the paired 95% CI of DPO - PPO >= 0)",
                  tuple(one(f"{s} steps", C(_LPO + "dpo_vs_ppo.md", "DPO - PPO", "hi", env="cartpole", steps=s))
                        for s in ("8192", "32768", "131072")), Rule(">=", 0.0)),
            Claim("DPO >= PPO on CartPole: probability that a DPO seed beats a PPO seed (same seeds and steps)",
                  tuple(p_improve(h, _lpo_raw("cartpole", "dpo", h), _lpo_raw("cartpole", "ppo", h))
                        for h in ("0.25x", "1x", "4x")), Rule(">=", 0.5, partly=0.4)),
            Claim("A few OpenES generations improve the mean fitness over the PPO-initialised start "
                  "(CartPole: last 3 generations' mean - first 3)",
                  tuple(diff(m, C(_LPO + "meta_training_cartpole.md", "last 3 gens mean", method=m),
                             C(_LPO + "meta_training_cartpole.md", "first 3 gens mean", method=m))
                        for m in ("lpo", "ta-lpo")), Rule(">", 0.0)),
            Claim("LPO transfers to unseen environments (LPO - PPO at 1x horizon, mean of the paired difference)",
                  tuple(one(e, C(_HG, "lpo - ppo", env=e, horizon="1x")) for e in ("breakout", "inverted_pendulum")),
                  Rule(">=", 0.0), scale="paper"),
            Claim("TA-LPO >= LPO across horizons (final return at 0.25x / 1x / 4x, TA-LPO - LPO)",
                  tuple(diff(f"{e} {h}", C(_HG, "ta-lpo", env=e, horizon=h), C(_HG, "lpo", env=e, horizon=h))
                        for e in ("spaceinvaders", "breakout") for h in ("0.25x", "1x", "4x")),
                  Rule(">=", 0.0), scale="paper"),
        ),
    ),
    Paper(
        "deep_ga", "Such et al., 2017: Deep GA and novelty search", "experiments/deep_ga", "deep_ga",
        readme_tables=(Embed(("deep_ga/maze_ga_vs_ns.md",), ("method", "seeds reaching the goal", "mean min distance"),
                             "Deceptive maze (`maze_ga_vs_ns.md`):"),),
        claims=(
            Claim("GA-NS escapes the deceptive maze where the reward GA is trapped (fraction of seeds reaching "
                  "the goal: GA-NS - GA)",
                  (diff("GA-NS - GA", C("deep_ga/maze_ga_vs_ns.md", "seeds reaching the goal", "fraction", method="GA-NS"),
                        C("deep_ga/maze_ga_vs_ns.md", "seeds reaching the goal", "fraction", method="GA")),),
                  Rule(">=", 0.4, partly=0.2)),
            Claim("The GA matches PPO on CartPole at equal frames (mean test return GA / PPO)",
                  (ratio("GA / PPO", C("deep_ga/cartpole_compare.md", "mean test return", method="GA"),
                         C("deep_ga/cartpole_compare.md", "mean test return", method="PPO")),),
                  Rule(">=", 0.95, partly=0.8)),
            Claim("Seed chains compress a 1M-parameter population ~1000x (N = 1000, 1000 generations)",
                  (one("raw / chains", C("deep_ga/encoding_size.md", "raw / chains", population_N="1000",
                                         generations="1000")),), Rule(">=", 100.0)),
            Claim("Re-evaluating the top 10 shrinks the train/test gap of the elite (mean |gap|: one-episode - "
                  "re-evaluated)",
                  (diff("gap reduction", C("deep_ga/elite_reeval.md", "mean |gap|", elite_choice="one-episode"),
                        C("deep_ga/elite_reeval.md", "mean |gap|", elite_choice="reeval")),), Rule(">", 0.0)),
            Claim("GA beats random search (T = 0) at equal env frames (mean test return, GA / RS)",
                  tuple(ratio(e, C(f"deep_ga/compare_{e}.md", "mean test return", method="GA"),
                              C(f"deep_ga/compare_{e}.md", "mean test return", method="RS")) for e in _GA_ENVS),
                  Rule(">=", 1.0)),
            Claim("GA is competitive with gradient-based RL at equal env frames (GA / PPO mean test return; "
                  "the paper: Atari at 1B frames)",
                  tuple(ratio(e, C(f"deep_ga/compare_{e}.md", "mean test return", method="GA"),
                              C(f"deep_ga/compare_{e}.md", "mean test return", method="PPO")) for e in _GA_ENVS),
                  Rule(">=", 0.9, partly=0.5), scale="paper"),
        ),
    ),
    Paper(
        "gbrl", "Fuhrer, Tessler, Dalal: Gradient Boosting Reinforcement Learning", "experiments/gbrl", "gbrl",
        readme_tables=(Embed(("gbrl/summary.md",), ("env", "agent", "final eval (mean ± 95% CI)", "best mean eval",
                                                    "env steps")),),
        claims=(
            Claim("GBT-PPO matches NN-PPO on CartPole (final evaluation return, GBT-PPO / NN-PPO)",
                  (ratio("GBT-PPO / PPO", C("gbrl/summary.md", "final eval (mean ± 95% CI)", env="cartpole", agent="gbrl-ppo"),
                         C("gbrl/summary.md", "final eval (mean ± 95% CI)", env="cartpole", agent="ppo")),),
                  Rule(">=", 0.95, partly=0.8)),
            Claim("GBT actor-critics beat NN-PPO on categorical / structured observations "
                  "(MiniGrid-like objgrid:goto; P(GBT > NN) over 5 seeds each)",
                  tuple(one(a, C(_GBRL_CLAIMS, "P(GBT > NN) [95% CI]", env="objgrid", GBT_agent=a))
                        for a in ("gbrl-ppo", "gbrl-a2c")),
                  Rule(">", 0.5)),
            Claim("Our jitted tree fitter is >= 2x faster than NVlabs gbrl (100 depth-4 oblivious trees, "
                  "10000 x 8, this CPU; gbrl time / ours)",
                  (one("gbrl fit / ours", C("benchmarks/gbrl_vs_peers.md", "peer s / ours s", library="gbrl-fit")),),
                  Rule(">=", 2.0)),
        ),
    ),
    Paper(
        "groove", "Oh et al., 2020 (LPG) and Jackson et al., 2023 (GROOVE)", "experiments/meta_discovery/groove",
        "meta_discovery/groove",
        readme_tables=(Embed((_GROOVE,), ("levels", "rule", "n levels", "A2C-normalised", "CI lo", "CI hi",
                                          "frac below 75% A2C")),),
        claims=(
            Claim("A meta-learned LPG rule trains agents on held-out grid worlds better than the randomly "
                  "initialised meta-network (A2C-normalised return, learned - random)",
                  tuple(diff(f"{r}, all held-out", C(_GROOVE, "A2C-normalised", levels="all", rule=r),
                             C(_GROOVE, "A2C-normalised", levels="all", rule="random-init"))
                        for r in ("lpg", "groove")),
                  Rule(">=", 0.2, partly=0.0)),
            Claim("GROOVE's rule generalises at least as well as LPG's at equal meta-training compute "
                  "(fraction of held-out levels below 75% of A2C, LPG - GROOVE; normalised return, GROOVE - LPG)",
                  (diff("below-75% fraction, all", C(_GROOVE, "frac below 75% A2C", levels="all", rule="lpg"),
                        C(_GROOVE, "frac below 75% A2C", levels="all", rule="groove")),
                   diff("normalised return, random levels", C(_GROOVE, "A2C-normalised", levels="random", rule="groove"),
                        C(_GROOVE, "A2C-normalised", levels="random", rule="lpg"))),
                  Rule(">=", 0.0), scale="paper"),
        ),
    ),
    Paper(
        "benchmarks", "Throughput and overhead targets", "benchmarks", "benchmarks",
        readme_tables=(
            Embed(("benchmarks/engine_overhead.md",), ("setup", "loop", "M steps/s", "ratio ours/bare"),
                  "Engine vs bare loops (`engine_overhead.md`; ratio = bare run time / ours):"),
            Embed(("benchmarks/ppo_vs_rejax.md",), ("lib", "seeds", "run s", "compile+run s", "process s",
                                                     "mean final return"),
                  "PPO CartPole 500k steps, rlsuite vs rejax (`ppo_vs_rejax.md`):"),
        ),
        claims=(
            Claim("The rollout engine runs at >= 0.9x a bare scan(vmap(env.step)) (ours / bare)",
                  tuple(one(s, C("benchmarks/engine_overhead.md", "ratio ours/bare", setup=s, loop="bare_gymnax"))
                        for s in ("gymnax:CartPole-v1 N=256 T=4096", "gymnax:CartPole-v1 N=2048 T=1024",
                                  "brax:inverted_pendulum spring N=64 T=1000")), Rule(">=", 0.9, partly=0.8)),
            Claim("PPO on CartPole runs in <= 0.8x rejax's time (run without compile, ours / rejax)",
                  tuple(one(f"{s} seed(s)", C("benchmarks/ppo_vs_rejax.md", "run (no compile)", seeds=s))
                        for s in ("1", "16")), Rule("<=", 0.8)),
            Claim("PPO on CartPole with one CPU-runtime thread (`--cpu-threads 1`) runs in <= 0.8x native "
                  "rejax's time (run without compile, ours / rejax on its defaults)",
                  tuple(one(f"{s} seed(s)", C("benchmarks/ppo_vs_rejax.md", "run", ratio="rlsuite-1thread / rejax",
                                              seeds=s)) for s in ("1", "16")), Rule("<=", 0.8, partly=0.9)),
            Claim("O-DICE takes >= 1.2x the gradient steps/s of the code before issue 17 (same run, paper sizes)",
                  (one("O-DICE (orthogonal)", C("benchmarks/odice_before_after.md", "ratio vs first tree",
                                                source="after", algorithm="O-DICE (orthogonal)")),),
                  Rule(">=", 1.2, partly=1.1)),
            Claim("O-DICE runs at >= 0.8 of this machine's float32 matmul limit",
                  (one("O-DICE (orthogonal)", C("benchmarks/odice_before_after.md", "fraction of matmul limit",
                                                source="after", algorithm="O-DICE (orthogonal)")),),
                  Rule(">=", 0.8)),
            Claim("One ES generation through the meta engine costs <= 1.05x a bare vmap of the same runs",
                  (one("engine / bare", C("benchmarks/es_overhead.md", "vs bare", side="engine")),), Rule("<=", 1.05)),
            Claim("Deep GA population evaluation runs at >= 0.9x a bare vmapped rollout",
                  tuple(one(e, C("benchmarks/ga_throughput.md", "engine / bare", env=e))
                        for e in ("gymnax:CartPole-v1", "maze:hard")), Rule(">=", 0.9, partly=0.8)),
            Claim("One BPG estimate at M = 20 costs <= 5x the MC estimate (with sampling)",
                  tuple(one(e, C("benchmarks/bpg_cost.md", "ratio vs MC", estimator=e)) for e in ("bpg1", "bpg2")),
                  Rule("<=", 5.0)),
            Claim("One N-HARPG iteration costs <= 3x a Vanilla-PG iteration",
                  (one("N_B = 1 (paper)", C("benchmarks/pg_hvp_overhead.md", "ratio to Vanilla-PG",
                                            method="N-HARPG (N_B=1, paper)")),
                   one("N_B = N = 25", C("benchmarks/pg_hvp_overhead.md", "ratio to Vanilla-PG",
                                         method="N-HARPG (N_B=N=25)"))), Rule("<=", 3.0)),
            Claim("Sharding the runs over 8 virtual CPU devices costs <= 1.1x the unsharded wall time "
                  "(8 devices / 1 device)",
                  tuple(one(w, C("benchmarks/scaling.md", "vs 1 device", workload=w, devices=8))
                        for w in ("runner: 32 PPO runs", "meta: 8 PPO runs (1 ES generation)")),
                  Rule("<=", 1.1)),
            Claim("`--help` and refused inputs answer in under a second (median wall time of the process)",
                  tuple(one(w, C("benchmarks/cli_latency.md", "median (s)", invocation=w))
                        for w in ("rlsuite train ppo --help (help cache empty)", "rlsuite train ppo --num-envs 0")),
                  Rule("<", 1.0)),
        ),
    ),
)


def find_paper(name: str) -> Paper:
    for p in PAPERS:
        if name == p.name or name in p.aliases:
            return p
    names = [p.name for p in PAPERS]
    raise ValueError(f"unknown paper {name!r}; choose one of {names} or 'all'")
