"""Vanilla-PG vs N-PG-IGT vs N-HARPG vs HARPG at equal sample budgets (Fatkhullin et al., ICML 2023).

For every environment and method, ``train`` is ``vmap``-ed over seeds and over a grid of initial
step sizes ``gamma0`` (the sheet: "grid-search it: steps decay like 1/t, so gamma0 dominates");
the best ``gamma0`` per method (highest mean area under the evaluation curve) is plotted with a
95% confidence band (Student t over seeds) against the number of trajectories sampled.  Every
method samples the same number of episodes per iteration: Vanilla-PG and N-PG-IGT use ``N``
episodes for the gradient; (N-)HARPG use ``N - N_B`` for the gradient and ``N_B`` for the
Hessian-vector-product correction.  Returns are from separate evaluation episodes at ``theta_t``.

    python experiments/pg_estimators/run.py                       # CPU default (~10 min per env on 2 shared cores)
    python experiments/pg_estimators/run.py --envs cartpole --seeds 10
    python experiments/pg_estimators/run.py --scale paper         # 300 iterations, paper batch sizes
    python experiments/pg_estimators/run.py --smoke               # tiny CartPole run (< 1 min), writes to /tmp

Writes ``results/pg_estimators/{curves.csv, grid.csv, summary.md, curves.png}`` (``--smoke``:
``/tmp/rlsuite-smoke/pg_estimators``).  Each method is its registry agent (``reinforce``,
``npg-igt``, ``nharpg``, ``harpg``) through the protocol: ``rlsuite.agents.get(name).make`` ->
``rlsuite.core.agent.make_train(agent, eval_every)`` -> ``rlsuite.core.sweep.run_sweep`` over
``rlsuite.core.sweep.seed_keys`` (seed ``s`` is ``PRNGKey(s)``) x ``sweep.grid(hparams, gamma0=...)``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal, Optional

import numpy as np
import tyro
from scipy import stats

from rlsuite import agents
from rlsuite.core import sweep
from rlsuite.core.agent import make_train
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.envs import ClipAction, make


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    env_id: str
    horizon: int
    episodes: int  # N: episodes sampled per iteration by every method
    hessian_episodes: int  # N_B of (N-)HARPG (their gradient batch is N - N_B)
    iterations: int
    eval_every: int
    hidden: tuple = (32, 32)
    make_kw: tuple = ()


CPU = {
    "cartpole": EnvSpec("gymnax:CartPole-v1", 200, 25, 5, 60, 5),
    "acrobot": EnvSpec("gymnax:Acrobot-v1", 500, 10, 2, 40, 5),
    "hopper": EnvSpec(
        "brax:hopper", 100, 10, 2, 40, 5, (64, 64), (("backend", "spring"), ("episode_length", 100))
    ),
}
PAPER = {  # sheet §4: 5000-step batches (README example), caps 200 / 500, [64, 64] Gaussian, 300 iterations
    "cartpole": EnvSpec("gymnax:CartPole-v1", 200, 25, 5, 300, 10),
    "acrobot": EnvSpec("gymnax:Acrobot-v1", 500, 10, 2, 300, 10),
    "hopper": EnvSpec(
        "brax:hopper",
        500,
        10,
        2,
        300,
        10,
        (64, 64),
        (("backend", "spring"), ("episode_length", 500)),
    ),
}
SMOKE = {  # tiny sizes for CI (`--smoke`): seconds, not a result
    "cartpole": EnvSpec("gymnax:CartPole-v1", 20, 3, 1, 4, 2, (8,)),
    "acrobot": EnvSpec("gymnax:Acrobot-v1", 20, 3, 1, 4, 2, (8,)),
    "hopper": EnvSpec(
        "brax:hopper", 10, 3, 1, 4, 2, (8,), (("backend", "spring"), ("episode_length", 10))
    ),
}
SCALES = {"cpu": CPU, "paper": PAPER}
METHODS = ("Vanilla-PG", "N-PG-IGT", "N-HARPG", "HARPG")
AGENTS = {"Vanilla-PG": "reinforce", "N-PG-IGT": "npg-igt", "N-HARPG": "nharpg", "HARPG": "harpg"}
GRIDS = {  # unnormalised steps scale with ||g||; normalised ones are distances in parameter space
    "Vanilla-PG": (0.001, 0.003, 0.01, 0.03),
    "HARPG": (0.001, 0.003, 0.01, 0.03),
    "N-PG-IGT": (0.1, 0.3, 1.0),
    "N-HARPG": (0.1, 0.3, 1.0),
}
SMOKE_GRIDS = {m: g[:2] for m, g in GRIDS.items()}
COLORS = {
    "Vanilla-PG": "tab:gray",
    "N-PG-IGT": "tab:blue",
    "N-HARPG": "tab:red",
    "HARPG": "tab:orange",
}


@dataclasses.dataclass(frozen=True)
class Args:
    """Vanilla-PG vs N-PG-IGT vs N-HARPG vs HARPG at equal sample budgets."""

    envs: Optional[tuple[Literal["cartpole", "acrobot", "hopper"], ...]] = None
    """Environments (default: all three; with --smoke: cartpole)."""
    seeds: int = 10
    """Seeds per (method, gamma0) point: PRNGKey(s), s < seeds (>= 2 for confidence intervals)."""
    scale: Literal["cpu", "paper"] = "cpu"
    """'cpu': CPU-sized budgets; 'paper': 300 iterations and the paper's batch sizes."""
    out: Optional[str] = None
    """Output folder (default results/pg_estimators; with --smoke /tmp/rlsuite-smoke/pg_estimators)."""
    smoke: bool = False
    """Tiny sizes (seconds): checks the script end to end without touching results/."""


def make_env(spec: EnvSpec):
    env, env_params = make(spec.env_id, **dict(spec.make_kw))
    if spec.env_id.startswith("brax:"):
        env = ClipAction(env)
    return env, env_params


def make_method(method: str, spec: EnvSpec, env, env_params):
    """``(agent, train, default_hparams)`` of ``method`` with this env's equal-budget batch sizes."""
    entry = agents.get(AGENTS[method])
    kw = dict(
        horizon=spec.horizon,
        num_iterations=spec.iterations,
        eval_every=spec.eval_every,
        hidden=spec.hidden,
        batch_episodes=spec.episodes,
    )
    if method in ("N-HARPG", "HARPG"):
        kw.update(batch_episodes=spec.episodes - spec.hessian_episodes, hessian_episodes=spec.hessian_episodes)
    cfg = entry.config(**kw)
    agent = entry.make(cfg, env, env_params)
    return agent, make_train(agent, eval_every=cfg.eval_every), entry.default_hparams(cfg)


def run_method(method: str, spec: EnvSpec, env, env_params, seeds: int, grid) -> dict:
    """Train ``seeds x len(grid)`` runs as one jitted ``vmap`` (:func:`rlsuite.core.sweep.run_sweep`).

    Returns ``eval_return [G, S, E]``, ``trajectories [E]`` (sampled before each evaluation) and
    the wall time (compile included).
    """
    agent, train, hp = make_method(method, spec, env, env_params)
    hps, _ = sweep.grid(hp, gamma0=list(grid))
    t0 = time.perf_counter()
    _, m = sweep.run_sweep(train, sweep.seed_keys(range(seeds)), hps)
    ev = np.asarray(m["eval_return"])
    per_iteration = agent.steps_per_update // spec.horizon  # trajectories per iteration
    return {
        "eval_return": ev,
        "trajectories": np.asarray(m["eval_update"][0, 0]) * per_iteration,
        "seconds": time.perf_counter() - t0,
    }


def ci95(x: np.ndarray, axis: int = 0):
    """Mean and half-width of the 95% Student-t confidence interval along ``axis``."""
    n = x.shape[axis]
    half = stats.t.ppf(0.975, n - 1) * x.std(axis, ddof=1) / np.sqrt(n)
    return x.mean(axis), half


def main(args: Args) -> None:
    if args.smoke:
        args = dataclasses.replace(
            args,
            envs=args.envs or ("cartpole",),
            seeds=min(args.seeds, 2),
            out=args.out or "/tmp/rlsuite-smoke/pg_estimators",
        )
    args = dataclasses.replace(
        args, envs=args.envs or tuple(CPU), out=args.out or "results/pg_estimators"
    )
    if args.seeds < 2:
        raise ValueError(f"--seeds must be >= 2 for confidence intervals, got {args.seeds}")
    specs = SMOKE if args.smoke else SCALES[args.scale]
    grids = SMOKE_GRIDS if args.smoke else GRIDS

    curves, grid_rows, summaries, results = [], [], [], {}
    for name in args.envs:
        spec = specs[name]
        env, env_params = make_env(spec)
        results[name] = {}
        for method in METHODS:
            r = run_method(method, spec, env, env_params, args.seeds, grids[method])
            auc = r["eval_return"].mean(
                -1
            )  # [G, S] mean eval return over the run (area under curve)
            # a run that diverged (non-finite returns, e.g. unnormalised HARPG) ranks below any
            # finite one: select by (fewest diverged seeds, highest mean AUC of the finite seeds)
            finite = np.isfinite(auc)
            diverged = (~finite).sum(1)
            score = np.where(finite, auc, 0.0).sum(1) / np.maximum(finite.sum(1), 1)
            best = int(np.lexsort((-score, diverged))[0])
            r["diverged"] = diverged
            r.update(best=best, auc=auc)
            results[name][method] = r
            print(
                f"{name:9s} {method:11s} {r['seconds']:6.1f}s  best gamma0={grids[method][best]}  "
                f"AUC per gamma0 {np.round(auc.mean(1), 1).tolist()}",
                flush=True,
            )
            for g, gamma0 in enumerate(grids[method]):
                mean, half = ci95(r["eval_return"][g])
                for e, x in enumerate(r["trajectories"]):
                    curves.append(
                        [
                            name,
                            method,
                            gamma0,
                            g == best,
                            int(x),
                            float(mean[e]),
                            float(mean[e] - half[e]),
                            float(mean[e] + half[e]),
                        ]
                    )
                m_auc, h_auc = ci95(auc[g])
                grid_rows.append(
                    [
                        name,
                        method,
                        gamma0,
                        round(float(m_auc), 1),
                        round(float(h_auc), 1),
                        round(float(r["eval_return"][g, :, -1].mean()), 1),
                    ]
                )

        for method in METHODS:
            r = results[name][method]
            fin, fin_h = ci95(r["eval_return"][r["best"], :, -1])
            a, a_h = ci95(r["auc"][r["best"]])
            summaries.append(
                [
                    name,
                    method,
                    grids[method][r["best"]],
                    f"{fin:.1f} ± {fin_h:.1f}",
                    f"{a:.1f} ± {a_h:.1f}",
                    int(r["trajectories"][-1]),
                    f"{int(r['diverged'][r['best']])}/{args.seeds}",
                    f"{r['seconds']:.0f}",
                ]
            )

    meta = provenance(
        seeds=f"{args.seeds} (PRNGKey(s), s < {args.seeds})",
        scale="smoke" if args.smoke else args.scale,
    )
    write_csv(
        os.path.join(args.out, "curves.csv"),
        [
            "env",
            "method",
            "gamma0",
            "selected",
            "trajectories",
            "mean_return",
            "ci95_lo",
            "ci95_hi",
        ],
        curves,
        meta,
    )
    write_csv(
        os.path.join(args.out, "grid.csv"),
        ["env", "method", "gamma0", "auc_mean", "auc_ci95", "final_mean"],
        grid_rows,
        meta,
    )
    body = _summary_text(args, specs, results, summaries, grid_rows)
    write_markdown(
        os.path.join(args.out, "summary.md"),
        "Policy-gradient estimators: equal-budget comparison",
        body,
        meta,
    )
    _plot(args, specs, results, grids, os.path.join(args.out, "curves.png"), meta)
    print(body)


def _ordering(results: dict, name: str) -> str:
    """Paired (same seeds, same theta_0) differences of the best-gamma0 AUCs with 95% CIs."""
    auc = {m: results[name][m]["auc"][results[name][m]["best"]] for m in METHODS}
    lines = []
    for a, b in (("N-HARPG", "N-PG-IGT"), ("N-PG-IGT", "Vanilla-PG"), ("N-HARPG", "Vanilla-PG")):
        d, h = ci95(auc[a] - auc[b])
        verdict = (
            "holds (significant)"
            if d - h > 0
            else (
                "holds in the mean, not significant"
                if d > 0
                else ("reversed, not significant" if d + h > 0 else "reversed (significant)")
            )
        )
        lines.append(f"- {name}: AUC({a}) - AUC({b}) = {d:.1f} ± {h:.1f} -> {a} >= {b} {verdict}")
    return "\n".join(lines)


def _summary_text(args, specs, results, summaries, grid_rows) -> str:
    setup = markdown_table(
        [
            "env",
            "id",
            "H",
            "episodes / iteration (N)",
            "HARPG N - N_B / N_B",
            "iterations",
            "policy",
        ],
        [
            [
                n,
                specs[n].env_id,
                specs[n].horizon,
                specs[n].episodes,
                f"{specs[n].episodes - specs[n].hessian_episodes} / {specs[n].hessian_episodes}",
                specs[n].iterations,
                f"MLP {list(specs[n].hidden)}",
            ]
            for n in args.envs
        ],
    )
    table = markdown_table(
        [
            "env",
            "method",
            "best gamma0",
            "final eval return (95% CI)",
            "AUC: mean eval return over run",
            "trajectories",
            "diverged seeds",
            "wall s",
        ],
        summaries,
    )
    grid = markdown_table(
        ["env", "method", "gamma0", "AUC mean", "AUC ±95%", "final mean"], grid_rows
    )
    order = "\n".join(_ordering(results, n) for n in args.envs)
    return (
        "Equal sample budgets: every method samples N episodes per iteration ((N-)HARPG: N - N_B for the "
        "gradient, N_B at q_t for the HVP). Return = mean undiscounted return of 10 evaluation episodes at "
        "theta_t (stochastic policy), mean over seeds with a 95% Student-t interval. gamma0 is the best of the "
        "grid by AUC (selected on the same seeds, so every method gets the same optimistic bias). "
        "Discount 0.99, paper's gamma^h returns, linear feature baseline; schedules of the reference code.\n\n"
        f"{setup}\n\n## Best step size per method\n\n{table}\n\n## Ordering claimed by the paper "
        f"(paired over seeds)\n\n{order}\n\n## Step-size sensitivity (all grid values)\n\n{grid}\n"
    )


def _plot(args, specs, results, grids, path, meta) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, len(args.envs), figsize=(5 * len(args.envs), 3.8), squeeze=False)
    for ax, name in zip(axs[0], args.envs, strict=True):
        for method in METHODS:
            r = results[name][method]
            mean, half = ci95(r["eval_return"][r["best"]])
            x = r["trajectories"]
            ax.plot(
                x, mean, color=COLORS[method], label=f"{method} (γ0={grids[method][r['best']]})"
            )
            ax.fill_between(x, mean - half, mean + half, color=COLORS[method], alpha=0.2)
        ax.set_title(f"{specs[name].env_id} (H={specs[name].horizon})")
        ax.set_xlabel("trajectories sampled")
        ax.set_ylabel("eval return at θ_t")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"mean ± 95% CI over {args.seeds} seeds; {meta['device']}; {meta['date']}", fontsize=8
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main(tyro.cli(Args))
