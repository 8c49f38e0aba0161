"""PPO vs DPO vs LPO vs TA-LPO across training horizons and environments (meta_discovery.md §9).

For every evaluation environment, horizon multiplier (0.25x, 1x, 4x the meta-training horizon,
i.e. the inner run length of ``meta_train.py``) and method, ``train`` of the registry agent is
``vmap``-ed over seeds (``PRNGKey(s)``, ``s < --seeds``; every method sees the same seeds) and the
final evaluation return (deterministic policy, ``eval_episodes`` episodes per seed) is averaged
with a 95% percentile-bootstrap CI.  LPO / TA-LPO use the objectives saved by ``meta_train.py``:
the CartPole objective on CartPole; the SpaceInvaders objective on SpaceInvaders (its meta-training
task) and on held-out Breakout-MinAtar and Brax inverted_pendulum.  The TA-LPO drift sees
``n/N`` of the run it is in, so a 4x run stretches its schedule over 4x the updates.

    python experiments/lpo/evaluate.py                           # CPU scale, 8 seeds (all cells)
    python experiments/lpo/evaluate.py --methods ppo dpo         # runs that need no objective
    python experiments/lpo/evaluate.py --report-only             # tables from the cached runs
    python experiments/lpo/evaluate.py --smoke                   # tiny, < 60 s, writes to /tmp

Every (env, method, horizon) cell is cached as ``results/meta_discovery/lpo/raw/*.json``
(per-seed returns), so cells can be computed in several invocations (``--force`` recomputes).
Writes ``horizon_generalization.{md,csv,png}`` and ``dpo_vs_ppo.{md,csv}`` (DPO vs PPO at equal
steps, paired over seeds) into ``results/meta_discovery/lpo``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Literal, Optional

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402

ALL_METHODS = ("ppo", "dpo", "lpo", "ta-lpo")
EnvName = Literal["cartpole", "spaceinvaders", "breakout", "inverted_pendulum"]


@dataclasses.dataclass(frozen=True)
class Args:
    """PPO vs DPO vs LPO vs TA-LPO at 0.25x / 1x / 4x the meta-training horizon."""

    scale: Literal["cpu", "paper"] = "cpu"
    """Which scale's environment settings and meta-training horizons to use."""
    envs: Optional[tuple[EnvName, ...]] = None
    """Evaluation environments (default: all four; --smoke: cartpole)."""
    methods: tuple[Literal["ppo", "dpo", "lpo", "ta-lpo"], ...] = ALL_METHODS
    """Methods to run (cells of other methods are read from the cache for the report)."""
    horizons: tuple[float, ...] = (0.25, 1.0, 4.0)
    """Training horizons as multiples of the meta-training horizon."""
    seeds: int = 8
    """Seeds per cell (PRNGKey(s), s < seeds)."""
    objectives: Optional[str] = None
    """Folder of the meta-trained objectives (default OUT/objectives)."""
    out: Optional[str] = None
    """Results folder (default results/meta_discovery/lpo; --smoke: /tmp/rlsuite-smoke/...)."""
    report_only: bool = False
    """Only write the tables from cached cells."""
    force: bool = False
    """Recompute cells that are cached."""
    smoke: bool = False
    """Tiny CartPole runs at 1x (a stand-in objective if none was meta-trained); writes to /tmp."""


def source_task(env: str) -> str:
    """The meta-training task whose objective is evaluated on ``env``."""
    return next(t for t, envs in C.EVAL_ENVS.items() if env in envs)


def steps_for(setup: C.EnvSetup, mult: float) -> int:
    cfg = C.make_config("ppo", setup)
    batch = cfg.num_envs * cfg.num_steps
    return int(max(1, round(mult * setup.total_timesteps / batch)) * batch)


def cell_path(raw: str, env: str, method: str, mult: float) -> str:
    return os.path.join(raw, f"{env}_{method}_{mult:g}x.json")


def run_cell(scale: str, env: str, method: str, mult: float, seeds: int, objectives: str, smoke: bool) -> dict:
    import jax

    from rlsuite import agents
    from rlsuite.core import sweep
    from rlsuite.core.agent import make_train
    from rlsuite.envs import make

    setup = C.ENVS[scale][env]
    steps = steps_for(setup, mult)
    objective, src = None, source_task(env)
    if method in C.METHODS:
        objective, info = C.objective_paths(objectives, src, method)
        if not os.path.isfile(objective):
            if not smoke:
                raise FileNotFoundError(f"no {method} objective {objective!r}: run meta_train.py --tasks {src} first")
            C.symmetry_breaking_init(C.make_config(method, setup), objective)  # smoke stand-in
    config = C.make_config(method, setup, steps, objective)
    entry = agents.get(method)
    e, ep = make(setup.env_id, **dict(setup.env_kwargs))
    agent = entry.make(config, e, ep)
    train = make_train(agent, eval_every=agent.num_updates)
    hp = jax.tree.map(lambda x: x[None], entry.default_hparams(config))
    t0 = time.perf_counter()
    _, m = sweep.run_sweep(train, sweep.seed_keys(range(seeds)), hp)
    ret = np.asarray(m[agent.score])[0, :, -1]
    return {"env": env, "env_id": setup.env_id, "method": method, "horizon": mult, "steps": steps,
            "meta_horizon": setup.total_timesteps, "objective": objective, "source_task": src if objective else None,
            "seeds": seeds, "returns": ret.tolist(), "wall_s": time.perf_counter() - t0}


def _ci(x) -> str:
    m, lo, hi = C.bootstrap_ci(x)
    return f"{m:.1f} [{lo:.1f}, {hi:.1f}]"


def report(args: Args, envs, out: str, raw: str) -> str:
    cells = {}
    for env in envs:
        for mult in args.horizons:
            for method in ALL_METHODS:
                p = cell_path(raw, env, method, mult)
                if os.path.isfile(p):
                    cells[env, mult, method] = json.load(open(p))
    if not cells:
        return "no cached cells"
    seeds = sorted({c["seeds"] for c in cells.values()})
    meta = provenance(seeds=f"{seeds} per cell (PRNGKey(s), s < n; the same seeds for every method)",
                      scale="smoke" if args.smoke else args.scale, ci="95% percentile bootstrap of the mean (10,000 resamples)")
    rows, table = [], []
    for env in envs:
        role = "meta-training task" if env in C.META.get("smoke" if args.smoke else args.scale, {}) else "held-out"
        for mult in args.horizons:
            line = [env, role, f"{mult:g}x"]
            steps = None
            for method in ALL_METHODS:
                c = cells.get((env, mult, method))
                if c is None:
                    line.append("not run")
                    continue
                steps = c["steps"]
                m, lo, hi = C.bootstrap_ci(c["returns"])
                line.append(f"{m:.1f} [{lo:.1f}, {hi:.1f}]")
                rows.append([env, c["env_id"], role, c["source_task"] or "", mult, c["steps"], method, len(c["returns"]),
                             round(m, 3), round(lo, 3), round(hi, 3), round(c["wall_s"], 1),
                             " ".join(f"{x:.2f}" for x in c["returns"])])
            line.insert(3, f"{steps:,}" if steps else "?")
            table.append(line)
    diff_table = []
    for env in envs:
        for mult in args.horizons:
            base = cells.get((env, mult, "ppo"))
            if base is None:
                continue
            line = [env, f"{mult:g}x"]
            for method in ALL_METHODS[1:]:
                c = cells.get((env, mult, method))
                if c is None:
                    line.append("not run")
                    continue
                m, lo, hi = C.bootstrap_ci(np.asarray(c["returns"]) - np.asarray(base["returns"]))
                star = " *" if lo > 0 or hi < 0 else ""
                line.append(f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]{star}")
            diff_table.append(line)
    write_csv(os.path.join(out, "horizon_generalization.csv"),
              ["env", "env_id", "role", "objective_from", "horizon_x", "steps", "method", "seeds", "mean", "ci95_lo",
               "ci95_hi", "wall_s", "returns"], rows, meta)
    body = ("Final evaluation return (mean over seeds, 95% bootstrap CI) after training for 0.25x / 1x / 4x the "
            "meta-training horizon. LPO / TA-LPO: the drifts meta-trained by `meta_train.py` (CartPole's on "
            "CartPole, SpaceInvaders' elsewhere); PPO / DPO: the registry agents with the same config.\n\n"
            + markdown_table(["env", "role", "horizon", "steps", *ALL_METHODS], table)
            + "\n\n## Difference to PPO, paired by seed (95% bootstrap CI; * = CI excludes 0)\n\n"
            + markdown_table(["env", "horizon", *(f"{m} - ppo" for m in ALL_METHODS[1:])], diff_table) + "\n")
    write_markdown(os.path.join(out, "horizon_generalization.md"), "LPO / TA-LPO horizon and task generalization",
                   body, meta)
    _plot(envs, args.horizons, cells, os.path.join(out, "horizon_generalization.png"), meta)
    return body + "\n" + dpo_vs_ppo(args, envs, cells, out, meta)


def dpo_vs_ppo(args, envs, cells, out, meta) -> str:
    rows, table = [], []
    for env in envs:
        for mult in args.horizons:
            a, b = cells.get((env, mult, "dpo")), cells.get((env, mult, "ppo"))
            if a is None or b is None:
                continue
            d = np.asarray(a["returns"]) - np.asarray(b["returns"])  # paired: the same seeds
            m, lo, hi = C.bootstrap_ci(d)
            verdict = "DPO > PPO" if lo > 0 else ("DPO < PPO" if hi < 0 else "no significant difference")
            table.append([env, a["steps"], len(d), _ci(b["returns"]), _ci(a["returns"]), f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]",
                          verdict])
            rows.append([env, a["steps"], len(d), *C.bootstrap_ci(b["returns"]), *C.bootstrap_ci(a["returns"]), m, lo, hi,
                         verdict])
    if not table:
        return ""
    write_csv(os.path.join(out, "dpo_vs_ppo.csv"),
              ["env", "steps", "seeds", "ppo_mean", "ppo_lo", "ppo_hi", "dpo_mean", "dpo_lo", "dpo_hi", "diff_mean",
               "diff_lo", "diff_hi", "verdict"], rows, meta)
    body = ("DPO (closed-form drift, alpha 2, beta 0.6) vs PPO (clip 0.2) with identical configs, steps and seeds; "
            "difference = DPO - PPO paired by seed, 95% bootstrap CI. Claim (§9, CPU scale): DPO >= PPO on CartPole.\n\n"
            + markdown_table(["env", "steps", "seeds", "PPO", "DPO", "DPO - PPO", "verdict"], table) + "\n")
    write_markdown(os.path.join(out, "dpo_vs_ppo.md"), "DPO vs PPO at equal steps", body, meta)
    return body


def _plot(envs, horizons, cells, path, meta) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axs[0], envs):
        for i, method in enumerate(ALL_METHODS):
            pts = [(h, C.bootstrap_ci(cells[env, h, method]["returns"])) for h in horizons if (env, h, method) in cells]
            if not pts:
                continue
            x = np.array([h for h, _ in pts]) * (1 + 0.04 * (i - 1.5))
            m = np.array([c[0] for _, c in pts])
            err = np.array([[c[0] - c[1], c[2] - c[0]] for _, c in pts]).T
            ax.errorbar(x, m, yerr=err, marker="o", capsize=3, label=method)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(horizons))
        ax.set_xticklabels([f"{h:g}x" for h in horizons])
        ax.set_title(env, fontsize=9)
        ax.set_xlabel("training horizon / meta-training horizon")
        ax.set_ylabel("final eval return")
        ax.legend(fontsize=7)
    fig.suptitle(f"mean and 95% bootstrap CI; {meta['seeds']}; {meta['date']}", fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args: Args) -> None:
    if args.smoke:
        args = dataclasses.replace(args, envs=args.envs or ("cartpole",), horizons=(1.0,), seeds=min(args.seeds, 2),
                                   force=True)  # a smoke run that reused cached cells would check nothing
    scale = "smoke" if args.smoke else args.scale
    out = args.out or (C.SMOKE_OUT if args.smoke else C.RESULTS)
    objectives = args.objectives or os.path.join(out, "objectives")
    raw = os.path.join(out, "raw")
    envs = args.envs or tuple(C.ENVS[scale])
    if not args.report_only:
        from rlsuite.train import enable_compilation_cache

        enable_compilation_cache()
        os.makedirs(raw, exist_ok=True)
        for env in envs:
            for mult in args.horizons:
                for method in args.methods:
                    p = cell_path(raw, env, method, mult)
                    if os.path.isfile(p) and not args.force:
                        continue
                    c = run_cell(scale, env, method, mult, args.seeds, objectives, args.smoke)
                    with open(p, "w") as f:
                        json.dump(c, f, indent=1)
                    print(f"{env:18s} {mult:g}x {c['steps']:>9,} steps  {method:6s}  {_ci(c['returns'])}  "
                          f"({c['wall_s']:.0f} s)", flush=True)
    print(report(args, envs, out, raw))


if __name__ == "__main__":
    main(tyro.cli(Args))
