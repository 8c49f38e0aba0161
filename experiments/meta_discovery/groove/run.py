"""LPG vs GROOVE (vs a random rule, vs A2C) on held-out grid worlds and MinAtar; meta-training
throughput; TA-LPG vs LPG over lifetimes (meta_discovery.md §1, §2, §4, §7, §9).

Phases (``--phases``, in this order; later ones read the rules the first wrote):

- ``meta``: meta-train LPG (uniform random levels) and GROOVE (algorithmic-regret curriculum, A2C
  antagonist) for the **same number of meta-updates** on the same level distribution
  (``rlsuite.meta.lpg_meta.run``); the rules go to ``RUNS/<method>/rule.msgpack``.
- ``heldout``: every rule (lpg, groove, the randomly initialised meta-network, and the A2C rule)
  trains fresh tabular agents for ``eval_updates`` updates on the 5 held-out mazes and
  ``random_levels`` unseen levels of the training distribution, ``eval_seeds`` seeds each;
  A2C-normalised return ``(R - R_untrained) / (R_A2C - R_untrained)``, its mean with a bootstrap CI
  over seeds, and the fraction of levels below 75% of A2C (the paper's figure).
- ``minatar``: the same rules on Breakout-MinAtar (gymnax) with an MLP agent (64, 64), Adam.
- ``throughput``: env steps/s inside LPG meta-training vs a bare vmapped random-policy rollout of
  the same levels (``gridworld.bare_rollout_steps_per_second``), measured in one process.
- ``ta``: TA-LPG (ES over whole lifetimes, ``lpg_meta.run_ta_lpg``) vs the LPG rule at several
  lifetimes on the unseen random levels.

    python experiments/meta_discovery/groove/run.py                 # CPU scale (~15-20 min, shared 2-core CPU)
    python experiments/meta_discovery/groove/run.py --smoke         # tiny, writes to /tmp (meta heldout throughput)
    python experiments/meta_discovery/groove/run.py --smoke --phases meta heldout minatar throughput ta  # all (~3.5 min)
    python experiments/meta_discovery/groove/run.py --scale paper   # the sheet's sizes (accelerator-days)

Writes ``results/meta_discovery/groove/``: ``heldout.csv`` (per rule, level, seed), ``minatar.csv``,
``throughput.csv``, ``ta_lpg.csv``, ``meta_training.csv`` (meta-loss curves) and ``summary.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Literal, Optional

import jax
import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from rlsuite.agents import lpg  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402
from rlsuite.meta import lpg_meta as M  # noqa: E402

PHASES = ("meta", "heldout", "minatar", "throughput", "ta")


@dataclasses.dataclass(frozen=True)
class Args:
    scale: Literal["cpu", "paper"] = "cpu"
    """cpu (minutes on a shared 2-core CPU) or paper (the sheet's sizes)."""
    smoke: bool = False
    """Tiny sizes, < 60 s after compilation; writes to /tmp/rlsuite-smoke, never results/."""
    phases: Optional[tuple[str, ...]] = None
    """Which phases to run (meta heldout minatar throughput ta); default all, but with ``--smoke``
    only meta heldout throughput: the CI smoke tier has a minute per script, and the MinAtar and
    TA-LPG phases compile programs of their own (~2.5 min more); name them to smoke-test them too."""
    seed: int = 0
    """Meta-training seed."""


def _out(args: Args) -> tuple[str, str]:
    return (C.SMOKE_OUT, C.SMOKE_RUNS) if args.smoke else (C.RESULTS, C.RUNS)


def _rules(runs: str, agent: lpg.LPGConfig) -> dict:
    rules = {m: lpg.load_rule(os.path.join(runs, m, "rule.msgpack"), agent) for m in ("lpg", "groove")}
    rules["random-init"] = lpg.init_meta(jax.random.PRNGKey(agent.rule_seed), agent)
    return rules


def phase_meta(args: Args, sc: C.Scale, out: str, runs: str, prov: dict) -> dict:
    rows, info = [], {}
    for method in ("lpg", "groove"):
        cfg = dataclasses.replace(sc.meta, curriculum="uniform" if method == "lpg" else "groove", seed=args.seed)
        run_dir = os.path.join(runs, method)
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        s = M.run(sc.agent, cfg, run_dir, progress=True, title=method)
        info[method] = {"wall_s": time.perf_counter() - t0, "first": s["first_meta_loss"], "final": s["final_meta_loss"]}
        for line in open(os.path.join(run_dir, "metrics.jsonl")):
            r = json.loads(line)
            rows.append([method, r["meta_step"], r["env_steps"], r["meta_loss"], r["episode_return"],
                         r.get("score"), r.get("replay_fraction")])
    write_csv(os.path.join(out, "meta_training.csv"),
              ["method", "meta_step", "lpg_env_steps", "meta_loss", "episode_return", "ar_score", "replay_fraction"],
              rows, {**prov, "meta_config": dataclasses.asdict(sc.meta), "agent_config": dataclasses.asdict(sc.agent),
                     "wall": {k: round(v["wall_s"]) for k, v in info.items()}})
    return info


def phase_heldout(sc: C.Scale, out: str, runs: str, prov: dict) -> list:
    names, levels, kinds = C.eval_levels(sc.meta.levels, sc.random_levels)
    env = M.make_env()
    rets = {}
    for name, rule in {**_rules(runs, sc.agent), "a2c": "a2c", "untrained": "none"}.items():
        t0 = time.perf_counter()
        rets[name] = C.train_and_evaluate(sc.agent, env, levels, rule, sc.eval_seeds, sc.eval_updates)
        print(f"[heldout] {name}: mean return {rets[name].mean():.3f} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    rows = [[rule, n, k, s, float(r[i, s])] for rule, r in rets.items() for i, (n, k) in enumerate(zip(names, kinds))
            for s in range(sc.eval_seeds)]
    write_csv(os.path.join(out, "heldout.csv"), ["rule", "level", "kind", "seed", "return"], rows,
              {**prov, "eval_updates": sc.eval_updates, "seeds": list(range(sc.eval_seeds))})
    table = []
    kinds_arr = np.array(kinds)
    for subset in ("all", "maze", "random"):
        sel = np.ones(len(kinds), bool) if subset == "all" else kinds_arr == subset
        for rule in ("lpg", "groove", "random-init"):
            norm = C.normalised(rets[rule][sel], rets["a2c"][sel], rets["untrained"][sel])
            s = C.summarise(norm)
            table.append([subset, rule, s["levels"], s["norm_mean"], s["ci_lo"], s["ci_hi"], s["below_75"],
                          float(rets[rule][sel].mean()), float(rets["a2c"][sel].mean())])
    from rlsuite.core import stats

    per_seed = {r: C.summarise(C.normalised(rets[r], rets["a2c"], rets["untrained"]))["per_seed"]
                for r in ("lpg", "groove", "random-init")}
    p_lpg = stats.prob_improvement(per_seed["lpg"], per_seed["random-init"])
    p_gr = stats.prob_improvement(per_seed["groove"], per_seed["random-init"])
    p_gl = stats.prob_improvement(per_seed["groove"], per_seed["lpg"])
    return [table, {"P(lpg > random-init)": p_lpg, "P(groove > random-init)": p_gr, "P(groove > lpg)": p_gl}]


def phase_minatar(sc: C.Scale, out: str, runs: str, prov: dict, smoke: bool) -> list:
    from rlsuite.envs import registry

    env, params = registry.make("gymnax:Breakout-MinAtar")
    agent = dataclasses.replace(sc.agent, hidden=(64, 64) if not smoke else (16,), optimizer="adam", lr=5e-4,
                                critic_lr=5e-4)
    one_level = jax.tree.map(lambda x: jax.numpy.asarray(x)[None], params)
    rows = []
    for name, rule in {**_rules(runs, agent), "a2c": "a2c", "untrained": "none"}.items():
        t0 = time.perf_counter()
        r = C.train_and_evaluate(agent, env, one_level, rule, sc.minatar_seeds, sc.minatar_updates, episodes=8,
                                 horizon=1000)[0]
        print(f"[minatar] {name}: {r.mean():.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        rows += [[name, s, float(v)] for s, v in enumerate(r)]
    steps = sc.minatar_updates * agent.num_envs * agent.num_steps
    write_csv(os.path.join(out, "minatar.csv"), ["rule", "seed", "return"], rows,
              {**prov, "env": "gymnax:Breakout-MinAtar", "env_steps_per_run": steps, "agent": "MLP (64, 64), Adam 5e-4"})
    return rows


def phase_throughput(sc: C.Scale, out: str, prov: dict) -> dict:
    from rlsuite.envs import gridworld

    meta = M.make_meta(sc.agent, sc.meta)
    state = M.compiled(meta, "init")(jax.random.PRNGKey(0))
    n = 5
    seg = M.compiled(meta, "segment", n)
    state, m = seg(state)
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    state, m = seg(state)
    jax.block_until_ready(m)
    meta_sps = n * meta.steps_per_meta_step / (time.perf_counter() - t0)
    levels = gridworld.sample_levels(jax.random.PRNGKey(1), sc.meta.num_agents, sc.meta.levels)
    bare = gridworld.bare_rollout_steps_per_second(M.make_env(), levels, sc.agent.num_envs, sc.agent.num_steps)
    res = {"meta_training_env_steps_per_s": meta_sps, "bare_rollout_env_steps_per_s": bare, "ratio": meta_sps / bare}
    write_csv(os.path.join(out, "throughput.csv"), list(res), [list(res.values())],
              {**prov, "note": "LPG agents' env steps (K inner updates + the meta-objective rollout) per second of "
                               "a compiled meta-training segment vs a jitted random-policy rollout of the same "
                               f"{sc.meta.num_agents} levels x {sc.agent.num_envs} envs x {sc.agent.num_steps} steps; "
                               "same process; the machine was shared (ratios survive load, absolute numbers do not)"})
    return res


def phase_ta(args: Args, sc: C.Scale, out: str, runs: str, prov: dict) -> list:
    from rlsuite.meta.es import ESConfig

    agent = dataclasses.replace(sc.agent, temporal=True)
    life = max(sc.ta_lifetimes)
    ta = M.TAConfig(levels=sc.meta.levels, lifetime=life, min_lifetime=min(sc.ta_lifetimes),
                    eval_envs=sc.meta.eval_envs)
    es_cfg = ESConfig(**{**dict(lr=1e-2, sigma=0.1, fitness_shaping="pairwise"), **sc.ta_es, "seed": args.seed})
    run_dir = os.path.join(runs, "ta-lpg")
    shutil.rmtree(run_dir, ignore_errors=True)
    s = M.run_ta_lpg(agent, ta, es_cfg, run_dir, progress=True)
    ta_rule = lpg.load_rule(s["rule"], agent)
    lpg_rule = lpg.load_rule(os.path.join(runs, "lpg", "rule.msgpack"), sc.agent)
    _, levels, kinds = C.eval_levels(sc.meta.levels, sc.random_levels)
    rand = np.array(kinds) == "random"
    levels = jax.tree.map(lambda x: x[rand], levels)
    env = M.make_env()
    rows = []
    for n in sc.ta_lifetimes:
        r = {}
        for name, cfg, rule in (("ta-lpg", agent, ta_rule), ("lpg", sc.agent, lpg_rule), ("a2c", sc.agent, "a2c"),
                                ("untrained", sc.agent, "none")):
            r[name] = C.train_and_evaluate(cfg, env, levels, rule, sc.eval_seeds, n)
        for name in ("ta-lpg", "lpg"):
            su = C.summarise(C.normalised(r[name], r["a2c"], r["untrained"]))
            rows.append([n, name, su["norm_mean"], su["ci_lo"], su["ci_hi"], float(r[name].mean()),
                         float(r["a2c"].mean())])
            print(f"[ta] lifetime {n} {name}: normalised {su['norm_mean']:.3f}", file=sys.stderr, flush=True)
    write_csv(os.path.join(out, "ta_lpg.csv"),
              ["lifetime", "rule", "a2c_norm_mean", "ci_lo", "ci_hi", "mean_return", "a2c_mean_return"], rows,
              {**prov, "es": dataclasses.asdict(es_cfg), "ta": dataclasses.asdict(ta),
               "es_final_mean_fitness": s["final_mean_fitness"]})
    return rows


def main(args: Args) -> None:
    if args.phases is None:
        args = dataclasses.replace(args, phases=("meta", "heldout", "throughput") if args.smoke else PHASES)
    bad = sorted(set(args.phases) - set(PHASES))
    if bad:
        raise ValueError(f"--phases {bad} unknown; choose from {PHASES}")
    sc = C.SCALES["smoke" if args.smoke else args.scale]
    out, runs = _out(args)
    os.makedirs(out, exist_ok=True)
    prov = provenance(seeds=[args.seed], scale="smoke" if args.smoke else args.scale,
                      machine_note="shared 2-core CPU (other jobs running; load average "
                                   f"{os.getloadavg()[0]:.0f} at the start): wall times are inflated many-fold")
    t0 = time.perf_counter()
    parts = {}
    if "meta" in args.phases:
        parts["meta"] = phase_meta(args, sc, out, runs, prov)
    if "heldout" in args.phases:
        parts["heldout"] = phase_heldout(sc, out, runs, prov)
    if "minatar" in args.phases:
        parts["minatar"] = phase_minatar(sc, out, runs, prov, args.smoke)
    if "throughput" in args.phases:
        parts["throughput"] = phase_throughput(sc, out, prov)
    if "ta" in args.phases:
        parts["ta"] = phase_ta(args, sc, out, runs, prov)
    body = []
    if "meta" in parts:
        body.append("## Meta-training (equal meta-updates)\n\n" + markdown_table(
            ["method", "first meta-loss", "final meta-loss", "wall s"],
            [[k, v["first"], v["final"], round(v["wall_s"])] for k, v in parts["meta"].items()]))
    if "heldout" in parts:
        table, probs = parts["heldout"]
        body.append(f"## Held-out grid worlds ({sc.eval_updates} updates per agent, {sc.eval_seeds} seeds)\n\n"
                    + markdown_table(["levels", "rule", "n levels", "A2C-normalised", "CI lo", "CI hi",
                                      "frac below 75% A2C", "mean return", "A2C mean return"], table)
                    + "\n\n" + "\n".join(f"- {k}: {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" for k, v in probs.items()))
    if "minatar" in parts:
        rows = parts["minatar"]
        agg = {}
        for name, _, v in rows:
            agg.setdefault(name, []).append(v)
        body.append(f"## Breakout-MinAtar ({sc.minatar_updates} updates)\n\n" + markdown_table(
            ["rule", "mean return", "std"], [[k, float(np.mean(v)), float(np.std(v))] for k, v in agg.items()]))
    if "throughput" in parts:
        body.append("## Meta-training throughput\n\n" + markdown_table(
            list(parts["throughput"]), [list(parts["throughput"].values())]))
    if "ta" in parts:
        body.append("## TA-LPG vs LPG over lifetimes (unseen random levels)\n\n" + markdown_table(
            ["lifetime", "rule", "A2C-normalised", "CI lo", "CI hi", "mean return", "A2C mean return"], parts["ta"]))
    prov["wall_seconds"] = round(time.perf_counter() - t0)
    write_markdown(os.path.join(out, "summary.md" if set(args.phases) == set(PHASES) else
                                f"summary_{'_'.join(args.phases)}.md"),
                   "LPG vs GROOVE vs TA-LPG (CPU scale)" if not args.smoke else "smoke", "\n\n".join(body), prov)
    print("\n\n".join(body))


if __name__ == "__main__":
    main(tyro.cli(Args))
