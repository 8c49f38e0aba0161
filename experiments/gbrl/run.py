"""GBT actor-critic (GBRL: Fuhrer, Tessler, Dalal 2024) vs network PPO on classic control.

Every agent is its registry entry (``gbrl-ppo``, ``gbrl-a2c``, ``gbrl-awr``, ``ppo``) through the
protocol: ``agents.get(name).make`` -> ``rlsuite.core.agent.make_train(agent, eval_every)`` ->
``jax.jit(jax.vmap(train))`` over seeds ``0..S-1`` (``rlsuite.core.sweep.seed_keys``), so each
(agent, env) pair is one compiled program.  Evaluation: the protocol's deterministic
``eval_return`` (``eval_episodes`` fresh episodes per seed) every ``eval_every`` updates.

    python experiments/gbrl/run.py                         # CartPole, 5 seeds, 100k steps (CPU, ~10 min)
    python experiments/gbrl/run.py --envs cartpole acrobot --steps 200000
    python experiments/gbrl/run.py --smoke                 # tiny gbrl-ppo vs ppo (< 1 min), to /tmp/rlsuite-smoke/gbrl

Writes ``results/gbrl/{curves.csv, summary.md, curves.png}`` (``--smoke``: ``/tmp/rlsuite-smoke/gbrl``).

Settings.  GBT-PPO / GBT-AWR: the sheet's CartPole PPO-GBRL settings (8 envs x 128 steps, batch
64, 1 epoch, policy / value lr 0.029 / 0.015, gamma 0.98, lambda 0.8, shared tree, depth 4, 250
quantile bins, cosine score) = ``GBRLConfig`` defaults.  GBT-A2C: the same but 8 x 16 rollouts (one
tree per rollout: 8 x 128 would give only ~100 trees in 100k steps).  NN-PPO: ``PPOConfig``
defaults (PureJaxRL CartPole).  Acrobot: the sheet's Acrobot learning rates (0.160 / 0.034) with
the CartPole batch layout.  Not run here: MountainCar, MinAtar and the categorical grid task
(CPU budget; see README.md).
"""

from __future__ import annotations

import dataclasses
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
from rlsuite.envs import make

ENVS = {"cartpole": "gymnax:CartPole-v1", "acrobot": "gymnax:Acrobot-v1"}
AGENTS = ("gbrl-ppo", "gbrl-a2c", "gbrl-awr", "ppo")


def agent_overrides(name: str, env: str, steps: int, smoke: bool) -> dict:
    kw: dict = dict(total_timesteps=steps, eval_episodes=8)
    if name == "gbrl-a2c":
        kw |= dict(num_steps=16)
    if name.startswith("gbrl") and env == "acrobot":
        kw |= dict(policy_lr=0.160, value_lr=0.034)
    if smoke:
        kw |= dict(num_envs=4, num_steps=32, eval_episodes=2)
        if name.startswith("gbrl"):
            kw |= dict(num_minibatches=2, n_bins=16, max_depth=3)
        else:
            kw |= dict(hidden=(16,))
    return kw


def eval_every_of(num_updates: int, n_evals: int) -> int:
    e = max(1, num_updates // n_evals)
    while num_updates % e:
        e -= 1
    return e


def run_one(name: str, env_key: str, steps: int, seeds: int, n_evals: int, smoke: bool):
    entry = agents.get(name)
    env, env_params = make(ENVS[env_key])
    config = entry.config(**agent_overrides(name, env_key, steps, smoke))
    agent = entry.make(config, env, env_params)
    every = eval_every_of(agent.num_updates, n_evals)
    train = jax.jit(jax.vmap(make_train(agent, eval_every=every), in_axes=(0, None)))
    keys = sweep.seed_keys(range(seeds))
    hp = entry.default_hparams(config)
    t0 = time.perf_counter()
    compiled = train.lower(keys, hp).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, m = compiled(keys, hp)
    ev = np.asarray(jax.block_until_ready(m["eval_return"]))  # [S, E]
    run_s = time.perf_counter() - t0
    x = np.asarray(m["eval_update"])[0] * agent.steps_per_update
    return dict(x=x, ev=ev, compile_s=compile_s, run_s=run_s, config=config)


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
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    if a.smoke:
        a.steps, a.seeds, a.evals = 1024, 2, 2
        a.envs = ["cartpole"]
        a.agents = ["gbrl-ppo", "ppo"]  # the A2C / AWR variants compile in the registry tests
    for what, got, known in (("--envs", a.envs, sorted(ENVS)), ("--agents", a.agents, list(AGENTS))):
        bad = [x for x in got if x not in known]
        if bad:
            raise SystemExit(f"{what}: unknown {bad}; choose from {known}")
    out = a.out or ("/tmp/rlsuite-smoke/gbrl" if a.smoke else "results/gbrl")
    os.makedirs(out, exist_ok=True)

    results = {}
    for env_key in a.envs:
        for name in a.agents:
            r = run_one(name, env_key, a.steps, a.seeds, a.evals, a.smoke)
            results[(env_key, name)] = r
            fin = r["ev"][:, -1]
            print(f"{env_key:9s} {name:9s} final eval {fin.mean():7.1f} +- {ci95(fin):5.1f}  "
                  f"run {r['run_s']:6.1f} s  compile {r['compile_s']:5.1f} s", flush=True)

    meta = provenance(seeds=list(range(a.seeds)), steps=a.steps, evaluation="deterministic eval_return, "
                      "8 episodes per seed (2 in --smoke)")
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
        table.append([env_key, name, f"{fin.mean():.1f} ± {ci95(fin):.1f}", f"{r['ev'].mean(0).max():.1f}",
                      int(r["x"][-1]), f"{r['run_s']:.1f}", f"{r['compile_s']:.1f}"])
    body = markdown_table(["env", "agent", "final eval (mean ± 95% CI)", "best mean eval", "env steps",
                           f"run s ({a.seeds} seeds vmapped)", "compile s"], table)
    body += ("\n\nGBT agents: GBRLConfig defaults (the sheet's CartPole PPO-GBRL settings; gbrl-a2c with 8 x 16 "
             "rollouts); NN-PPO: PPOConfig defaults. See experiments/gbrl/README.md.")
    write_markdown(os.path.join(out, "summary.md"), "GBRL: GBT actor-critic vs NN-PPO", body, meta)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(a.envs), figsize=(5.5 * len(a.envs), 4), squeeze=False)
    for ax, env_key in zip(axes[0], a.envs):
        for name in a.agents:
            r = results[(env_key, name)]
            mu = r["ev"].mean(0)
            ci = np.array([ci95(r["ev"][:, i]) for i in range(len(r["x"]))])
            ax.plot(r["x"], mu, label=name)
            ax.fill_between(r["x"], mu - ci, mu + ci, alpha=0.2)
        ax.set_title(f"{ENVS[env_key]} ({a.seeds} seeds, 95% CI)")
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
