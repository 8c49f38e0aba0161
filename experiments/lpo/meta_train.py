"""Meta-train LPO's and TA-LPO's drift with OpenES over whole training runs (meta_discovery.md §3, §4).

For every task and method (``lpo``, ``ta-lpo``): :func:`rlsuite.meta.es.evolve_hparam_field`
evolves ``hparams.drift`` of the registry agent (Open_ES, antithetic pairs sharing keys,
centred-rank shaping, Adam); a member's fitness is the final evaluation return (16 deterministic
episodes) of one full inner training run.  The search starts from PPO's drift (``ppo_init``;
network output 0) with a random hidden layer, see ``_common.symmetry_breaking_init``.

    python experiments/lpo/meta_train.py                          # CPU scale: CartPole + SpaceInvaders
    python experiments/lpo/meta_train.py --tasks cartpole         # CartPole only (~5 min per method)
    python experiments/lpo/meta_train.py --scale paper --dry-run  # the sheet's paper scale (GPU-days)
    python experiments/lpo/meta_train.py --smoke                  # tiny, < 60 s, writes to /tmp

Writes ``results/meta_discovery/lpo/objectives/<task>_<method>.{msgpack,json}`` (the ES mean at
the end; the json records the inner config and horizon), ``fitness_<task>.{csv,png}`` (mean and
best fitness per generation) and ``meta_training_<task>.md``.  ES run directories (metrics,
orbax checkpoints; resumable with ``rlsuite meta resume DIR``) go to ``runs/meta_discovery/lpo``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Literal, Optional

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Args:
    """Meta-train LPO / TA-LPO drifts with OpenES."""

    scale: Literal["cpu", "paper"] = "cpu"
    """cpu: CartPole (population 16, 20 generations) and SpaceInvaders with short inner runs;
    paper: SpaceInvaders, population 64, 500 generations, 1e7-step inner runs."""
    tasks: Optional[tuple[Literal["cartpole", "spaceinvaders"], ...]] = None
    """Meta-training tasks (default: every task of the scale)."""
    methods: tuple[Literal["lpo", "ta-lpo"], ...] = C.METHODS
    """Learned objectives to meta-train."""
    generations: Optional[int] = None
    """Override the scale's number of generations."""
    population: Optional[int] = None
    """Override the scale's population."""
    total_steps: Optional[int] = None
    """Override the inner runs' environment steps."""
    out: Optional[str] = None
    """Results folder (default results/meta_discovery/lpo; --smoke: /tmp/rlsuite-smoke/...)."""
    runs: Optional[str] = None
    """Folder of the ES run directories (default runs/meta_discovery/lpo)."""
    dry_run: bool = False
    """Print the configurations and exit."""
    report_only: bool = False
    """Rewrite the tables and plots from finished runs (their metrics.jsonl and objective json)."""
    smoke: bool = False
    """Tiny CartPole run (population 4, 2 generations, 2048-step inner runs); writes to /tmp."""


def _task(args: Args, name: str) -> C.MetaTask:
    t = C.META["smoke" if args.smoke else args.scale][name]
    env = t.env if args.total_steps is None else dataclasses.replace(t.env, total_timesteps=args.total_steps)
    return dataclasses.replace(t, env=env, generations=args.generations or t.generations,
                               population=args.population or t.population)


def es_config(t: C.MetaTask):
    from rlsuite.meta.es import ESConfig

    return ESConfig(strategy="Open_ES", population=t.population, generations=t.generations, lr=t.lr,
                    lr_decay=t.decay, sigma=t.sigma, sigma_decay=t.decay, fitness_shaping="centered_rank",
                    seeds=t.seeds, segments=min(t.segments, t.generations), seed=0)


def run_one(args: Args, name: str, method: str, out: str, runs: str) -> dict:
    from rlsuite.meta.es import evolve_hparam_field

    t = _task(args, name)
    config = C.make_config(method, t.env)
    run_dir = os.path.join(runs, f"{name}_{method}")
    if os.path.isdir(run_dir):  # a fresh run each time (resume explicitly with `rlsuite meta resume`)
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    init = C.symmetry_breaking_init(config, os.path.join(run_dir, "init_drift.msgpack"))
    t0 = time.perf_counter()
    summary = evolve_hparam_field(method, t.env.env_id, "drift", es_config(t), config, init=init,
                                  run_dir=run_dir, env_kwargs=dict(t.env.env_kwargs))
    wall = time.perf_counter() - t0
    path, info_path = C.objective_paths(os.path.join(out, "objectives"), name, method)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(summary["artifact"], path)
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    info = {"task": name, "method": method, "env_id": t.env.env_id, "env_kwargs": dict(t.env.env_kwargs),
            "preset": t.env.preset, "overrides": {k: v for k, v in t.env.overrides},
            "total_timesteps": t.env.total_timesteps, "es": dataclasses.asdict(es_config(t)),
            "wall_s": wall, "run_dir": run_dir, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "init": "random hidden layer (PRNGKey(0)), zero output layer"}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=2)
    return {"task": name, "method": method, "t": t, "records": records, "wall": wall, "path": path}


def load_one(args: Args, name: str, method: str, out: str) -> dict:
    path, info_path = C.objective_paths(os.path.join(out, "objectives"), name, method)
    info = json.load(open(info_path))
    records = [json.loads(line) for line in open(os.path.join(info["run_dir"], "metrics.jsonl"))]
    t = _task(args, name)
    t = dataclasses.replace(t, generations=info["es"]["generations"], population=info["es"]["population"],
                            seeds=info["es"]["seeds"])
    return {"task": name, "method": method, "t": t, "records": records, "wall": info["wall_s"], "path": path}


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def write_task(args: Args, name: str, runs: list[dict], out: str) -> str:
    meta = provenance(seeds=f"ES seed 0; {runs[0]['t'].seeds} inner seed(s) per member", scale=args.scale
                      if not args.smoke else "smoke")
    rows, table = [], []
    for r in runs:
        for rec in r["records"]:
            rows.append([r["method"], rec["generation"], rec["mean_fitness"], rec["best_fitness"],
                         rec["best_so_far"], rec["failed"], round(rec["wall_s"], 1)])
        mean = np.array([rec["mean_fitness"] for rec in r["records"]], float)
        k = max(1, min(3, len(mean) // 4))
        slope = np.polyfit(np.arange(len(mean)), mean, 1)[0] if len(mean) > 1 else float("nan")
        t = r["t"]
        table.append([r["method"], f"{t.population} x {t.seeds}", t.generations, t.env.total_timesteps,
                      _fmt(mean[0]), _fmt(mean[-1]), _fmt(mean[:k].mean()), _fmt(mean[-k:].mean()),
                      f"{slope:+.2f}", _fmt(r["records"][-1]["best_so_far"]), f"{r['wall']:.0f}"])
    write_csv(os.path.join(out, f"fitness_{name}.csv"),
              ["method", "generation", "mean_fitness", "best_fitness", "best_so_far", "failed", "wall_s"], rows, meta)
    t = runs[0]["t"]
    body = (f"Open_ES over the drift network's 1152 (lpo) / 2176 (ta-lpo) weights on `{t.env.env_id}`: "
            f"population {t.population} (antithetic pairs share keys), {t.seeds} inner seed(s) per member, "
            f"{t.generations} generations, lr {t.lr} and sigma {t.sigma} decaying x{t.decay} per generation, "
            f"centred ranks. Fitness = final evaluation return (deterministic policy, {C.make_config(runs[0]['method'], t.env).eval_episodes} episodes) after an inner "
            f"run of {t.env.total_timesteps:,} env steps ({t.env.preset} preset, overrides "
            f"{dict(t.env.overrides) or 'none'}). Generation 1's population is centred on PPO's drift.\n\n"
            + markdown_table(["method", "population x seeds", "generations", "inner steps", "gen 1 mean fitness",
                              "last gen mean fitness", f"first {k} gens mean", f"last {k} gens mean",
                              "trend (per gen)", "best member so far", "wall s"], table)
            + f"\n\nThe population mean is noisy ({t.seeds} inner seed(s) per member; every generation draws new "
              "seeds, shared within antithetic pairs). "
              "The objectives are compared with PPO on fixed seeds in `horizon_generalization.md`; "
              "the ES runs (command, run directory, wall time) are recorded in `objectives/<task>_<method>.json`.\n")
    write_markdown(os.path.join(out, f"meta_training_{name}.md"), f"Meta-training LPO / TA-LPO on {name}", body, meta)
    _plot(name, runs, os.path.join(out, f"fitness_{name}.png"), meta)
    return body


def _plot(name, runs, path, meta) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for ax, r in zip(axs[0], runs):
        g = np.array([rec["generation"] for rec in r["records"]])
        mean = np.array([rec["mean_fitness"] for rec in r["records"]], float)
        best = np.array([rec["best_fitness"] for rec in r["records"]], float)
        ax.plot(g, mean, "o-", label="population mean")
        ax.plot(g, best, "s--", alpha=0.7, label="best member")
        ax.axhline(mean[0], color="gray", lw=0.8, ls=":", label="gen 1 mean (around PPO)")
        ax.set_title(f"{r['method']} on {name}", fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel("fitness: final eval return")
        ax.legend(fontsize=7)
    fig.suptitle(f"{meta['device']}; {meta['date']}", fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args: Args) -> None:
    scale = "smoke" if args.smoke else args.scale
    out = args.out or (C.SMOKE_OUT if args.smoke else C.RESULTS)
    runs = args.runs or (C.SMOKE_RUNS if args.smoke else C.RUNS)
    if args.smoke and not args.report_only:
        import shutil

        shutil.rmtree(runs, ignore_errors=True)  # never resume an old smoke run: the smoke must train
    tasks = args.tasks or tuple(C.META[scale])
    bad = [t for t in tasks if t not in C.META[scale]]
    if bad:
        raise ValueError(f"--tasks {bad} are not meta-training tasks of scale {scale!r}: {sorted(C.META[scale])}")
    if args.dry_run:
        for name in tasks:
            t = _task(args, name)
            print(f"{name}: {es_config(t)}\n  inner: {C.make_config(args.methods[0], t.env)}")
        return
    from rlsuite.train import enable_compilation_cache

    enable_compilation_cache()
    for name in tasks:
        if args.report_only:
            done = [load_one(args, name, m, out) for m in args.methods]
        else:
            done = [run_one(args, name, m, out, runs) for m in args.methods]
        print(write_task(args, name, done, out), flush=True)


if __name__ == "__main__":
    main(tyro.cli(Args))
