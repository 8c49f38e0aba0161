"""GA vs random search (T = 0) vs OpenES vs PPO at equal env-frame budgets on one env (>= 3 seeds).

Frames are the env steps each method actually took (``mask`` of the engine's episode mode):
training episodes, plus for the GA and RS the elite candidates' re-evaluation episodes (sheet §1.4).
Test / evaluation episodes are not counted for any method.  Each evolutionary method runs
generations until it has used ``--budget`` frames (the last generation may overshoot; the
table gives the frames used).

- **GA** (:mod:`rlsuite.meta.deep_ga`): N, T, sigma of the env preset; elite = best of the top 5
  offspring (+ the previous elite) re-evaluated on 5 episodes (the paper: 10 x 30; scaled down).
- **RS**: the same loop with T = 0 (every offspring a fresh initialisation; the validated elite is
  carried).
- **OpenES**: evosax Open_ES through :mod:`rlsuite.meta.es` (:func:`deep_ga.es_baseline`: the same
  flat MLP, one episode per member, antithetic pairs, centred ranks, Adam), population N, started
  from the GA's generation-0 initialisation of seed 0 of the run's base key.
- **PPO**: ``rlsuite.train.run_training("ppo", ...)`` with PureJaxRL's preset for the env family
  (``PPOConfig.preset``: cartpole / minatar / brax) and ``total_timesteps = budget``; the seeds
  are vmapped in one run.

Score of a seed: the GA/RS elite or the OpenES centre on ``test_episodes`` (200) fresh episodes;
PPO: its runner's deterministic evaluation (argmax / mean action) on ``ppo_eval_episodes`` (50)
episodes after the last update.  Learning curves (return vs frames): GA/RS the elite's validated
score, OpenES the population's mean one-episode return (its centre is not evaluated during
training), PPO the runner's evaluation after each of 5 segments.

    python experiments/deep_ga/compare.py --env gymnax:CartPole-v1            # ~5 min on 2 cores
    python experiments/deep_ga/compare.py --env gymnax:SpaceInvaders-MinAtar  # ~15 min
    python experiments/deep_ga/compare.py --env brax:inverted_double_pendulum # ~15 min
    python experiments/deep_ga/compare.py --smoke                             # < 60 s, /tmp

Writes ``results/deep_ga/compare_<env>.{csv,md,png}`` (``<env>``: the name after the namespace,
lower case, ``-`` -> ``_``).  Every finished (method, seed) run is cached as
``runs/deep_ga/compare_<env>-<budget>/<method>_<seed>.json`` (score, frames, curve): a stopped
comparison continues where it stopped, several processes may share the work (``--methods``), and
the report is rewritten from all cached runs after each run (marked PARTIAL until all are there).
Delete that folder after changing any other option.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir  # noqa: E402

METHODS = ("GA", "RS", "OpenES", "PPO")

PRESETS = {
    # budget: frames per method and seed; env_kwargs go to every method's env (PPO's too)
    "gymnax:CartPole-v1": dict(budget=500_000, population=64, truncation=10, sigma=0.05, hidden=(32, 32),
                               env_kwargs={}, ppo="cartpole", es_sigma=0.05, es_lr=0.03),
    "gymnax:SpaceInvaders-MinAtar": dict(budget=500_000, population=64, truncation=10, sigma=0.02,
                                         hidden=(32,), env_kwargs={"max_steps_in_episode": 500}, ppo="minatar",
                                         es_sigma=0.02, es_lr=0.03),
    # PPO's brax preset runs 2048 envs; 256 keep ~200 updates at this budget (and fit the shared CPU)
    "brax:inverted_double_pendulum": dict(budget=500_000, population=64, truncation=10, sigma=0.05,
                                          hidden=(32, 32), env_kwargs={}, ppo="brax", es_sigma=0.05, es_lr=0.03,
                                          ppo_overrides=dict(num_envs=256, num_minibatches=8)),
}


@dataclasses.dataclass
class Args:
    """Options (``--help``); ``--smoke`` runs a tiny version that writes to /tmp."""

    env: str = "gymnax:CartPole-v1"
    """One of the presets: gymnax:CartPole-v1, gymnax:SpaceInvaders-MinAtar, brax:inverted_double_pendulum."""
    seeds: int = 3
    """Seeds per method (>= 3 for the results)."""
    budget: int | None = None
    """Env frames per method and seed (default: the env preset's)."""
    methods: tuple[str, ...] = METHODS
    """Subset of GA, RS, OpenES, PPO."""
    test_episodes: int = 200
    """Episodes of each GA / RS / OpenES seed's final test."""
    ppo_eval_episodes: int = 50
    """PPO's evaluation episodes after each of its 5 segments (the runner evaluates every segment, so
    200 would cost several times its training frames); the last one is its score."""
    report_only: bool = False
    """Only rewrite the report from the cached runs (e.g. after runs shared between processes)."""
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def slug(env_id: str) -> str:
    return env_id.split(":", 1)[-1].lower().replace("-", "_")


def evolve(step, state, budget: int):
    """Run the jitted ``step(state) -> (state, frames, curve score)`` until ``budget`` frames are used."""
    frames, curve = 0, []
    while frames < budget:
        state, f, score = step(state)
        frames += int(f)
        curve.append((frames, float(score)))
    return state, curve


def run_evolution(method: str, env_id: str, p: dict, seed: int, budget: int, test_eps: int, smoke: bool):
    """One seed of GA / RS / OpenES: ``(generations, frames, test return, curve [(frames, score)])``."""
    import jax

    from rlsuite.meta import deep_ga as D
    from rlsuite.meta.es import ESConfig

    N = p["population"]
    cfg = D.GAConfig(population=N, truncation=0 if method == "RS" else p["truncation"], sigma=p["sigma"],
                     generations=budget // N + 1, elite_candidates=5, elite_episodes=5, test_episodes=test_eps,
                     hidden=p["hidden"], horizon=20 if smoke else None, seed=seed)
    ga = D.build(env_id, cfg, p["env_kwargs"])
    if method == "OpenES":
        es, es_step = D.es_baseline(ga, ESConfig(population=N, generations=cfg.generations, sigma=p["es_sigma"],
                                                 lr=p["es_lr"], seed=seed))

        def step(s):
            s, m = es_step(s)
            return s, m["frames"], m["fitness"].mean()

        state = jax.jit(es.init)(jax.random.PRNGKey(seed), jax.jit(ga.theta0)(jax.numpy.int32(0)))
        state, curve = evolve(jax.jit(step), state, budget)
        theta = es.mean(state)
    else:
        def step(s):
            s, m = ga.step(s)
            return s, m["frames"], m["elite_fitness"]

        state, curve = evolve(jax.jit(step), jax.jit(ga.init)(), budget)
        theta = D.elite_params(state)
    score = D.test_elite(ga, type("S", (), {"params": theta[None]}), test_eps)["mean_return"]
    return len(curve), curve[-1][0], float(score), curve


def run_ppo(env_id: str, p: dict, seeds: int, budget: int, eval_eps: int, smoke: bool):
    """PPO, all seeds in one vmapped run: ``(frames, [test return per seed], [curve per seed])``."""
    from rlsuite import agents
    from rlsuite.agents.ppo import PPOConfig
    from rlsuite.core.logging import MetricsWriter
    from rlsuite.train import run_training

    if smoke:
        cfg = dataclasses.replace(agents.get("ppo").smoke_config(), total_timesteps=budget, eval_episodes=eval_eps)
    else:
        cfg = PPOConfig.preset(p["ppo"], total_timesteps=budget, eval_episodes=eval_eps, **p.get("ppo_overrides", {}))
    run_dir = os.path.join("/tmp/rlsuite-smoke/deep_ga" if smoke else "runs/deep_ga", f"ppo-{slug(env_id)}-{os.getpid()}")
    s = run_training("ppo", env_id, cfg, seeds=list(range(seeds)), run_dir=run_dir, segments=2 if smoke else 5,
                     env_kwargs=p["env_kwargs"], progress=False)
    counter = s["counter"]
    recs = MetricsWriter(os.path.join(run_dir, "metrics.jsonl")).read()
    curves = [[(int(r[counter]), float(r["eval_return"][i])) for r in recs if r[counter] > 0] for i in range(seeds)]
    return int(s[counter]), [float(x) for x in s["final"]["eval_return"]], curves


def plot(path: str, title: str, curves: dict, budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 101)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, cs in curves.items():
        ys = np.array([np.interp(grid, [f for f, _ in c], [y for _, y in c], left=np.nan, right=c[-1][1]) for c in cs])
        ok = ~np.all(np.isnan(ys), 0)
        line, = ax.plot(grid[ok], np.nanmean(ys[:, ok], 0), label=f"{method} (mean of {len(cs)} seeds)")
        ax.fill_between(grid[ok], np.nanmin(ys[:, ok], 0), np.nanmax(ys[:, ok], 0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env frames (training + elite re-evaluation)")
    ax.set_ylabel("return")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(a: Args, p: dict, budget: int, seeds: int, test_eps: int, ppo_eps: int, rows: list, curves: dict,
           done: bool) -> str:
    """Write ``compare_<env>.{csv,md,png}`` from the rows so far (called after every run: a stopped
    comparison leaves its finished runs; ``done=False`` marks the files partial)."""
    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.core.stats import mean_ci

    header = ["method", "seed", "generations", "frames", f"test return ({test_eps} episodes; PPO {ppo_eps})", "wall s"]
    argv = [x for x in sys.argv[1:] if x != "--report-only"]
    if "--methods" in argv:  # a merged report: the command that reproduces all of it
        i = argv.index("--methods")
        j = next((k for k in range(i + 1, len(argv)) if argv[k].startswith("--")), len(argv))
        argv = argv[:i] + argv[j:]
    meta = provenance(seeds=list(range(seeds)), command=" ".join(["python", sys.argv[0], *argv]), env=a.env, budget_frames=budget,
                      env_kwargs=p["env_kwargs"], population=p["population"], truncation=p["truncation"],
                      sigma=p["sigma"], hidden=p["hidden"], openes=f"sigma {p['es_sigma']}, Adam lr {p['es_lr']}",
                      ppo=f"preset {'smoke' if a.smoke else p['ppo']} {p.get('ppo_overrides', {})}", smoke=a.smoke,
                      machine="2 CPU cores shared with other jobs (wall times inflated)",
                      status="complete" if done else "PARTIAL (still running or stopped)")
    out, name = out_dir(a.smoke), f"compare_{slug(a.env)}"
    write_csv(os.path.join(out, f"{name}.csv"), header, rows, meta)
    agg = []
    for m in (m for m in METHODS if any(r[0] == m for r in rows)):
        sc = [r[4] for r in rows if r[0] == m]
        mean, lo, hi = mean_ci(sc)
        agg.append([m, mean, f"[{lo:.4g}, {hi:.4g}]", " / ".join(f"{x:.4g}" for x in sc),
                    float(np.mean([r[3] for r in rows if r[0] == m]))])
    title = f"GA vs RS vs OpenES vs PPO on {a.env} ({budget:,} frames per seed)"
    plot(os.path.join(out, f"{name}.png"), title, curves, budget)
    body = (markdown_table(["method", "mean test return", "95% CI (bootstrap over seeds)", "per seed",
                            "mean frames"], agg)
            + f"\n\nLearning curves: `{name}.png` (GA/RS: validated elite; OpenES: population mean; PPO: its "
            "evaluation after each segment; line = mean over seeds, band = min-max).\n\nPer seed:\n\n"
            + markdown_table(header, rows)
            + "\n\nPPO: seeds vmapped in one run (wall s = the run's time / seeds); its score is the runner's "
            f"deterministic evaluation on {ppo_eps} episodes after the last update.\n")
    path = os.path.join(out, f"{name}.md")
    write_markdown(path, title, body, meta)
    return path


def cache_dir(a: Args, budget: int) -> str:
    root = "/tmp/rlsuite-smoke/deep_ga" if a.smoke else "runs/deep_ga"
    return os.path.join(root, f"compare_{slug(a.env)}-{budget}")


def load_runs(d: str, seeds: int) -> tuple[list, dict]:
    """Rows and curves of every finished (method, seed) run cached in ``d``, in table order."""
    rows, curves = [], {}
    for m in METHODS:
        for seed in range(seeds):
            path = os.path.join(d, f"{m}_{seed}.json")
            if os.path.exists(path):
                with open(path) as f:
                    r = json.load(f)
                rows.append([m, seed, r["generations"], r["frames"], r["score"], r["wall_s"]])
                curves.setdefault(m, []).append([tuple(x) for x in r["curve"]])
    return rows, curves


def save_run(d: str, method: str, seed: int, generations, frames: int, score: float, wall: float, curve) -> None:
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f"{method}_{seed}.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"generations": generations, "frames": frames, "score": score, "wall_s": round(wall, 1),
                   "curve": curve}, f)
    os.replace(tmp, os.path.join(d, f"{method}_{seed}.json"))


def main(a: Args) -> None:
    if a.env not in PRESETS:
        raise ValueError(f"--env {a.env!r} has no preset; choose one of {sorted(PRESETS)}")
    bad = [m for m in a.methods if m not in METHODS]
    if bad or not a.methods:
        raise ValueError(f"--methods {a.methods!r}: choose from {METHODS}")
    p = dict(PRESETS[a.env])
    budget = a.budget or p["budget"]
    seeds, test_eps, ppo_eps = a.seeds, a.test_episodes, a.ppo_eval_episodes
    if a.smoke:
        p.update(population=8, truncation=3, hidden=(8,))
        seeds, test_eps, ppo_eps, budget = 1, 4, 4, 2_000
    d = cache_dir(a, budget)
    if a.smoke:
        shutil.rmtree(d, ignore_errors=True)

    def finish(done: bool) -> str:
        rows, curves = load_runs(d, seeds)
        complete = done and len(rows) == len(METHODS) * seeds
        return report(a, p, budget, seeds, test_eps, ppo_eps, rows, curves, done=complete)

    for method in (m for m in a.methods if m != "PPO" and not a.report_only):
        for seed in range(seeds):
            if os.path.exists(os.path.join(d, f"{method}_{seed}.json")):
                continue
            t0 = time.perf_counter()
            gens, frames, score, curve = run_evolution(method, a.env, p, seed, budget, test_eps, a.smoke)
            wall = time.perf_counter() - t0
            save_run(d, method, seed, gens, frames, score, wall, curve)
            print(f"{method} seed {seed}: {gens} generations, {frames:,} frames, test return {score:.4g} ({wall:.1f} s)",
                  file=sys.stderr, flush=True)
            finish(False)
    if "PPO" in a.methods and not a.report_only and not all(os.path.exists(os.path.join(d, f"PPO_{s}.json")) for s in range(seeds)):
        t0 = time.perf_counter()
        frames, scores, ppo_curves = run_ppo(a.env, p, seeds, budget, ppo_eps, a.smoke)
        wall = time.perf_counter() - t0
        for seed, (score, curve) in enumerate(zip(scores, ppo_curves)):
            save_run(d, "PPO", seed, "-", frames, score, wall / seeds, curve)
        print(f"PPO: {frames:,} frames, test returns {scores} ({wall:.1f} s)", file=sys.stderr, flush=True)
    print(open(finish(True)).read())


if __name__ == "__main__":
    main(tyro.cli(Args))
