"""GBT actor-critic (GBRL: Fuhrer, Tessler, Dalal 2024) vs network PPO: classic control, MinAtar, a grid task.

Every agent is its registry entry (``gbrl-ppo``, ``gbrl-a2c``, ``gbrl-awr``, ``ppo``) through the
protocol: ``agents.get(name).make`` -> ``rlsuite.core.agent.make_train(agent, eval_every)`` ->
``jax.jit(jax.vmap(train))`` over seeds ``0..S-1`` (``rlsuite.core.sweep.seed_keys``), so each
(agent, env) pair is one compiled program.  Evaluation: the protocol's deterministic
``eval_return`` (``eval_episodes`` fresh episodes per seed) every ``eval_every`` updates.

    python experiments/gbrl/run.py                         # CartPole, 5 seeds, 100k steps (CPU, ~10 min)
    python experiments/gbrl/run.py --envs cartpole acrobot --steps 200000
    python experiments/gbrl/run.py --envs objgrid objgrid-spurious --agents gbrl-ppo ppo --steps 150000 \
        --out results/gbrl/objgrid                         # the categorical task + its spurious variant
    python experiments/gbrl/run.py --smoke                 # tiny gbrl-ppo vs ppo on objgrid-spurious (< 1 min)

Writes ``{out}/{curves.csv, summary.md, curves.png}`` (default ``results/gbrl``; ``--smoke``:
``/tmp/rlsuite-smoke/gbrl``) and, for envs with a shifted test distribution (``objgrid-spurious``:
the spurious hint is noise at test), ``test_eval.csv``: the final greedy policies of every seed on
the train and the test env parameters, 64 episodes each.  ``experiments/gbrl/claims.py`` turns all
result folders into the table against the paper's claims.

Settings.  GBT-PPO / GBT-AWR: the sheet's CartPole PPO-GBRL settings (8 envs x 128 steps, batch
64, 1 epoch, policy / value lr 0.029 / 0.015, gamma 0.98, lambda 0.8, shared tree, depth 4, 250
quantile bins, cosine score) = ``GBRLConfig`` defaults.  GBT-A2C: the same but 8 x 16 rollouts (one
tree per rollout: 8 x 128 would give only ~100 trees in 100k steps).  NN-PPO: ``PPOConfig``
defaults (PureJaxRL CartPole), with observation normalisation on the grid task (the sheet's NN
baseline, SB3 PPO, normalises).  Per-domain GBT rates (``GBT_LRS``): Acrobot 0.160 / 0.034; the
grid task the sheet's MiniGrid rates 0.1706 / 0.01003 with gamma 0.99, lambda 0.95 — all with the
CartPole batch layout, not the sheet's 16 x 256-512 rollouts and 20 epochs (CPU budget).  The grid
task's id features (``env.categorical_features``) are categorical (equality splits) for the GBT
agents.  ``--gbt-overrides`` (JSON) changes GBT config fields of one run, ``--tag`` labels it.
MountainCar-v0 and MinAtar Breakout use the CartPole settings unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

import jax
import numpy as np
import tyro

from rlsuite import agents
from rlsuite.core import sweep
from rlsuite.core.agent import make_train
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.core.rollout import rollout_episodes
from rlsuite.envs import make

ENVS = {
    "cartpole": "gymnax:CartPole-v1",
    "acrobot": "gymnax:Acrobot-v1",
    "mountaincar": "gymnax:MountainCar-v0",
    "breakout": "gymnax:Breakout-MinAtar",
    "objgrid": "objgrid:goto",
    "objgrid-spurious": "objgrid:goto-spurious",
}
AGENTS = ("gbrl-ppo", "gbrl-a2c", "gbrl-awr", "ppo")
TEST_PARAMS = {"objgrid-spurious": {"spurious_corr": 0.0}}
"""Envs evaluated again after training on a shifted test distribution (env-parameter overrides)."""
TEST_EPISODES = 64
GBT_LRS = {"acrobot": dict(policy_lr=0.160, value_lr=0.034),
           "objgrid": dict(policy_lr=0.1706, value_lr=0.01003, gamma=0.99, gae_lambda=0.95),
           "objgrid-spurious": dict(policy_lr=0.1706, value_lr=0.01003, gamma=0.99, gae_lambda=0.95)}
"""The sheet's per-domain GBRL rates (Acrobot; MiniGrid for the grid task), CartPole batch layout."""


def agent_overrides(name: str, env: str, steps: int, smoke: bool, categorical: tuple = ()) -> dict:
    kw: dict = dict(total_timesteps=steps, eval_episodes=8)
    if name == "gbrl-a2c":
        kw |= dict(num_steps=16)
    if name.startswith("gbrl"):
        kw |= GBT_LRS.get(env, {}) | (dict(categorical_features=tuple(categorical)) if categorical else {})
    elif env.startswith("objgrid"):
        kw |= dict(normalize_obs=True)  # the sheet's NN baseline (SB3 PPO) normalises observations
    if smoke:
        kw |= dict(num_envs=4, num_steps=32, eval_episodes=2)
        if name.startswith("gbrl"):
            kw |= dict(num_minibatches=2, n_bins=16, max_depth=3)
        else:
            kw |= dict(hidden=(16,))
    return kw


def eval_every_of(num_updates: int, n_evals: int) -> int:
    """The largest divisor of ``num_updates`` not above ``num_updates // n_evals`` (more evaluations
    than asked when ``num_updates`` has no divisor near it: pick ``--steps`` a multiple of
    ``evals * 1024`` to get exactly ``evals``)."""
    e = max(1, num_updates // n_evals)
    while num_updates % e:
        e -= 1
    if num_updates // e > 2 * n_evals:
        print(f"note: {num_updates // e} evaluations instead of {n_evals} ({num_updates} updates); "
              f"pass --steps as a multiple of {n_evals} * the rollout size for exactly {n_evals}", flush=True)
    return e


def run_one(name: str, env_key: str, steps: int, seeds: int, n_evals: int, smoke: bool, gbt_overrides: dict):
    entry = agents.get(name)
    env, env_params = make(ENVS[env_key])
    cat = getattr(env, "categorical_features", ())
    kw = agent_overrides(name, env_key, steps, smoke, cat) | (gbt_overrides if name.startswith("gbrl") else {})
    config = entry.config(**kw)
    agent = entry.make(config, env, env_params)
    every = eval_every_of(agent.num_updates, n_evals)
    train = jax.jit(jax.vmap(make_train(agent, eval_every=every), in_axes=(0, None)))
    keys = sweep.seed_keys(range(seeds))
    hp = entry.default_hparams(config)
    t0 = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, m = compiled(keys, hp)
    ev = np.asarray(jax.block_until_ready(m["eval_return"]))  # [S, E]
    run_s = time.perf_counter() - t0
    x = np.asarray(m["eval_update"])[0] * agent.steps_per_update
    out = dict(x=x, ev=ev, compile_s=compile_s, run_s=run_s, config=config)
    if env_key in TEST_PARAMS:  # the same final policies on the train and the test distribution
        out["final_train"] = final_eval(entry, config, env, env_params, state, smoke)
        out["final_test"] = final_eval(entry, config, env, env_params.replace(**TEST_PARAMS[env_key]), state, smoke)
    return out


def final_eval(entry, config, env, env_params, state, smoke: bool) -> np.ndarray:
    """Mean greedy return per seed ``[S]`` over ``TEST_EPISODES`` fresh episodes on ``env_params``."""
    mod = entry.load()
    policy = mod.make_policy(config, env, env_params, deterministic=True)
    horizon = int(env_params.max_steps_in_episode)
    n = 4 if smoke else TEST_EPISODES

    def one(st, key):
        return rollout_episodes(env, env_params, policy, mod.policy_params(st), key, n, horizon).episode_return.mean()

    return np.asarray(jax.jit(jax.vmap(one, in_axes=(0, None)))(state, jax.random.PRNGKey(12345)))


def fmt(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"


def ci95(v: np.ndarray) -> float:
    from scipy import stats

    if len(v) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


@dataclasses.dataclass
class Args:
    """Options (``--help``); ``--smoke`` runs a tiny version that writes to /tmp."""

    envs: list[str] = dataclasses.field(default_factory=lambda: ["cartpole"])
    """Environments (keys of ENVS)."""
    agents: list[str] = dataclasses.field(default_factory=lambda: list(AGENTS))
    """Agents to compare."""
    steps: int = 100_000
    """Environment steps per run."""
    seeds: int = 5
    """Seeds (vmapped)."""
    evals: int = 10
    """Evaluations per run (besides the initial one)."""
    out: Optional[str] = None
    """Output folder (default results/gbrl; --smoke: /tmp/rlsuite-smoke/gbrl)."""
    gbt_overrides: str = ""
    """JSON dict of GBRLConfig overrides for the GBT agents (e.g. '{"policy_lr": 0.029}'), applied last."""
    tag: str = ""
    """Suffix of the env label in the outputs ("objgrid[tag]"), to keep variant runs apart."""
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    if a.smoke:
        a.steps, a.seeds, a.evals = 1024, 2, 2
        a.envs = ["objgrid-spurious"]  # categorical splits + the train/test evaluation
        a.agents = ["gbrl-ppo", "ppo"]  # the A2C / AWR variants compile in the registry tests
    for what, got, known in (("--envs", a.envs, sorted(ENVS)), ("--agents", a.agents, list(AGENTS))):
        bad = [x for x in got if x not in known]
        if bad:
            raise SystemExit(f"{what}: unknown {bad}; choose from {known}")
    out = a.out or ("/tmp/rlsuite-smoke/gbrl" if a.smoke else "results/gbrl")
    os.makedirs(out, exist_ok=True)

    gbt_over = json.loads(a.gbt_overrides) if a.gbt_overrides else {}
    if not isinstance(gbt_over, dict):
        raise SystemExit(f"--gbt-overrides must be a JSON object, got {a.gbt_overrides!r}")
    results = {}
    for env_key in a.envs:
        for name in a.agents:
            r = run_one(name, env_key, a.steps, a.seeds, a.evals, a.smoke, gbt_over)
            label = f"{env_key}[{a.tag}]" if a.tag else env_key
            results[(label, name)] = r
            fin = r["ev"][:, -1]
            extra = (f"  train {r['final_train'].mean():.3f} test {r['final_test'].mean():.3f}"
                     if "final_test" in r else "")
            print(f"{env_key:9s} {name:9s} final eval {fmt(fin.mean()):>7s} +- {fmt(ci95(fin)):>5s}  "
                  f"run {r['run_s']:6.1f} s  compile {r['compile_s']:5.1f} s{extra}", flush=True)

    meta = provenance(seeds=list(range(a.seeds)), steps=a.steps, evaluation="deterministic eval_return, "
                      "8 episodes per seed (2 in --smoke)", **({"gbt_overrides": a.gbt_overrides} if gbt_over else {}))
    rows = []
    for (env_key, name), r in results.items():
        for i, xi in enumerate(r["x"]):
            v = r["ev"][:, i]
            rows.append([env_key, name, int(xi), float(v.mean()), ci95(v), *[float(s) for s in v]])
    write_csv(os.path.join(out, "curves.csv"), ["env", "agent", "env_steps", "mean", "ci95",
                                                *[f"seed{s}" for s in range(a.seeds)]], rows, meta)
    table = []
    for (env_key, name), r in results.items():
        fin = r["ev"][:, -1]
        table.append([env_key, name, f"{fmt(fin.mean())} ± {fmt(ci95(fin))}", fmt(r['ev'].mean(0).max()),
                      int(r["x"][-1]), f"{r['run_s']:.1f}", f"{r['compile_s']:.1f}"])
    body = markdown_table(["env", "agent", "final eval (mean ± 95% CI)", "best mean eval", "env steps",
                           f"run s ({a.seeds} seeds vmapped)", "compile s"], table)
    body += ("\n\nGBT agents: GBRLConfig defaults (the sheet's CartPole PPO-GBRL settings; gbrl-a2c with 8 x 16 "
             "rollouts; the sheet's Acrobot / MiniGrid learning rates on those envs, categorical equality splits "
             "on the grid task's id features); NN-PPO: PPOConfig defaults (observation normalisation on the grid "
             "task). See experiments/gbrl/README.md. The machine was shared with other jobs: wall times are inflated.")
    if gbt_over:
        body += f" GBT overrides of this run: `{a.gbt_overrides}`."
    shifted = [(k, r) for k, r in results.items() if "final_test" in r]
    if shifted:
        trows = []
        for (env_key, name), r in shifted:
            tr, te = r["final_train"], r["final_test"]
            trows.append([env_key, name, f"{tr.mean():.3f} ± {ci95(tr):.3f}", f"{te.mean():.3f} ± {ci95(te):.3f}",
                          f"{(te - tr).mean():+.3f} ± {ci95(te - tr):.3f}"])
        write_csv(os.path.join(out, "test_eval.csv"), ["env", "agent", "split", *[f"seed{s}" for s in range(a.seeds)]],
                  [[k[0], k[1], split, *map(float, r[f"final_{split}"])] for k, r in shifted for split in ("train", "test")],
                  meta | {"test_params": json.dumps(TEST_PARAMS)})
        body += ("\n\n## Final policies on the train vs the test distribution\n\n"
                 f"Greedy return, {TEST_EPISODES} fresh episodes per seed, mean ± 95% CI over seeds; test = env "
                 f"parameters {json.dumps(TEST_PARAMS)} (the spurious hint is noise at test).\n\n"
                 + markdown_table(["env", "agent", "train distribution", "test distribution", "test - train"], trows))
    write_markdown(os.path.join(out, "summary.md"), "GBRL: GBT actor-critic vs NN-PPO", body, meta)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(a.envs), figsize=(5.5 * len(a.envs), 4), squeeze=False)
    for ax, env_key in zip(axes[0], a.envs):
        for name in a.agents:
            r = results[(f"{env_key}[{a.tag}]" if a.tag else env_key, name)]
            mu = r["ev"].mean(0)
            ci = np.array([ci95(r["ev"][:, i]) for i in range(len(r["x"]))])
            ax.plot(r["x"], mu, label=name)
            ax.fill_between(r["x"], mu - ci, mu + ci, alpha=0.2)
        ax.set_title(f"{ENVS[env_key]}{' ' + a.tag if a.tag else ''} ({a.seeds} seeds, 95% CI)", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend()
    fig.text(0.01, 0.01, f"{meta['command']} | {meta['device']} | {meta['date']}", fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(os.path.join(out, "curves.png"), dpi=110)
    print(f"wrote {out}/curves.csv, summary.md, curves.png")
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
