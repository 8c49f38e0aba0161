"""Martingale policy evaluation (Jia & Zhou 2022): error vs dt, MSTDE bias, closed-form checks.

Writes to ``results/martingale/``:

- ``dt_convergence.{csv,md,png}``  (a) relative L2 error of each method's value function on the OU
  task (exact simulation) vs the closed form, as dt shrinks, with the fitted rate ``err ~ dt^q``;
- ``sheet_table.{csv,md}``        (b) the sheet's §9 table re-run (Euler steps, 4000 paths):
  MSTDE's x^2 coefficient ~ dt (biased), LSTD / ML -> theta* = (1/3, 1/3);
- ``closed_form_checks.{csv,md}`` (c) BM terminal task (LSTD/ML/MSTDE -> (1, sigma^2)) and GBM
  rate c_p recovered by ML / TD(0) / TD(lambda) with the parametric family; plus the issue's
  timing target (LSTD, dt = 0.01, 10^4 paths).

The paper's portfolio / ergodic LQ examples are policy-*optimisation* follow-ups and are not run.

    python experiments/martingale/dt_convergence.py               # CPU default, a few minutes
    python experiments/martingale/dt_convergence.py --paper-scale # 5 seeds, 4x paths / iterations
    python experiments/martingale/dt_convergence.py --smoke       # tiny sizes, /tmp/rlsuite-smoke/martingale

Every run goes through the agent protocol: ``rlsuite.agents.get("martingale").make(...)``,
``rlsuite.core.agent.make_train`` and ``rlsuite.core.sweep.run_sweep`` (vmap over seeds).  Seed ``s``
is ``PRNGKey(s)`` (``rlsuite.core.sweep.seed_keys``), the convention of every rlsuite script.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from rlsuite import agents
from rlsuite.agents import martingale as mg
from rlsuite.core import stats
from rlsuite.core.agent import make_train
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.core.sweep import run_sweep, seed_keys
from rlsuite.envs import make

ENTRY = agents.get("martingale")
SMOKE_OUT = "/tmp/rlsuite-smoke/martingale"

METHODS = {
    "lstd": dict(method="lstd"),
    "ml": dict(method="ml"),
    "mstde": dict(method="mstde"),
    "td0-offline": dict(method="td0", mode="offline"),
    "td0-online": dict(method="td0", mode="online"),
    "tdlambda-online": dict(method="tdlambda", mode="online"),
    "gtd-online": dict(method="gtd", mode="online"),
}


GBM_METHODS = {
    "ml (sgd)": dict(method="ml"),
    "td0 offline": dict(method="td0"),
    "tdlambda offline": dict(method="tdlambda"),
}


@dataclass
class Args:
    dts: tuple[float, ...] = (0.1, 0.05, 0.01, 0.005, 0.001)
    """Time steps of the convergence study (OU, T = 3)."""
    methods: tuple[str, ...] = tuple(METHODS)
    """Methods to run (keys of METHODS)."""
    seeds: int = 3
    """Independent runs per (method, dt), vmapped over keys."""
    closed_form_paths: int = 10_000
    """Paths per run for the closed-form methods (LSTD, ML, MSTDE)."""
    sa_paths: int = 128
    """Paths per iteration for the stochastic-approximation methods."""
    sa_iterations: int = 60
    """Iterations (batches) for the stochastic-approximation methods."""
    steps_per_batch: int = 1_000_000
    """Memory cap: paths x steps per sampled batch of the closed-form methods (per seed)."""
    parts: tuple[str, ...] = ("checks", "sheet", "convergence")
    """Which outputs to (re)build: checks -> closed_form_checks, sheet -> sheet_table, convergence."""
    target_seeds: int = 20
    """Independent seeds for the LSTD timing/accuracy target (dt = 0.01, 10^4 paths each)."""
    target_paths: int = 10_000
    """Paths of the LSTD target run and of the BM-terminal closed-form checks."""
    bm_methods: tuple[str, ...] = ("lstd", "ml", "mstde")
    """Closed-form methods of the BM-terminal check (keys of METHODS)."""
    gbm_methods: tuple[str, ...] = tuple(GBM_METHODS)
    """Methods of the GBM rate check (keys of GBM_METHODS)."""
    gbm_paths: int = 500
    """Paths per iteration of the GBM rate checks."""
    gbm_iterations: int = 200
    """Iterations of the GBM rate checks."""
    sheet_dts: tuple[float, ...] = (0.1, 0.03, 0.01, 0.003)
    """Time steps of the sheet's §9 table."""
    sheet_paths: int = 4000
    """Paths of the sheet's §9 table (one draw)."""
    paper_scale: bool = False
    """5 seeds, 4x paths and iterations."""
    smoke: bool = False
    """Tiny sizes (CI, well under a minute); writes to /tmp/rlsuite-smoke/martingale unless --out is given."""
    out: str = "results/martingale"
    """Output folder (CSV, Markdown, PNG)."""


def train_seeds(cfg, env, p, hp, keys):
    """Final states of ``len(keys)`` runs of ``cfg`` (one ``run_sweep`` over the seed keys)."""
    train = make_train(ENTRY.make(cfg, env, p))
    st, _ = run_sweep(train, keys, jax.tree.map(lambda x: x[None], hp))
    return jax.tree.map(lambda x: x[0], st)


def run_method(
    env, p, kw: dict, dt: float, seeds: int, paths: int, iterations: int, steps_per_batch: int
):
    """Returns (config, theta_avg[seeds, P], seconds incl. compile)."""
    k = round(p.horizon / dt)
    if mg.uses_closed_form(mg.MartingaleConfig(**kw)):
        batches = max(1, math.ceil(paths * k / steps_per_batch))
        cfg = mg.MartingaleConfig(
            **kw, num_paths=math.ceil(paths / batches), num_iterations=batches, num_steps=k
        )
    else:
        cfg = mg.MartingaleConfig(**kw, num_paths=paths, num_iterations=iterations, num_steps=k)
    hp = mg.default_hparams(cfg, p, dt=dt)
    keys = seed_keys(range(seeds))
    t0 = time.perf_counter()
    st = train_seeds(cfg, env, p, hp, keys)
    theta = np.asarray(jax.block_until_ready(st.theta_avg))
    return cfg, theta, time.perf_counter() - t0


def convergence(args: Args, meta):
    env, p = make("diffusion:ou", dt=min(args.dts))
    rows, errs = [], {}
    for name in args.methods:
        for dt in args.dts:
            cf = mg.uses_closed_form(mg.MartingaleConfig(**METHODS[name]))
            cfg, theta, secs = run_method(
                env,
                p,
                METHODS[name],
                dt,
                args.seeds,
                args.closed_form_paths if cf else args.sa_paths,
                args.sa_iterations,
                args.steps_per_batch,
            )
            e = np.array([float(mg.relative_l2_error(cfg, env, p, jnp.asarray(t))) for t in theta])
            errs.setdefault(name, []).append(e.mean())
            m, lo, hi = stats.mean_ci(e)
            rows.append([name, dt, m, lo, hi, *theta.mean(0), secs])
            print(
                f"{name:16s} dt={dt:<6} err={stats.fmt_ci(m, lo, hi)} theta={theta.mean(0)} ({secs:.1f}s)",
                flush=True,
            )
    header = ["method", "dt", "rel_l2_mean", "rel_l2_ci95_lo", "rel_l2_ci95_hi", "theta_x2", "theta_1", "seconds"]
    write_csv(f"{args.out}/dt_convergence.csv", header, rows, meta)
    dts = np.array(args.dts)
    rates = []
    for name, e in errs.items():
        e = np.array(e)
        q_all = np.polyfit(np.log(dts), np.log(e), 1)[0]
        sel = dts >= 0.01
        q_coarse = (
            np.polyfit(np.log(dts[sel]), np.log(e[sel]), 1)[0] if sel.sum() >= 2 else float("nan")
        )
        rates.append([name, float(q_all), float(q_coarse), *[float(x) for x in e]])
    body = (
        "OU task (kappa = sigma = beta = 1, T = 3, h = V, exact transitions, x0 ~ U[-2, 2]); features "
        "[x^2, 1]; error = ||J_theta - J||_2 / ||J||_2 on 41 states x 4 times; mean over seeds (95% bootstrap "
        "CIs over seeds in dt_convergence.csv).\n"
        f"Closed forms (lstd, ml, mstde): {args.closed_form_paths} paths per seed. SA methods: "
        f"{args.sa_paths} paths x {args.sa_iterations} iterations per seed, Polyak tail average.\n"
        "Rate q: least-squares slope of log(err) vs log(dt), over all dt and over dt >= 0.01 (at small dt "
        "the Monte-Carlo floor dominates).\n\n"
        + markdown_table(
            ["method", "q (all dt)", "q (dt>=0.01)"] + [f"err dt={d}" for d in args.dts], rates
        )
        + "\n\n![error vs dt](dt_convergence.png)\n"
    )
    write_markdown(f"{args.out}/dt_convergence.md", "Martingale PE: error vs dt", body, meta)
    _plot(args, errs, f"{args.out}/dt_convergence.png")
    return rates


def _plot(args, errs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, e in errs.items():
        ax.loglog(args.dts, e, "o-", label=name)
    d = np.array(args.dts)
    ax.loglog(d, d * (errs.get("lstd", [1])[0] / d[0]), "k:", label="slope 1")
    ax.set_xlabel("dt")
    ax.set_ylabel("relative L2 error vs closed form")
    ax.set_title("OU policy evaluation: error vs dt")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sheet_table(args: Args, meta):
    """Sheet §9: Euler steps, 4000 paths, one draw."""
    rows = []
    for dt in args.sheet_dts:
        env, p = make("diffusion:ou", dt=dt, scheme="euler")
        row = [dt]
        for name in ("mstde", "lstd", "ml"):
            _, theta, _ = run_method(
                env, p, METHODS[name], dt, 1, args.sheet_paths, 1, args.steps_per_batch
            )
            row.append("(%.3f, %.3f)" % tuple(theta[0]))
        rows.append(row)
        print("sheet", row, flush=True)
    header = ["dt", "MSTDE theta", "LSTD theta", "ML theta"]
    write_csv(f"{args.out}/sheet_table.csv", header, rows, meta)
    body = (
        "Sheet §9 setting: OU, kappa = sigma = beta = 1, T = 3, h = V, x0 ~ U[-2, 2], **Euler** steps, "
        f"{args.sheet_paths} paths, features [x^2, 1], theta* = (0.333, 0.333). Sheet values: MSTDE (0.09, 0.84) / (0.029, 0.83) / "
        "(0.010, 0.78) / (0.003, 0.65); LSTD (0.38, 0.36) / (0.34, 0.335) / (0.34, 0.34) / (0.327, 0.337); "
        "ML (0.39, 0.34) / (0.334, 0.34) / (0.34, 0.335) / (0.334, 0.331).\n\n"
        + markdown_table(header, rows)
    )
    write_markdown(
        f"{args.out}/sheet_table.md", "Martingale PE: sheet §9 table (MSTDE bias)", body, meta
    )
    return rows


def closed_form_checks(args: Args, meta):
    rows = []
    # issue target: LSTD at dt = 0.01, 10^4 paths, OU, < 2 % relative L2, < 1 minute
    env, p = make("diffusion:ou", dt=0.01)
    cfg = mg.MartingaleConfig(method="lstd", num_paths=args.target_paths)
    hp = mg.default_hparams(cfg, p)
    t0 = time.perf_counter()
    train = jax.jit(make_train(ENTRY.make(cfg, env, p))).lower(jax.random.PRNGKey(0), hp).compile()
    t1 = time.perf_counter()
    st, _ = train(jax.random.PRNGKey(0), hp)
    theta = jax.block_until_ready(st.theta)
    t2 = time.perf_counter()
    err = float(mg.relative_l2_error(cfg, env, p, theta))
    rows.append(
        [
            "ou",
            f"lstd (target: {args.target_paths:.0e} paths, dt=0.01)".replace("e+0", "e"),
            "[x^2, 1]",
            _fmt(theta),
            "(0.3333, 0.3333)",
            f"rel L2 {err:.4f}; compile {t1 - t0:.1f}s + run {t2 - t1:.2f}s",
        ]
    )
    keys = seed_keys(range(1, 1 + args.target_seeds))  # seed 0 is the timed run
    thetas = train_seeds(cfg, env, p, hp, keys).theta
    errs = np.array([float(mg.relative_l2_error(cfg, env, p, t)) for t in thetas])
    rows.append(
        [
            "ou",
            f"lstd, {args.target_seeds} more seeds",
            "[x^2, 1]",
            _fmt(np.asarray(thetas).mean(0)) + " mean",
            "(0.3333, 0.3333)",
            f"rel L2 mean {stats.fmt_ci(*stats.mean_ci(errs))} (95% bootstrap CI), max {errs.max():.4f}; "
            f"{(errs < 0.02).mean():.0%} of seeds < 2%",
        ]
    )
    # BM terminal, features [x^2, T - t], theta* = (1, sigma^2)
    env, p = make("diffusion:bm-terminal", dt=0.01)
    for name in args.bm_methods:
        cfg, theta, secs = run_method(
            env, p, METHODS[name], 0.01, 1, args.target_paths, 1, args.steps_per_batch
        )
        err = float(mg.relative_l2_error(cfg, env, p, jnp.asarray(theta[0])))
        rows.append(
            [
                "bm-terminal",
                name,
                "[x^2, T-t]",
                _fmt(theta[0]),
                "(1, 1)",
                f"rel L2 {err:.4f}; {secs:.1f}s",
            ]
        )
    # GBM, J = x^p exp(theta (T - t)), theta* = c_p
    env, p = make("diffusion:gbm", dt=0.01)
    c_p = float(env.true_parameter(p)[0])
    for name in args.gbm_methods:
        kw = GBM_METHODS[name]
        cfg = mg.MartingaleConfig(
            **kw, value="parametric", num_paths=args.gbm_paths, num_iterations=args.gbm_iterations
        )
        hp = mg.default_hparams(cfg, p)
        t0 = time.perf_counter()
        st, _ = jax.jit(make_train(ENTRY.make(cfg, env, p)))(jax.random.PRNGKey(0), hp)
        th = float(st.theta_avg[0])
        rows.append(
            [
                "gbm",
                name,
                "x^p e^{theta(T-t)}",
                f"{th:.4f}",
                f"{c_p:.4f}",
                f"rel. error of c_p {abs(th - c_p) / c_p:.3%}; {time.perf_counter() - t0:.1f}s",
            ]
        )
    for r in rows:
        print("check", r, flush=True)
    header = ["task", "method", "value family", "theta", "true", "notes"]
    write_csv(f"{args.out}/closed_form_checks.csv", header, rows, meta)
    body = (
        "dt = 0.01, exact transitions. OU: kappa = sigma = beta = 1, T = 3. BM terminal: m = beta = 0, sigma = 1, "
        "T = 1, x0 ~ U[-2, 2]. GBM: mu = 0.2, sigma = 0.3, p = 2, beta = 0, T = 1, x0 ~ U[0.5, 1.5] "
        f"({args.gbm_paths} paths x {args.gbm_iterations} iterations, Polyak tail average).\n\n" + markdown_table(header, rows)
    )
    write_markdown(
        f"{args.out}/closed_form_checks.md",
        "Martingale PE: closed-form checks and timing target",
        body,
        meta,
    )
    return rows


def _fmt(theta):
    return "(" + ", ".join(f"{float(x):.4f}" for x in np.asarray(theta)) + ")"


def smoke_args(args: Args) -> Args:
    """Tiny sizes that still run every part (and every code path of it)."""
    return dataclasses.replace(
        args,
        dts=(0.1, 0.05),
        methods=("lstd", "td0-online"),
        seeds=2,
        closed_form_paths=200,
        sa_paths=16,
        sa_iterations=4,
        target_seeds=2,
        target_paths=200,
        bm_methods=("mstde",),
        gbm_methods=("td0 offline",),
        gbm_paths=16,
        gbm_iterations=4,
        sheet_dts=(0.1,),
        sheet_paths=200,
        paper_scale=False,
        out=SMOKE_OUT if args.out == Args.out else args.out,
    )


def main(args: Args):
    if args.smoke:
        args = smoke_args(args)
    if args.paper_scale:
        args.seeds, args.closed_form_paths = 5, 4 * args.closed_form_paths
        args.sa_paths, args.sa_iterations = 4 * args.sa_paths, 4 * args.sa_iterations
    bad = [m for m in args.methods + args.bm_methods if m not in METHODS]
    bad += [m for m in args.gbm_methods if m not in GBM_METHODS]
    if bad:
        raise ValueError(
            f"unknown method {bad[0]!r}; choose from {sorted(METHODS)} (GBM: {sorted(GBM_METHODS)})"
        )
    os.makedirs(args.out, exist_ok=True)
    bad = [x for x in args.parts if x not in ("checks", "sheet", "convergence")]
    if bad:
        raise ValueError(f"unknown part {bad[0]!r}; choose from checks, sheet, convergence")
    if "checks" in args.parts:
        closed_form_checks(args, provenance(seeds=[0], target_seeds=f"PRNGKey(s), s = 1..{args.target_seeds}"))
    if "sheet" in args.parts:
        sheet_table(args, provenance(seeds=[0]))
    if "convergence" in args.parts:
        convergence(args, provenance(seeds=list(range(args.seeds)), paper_scale=args.paper_scale))


if __name__ == "__main__":
    main(tyro.cli(Args))
