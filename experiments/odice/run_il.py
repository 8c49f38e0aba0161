"""Offline imitation from ONE expert trajectory (O-DICE sheet §6/§7): O-DICE vs BC vs semi/true-gradient DICE.

Task: gymnax Pendulum-v1 (CPU default; the same code runs on any env id with built datasets via
``--expert`` / ``--mixed`` files).  Data, collected through the rollout engine:

- expert: the ``T``-th complete trajectory (default T = 1) of the clean energy/PD controller, with
  its rewards set to 0 (reward-free demonstration);
- mixed (suboptimal, reward-free): ``--random-size`` transitions of uniformly random torques
  followed by ``--medium-size`` of the medium (eps = 0.7) noisy controller.

O-DICE IL (``odice.il_config``: lambda 0.4, lr 1e-4, no LayerNorm, tanh mean, state
normalisation) learns a discriminator reward ``log c/(1-c)`` (expert vs union) and runs DICE on the
union; BC clones the single expert trajectory.  Seeds {0, 10, 100} (the paper's), vmapped.
CPU default: 10k gradient steps, networks 2x64; ``--paper-scale``: 500k steps, V 2x256, policy 2x1024.

Every algorithm is a registered agent (``odice`` in IL mode with data ``{"dataset", "expert"}``,
``bc``) trained through ``rlsuite.core.agent.make_train`` (``_common.train_seeds``).

    python experiments/odice/run_il.py [--traj 1] [--steps 10000]
    python experiments/odice/run_il.py --smoke          # CI: seconds, writes to /tmp/rlsuite-smoke/odice
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Optional

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SMOKE_OUT, pendulum_dataset, pendulum_references, train_seeds  # noqa: E402

from rlsuite import agents  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402
from rlsuite.data import references as refs  # noqa: E402
from rlsuite.data.dataset import Dataset  # noqa: E402
from rlsuite.envs import make  # noqa: E402

SEEDS = (0, 10, 100)


@dataclasses.dataclass
class Args:
    """Offline imitation from ONE expert trajectory: O-DICE vs BC vs semi/true-gradient DICE."""

    traj: int = 1
    """Use the T-th expert trajectory (paper: 1, 10, 20, 30)."""
    random_size: int = 10_000
    """Uniform-random transitions in the mixed dataset."""
    medium_size: int = 10_000
    """Medium (eps = 0.7) transitions in the mixed dataset."""
    steps: int = 10_000
    """Gradient steps."""
    eval_every: int = 2500
    """Gradient steps between evaluations."""
    disc_steps: int = 2000
    """Discriminator pre-training steps."""
    hidden: tuple[int, ...] = (64, 64)
    """V and policy hidden sizes (CPU default)."""
    paper_scale: bool = False
    """500k steps, V 2x256, policy 2x1024."""
    smoke: bool = False
    """Tiny sizes (CI); writes under /tmp/rlsuite-smoke/odice."""
    out: Optional[str] = None
    """Output directory (default results/odice; smoke: /tmp/rlsuite-smoke/odice)."""


def expert_trajectory(expert: Dataset, t: int) -> Dataset:
    """The ``t``-th (1-based) complete trajectory of ``expert`` with rewards set to 0."""
    done = np.flatnonzero(expert.complete_episode_mask())
    if t < 1 or t > done.size:
        raise ValueError(f"--traj {t} out of range: the expert dataset has {done.size} complete trajectories")
    ep = expert.episode(int(done[t - 1]))
    return ep.replace(rewards=np.zeros_like(ep.rewards))


def main(args: Args) -> None:
    v_hidden = pi_hidden = tuple(args.hidden)
    seeds, eval_episodes, ref_episodes, expert_size = SEEDS, 10, 100, 4000
    if args.paper_scale:
        args.steps, args.eval_every, v_hidden, pi_hidden = 500_000, 5000, (256, 256), (1024, 1024)
    if args.smoke:
        args.random_size, args.medium_size, args.steps, args.eval_every, args.disc_steps = 2000, 2000, 20, 10, 5
        v_hidden = pi_hidden = (16, 16)
        seeds, eval_episodes, ref_episodes, expert_size = SEEDS[:2], 2, 4, 2000
    out = args.out or (SMOKE_OUT if args.smoke else "results/odice")
    t_start = time.time()
    env, p = make("gymnax:Pendulum-v1")
    ref = pendulum_references(env, p, episodes=ref_episodes)
    expert_full = pendulum_dataset("expert", expert_size, seed=3, references=ref)
    expert = expert_trajectory(expert_full, args.traj)
    mixed = Dataset.concatenate([
        pendulum_dataset("random", args.random_size, seed=4, references=ref),
        pendulum_dataset("medium", args.medium_size, seed=5, references=ref),
    ])
    mixed = mixed.replace(rewards=np.zeros_like(mixed.rewards))
    r_rand, r_exp = ref["ref_random_return"], ref["ref_expert_return"]
    print(f"expert trajectory {args.traj}: {len(expert)} steps; mixed {len(mixed)}; refs {r_rand:.1f}/{r_exp:.1f}", flush=True)

    ev = dict(gradient_steps=args.steps, eval_every=args.eval_every, eval_episodes=eval_episodes)
    odice, bc = agents.get("odice"), agents.get("bc")
    il = {"dataset": mixed, "expert": expert}
    runs = {}
    for rule, name in (("orthogonal", "O-DICE"), ("semi_gradient", "semi-DICE"), ("true_gradient", "true-DICE")):
        cfg = odice.load().il_config(gradient_rule=rule, value_hidden=v_hidden, policy_hidden=pi_hidden,
                                     disc_steps=args.disc_steps, **ev)
        runs[name] = ("odice", cfg, il, odice.default_hparams(cfg))
    bc_cfg = bc.config(policy_hidden=pi_hidden, tanh_mean=True, normalize_states=True, **ev)
    bc_hp = bc.load().default_hparams(bc_cfg, pi_lr=1e-4, pi_weight_decay=1e-5)
    runs["BC (expert traj)"] = ("bc", bc_cfg, expert, bc_hp)
    runs["BC (union)"] = ("bc", bc_cfg, Dataset.concatenate([expert, mixed]), bc_hp)

    rows, table, curves = [], [], []
    for name, (agent_name, cfg, data, hp) in runs.items():
        t0 = time.time()
        m = train_seeds(agent_name, cfg, env, p, data, seeds, hp)
        ret = m["eval_return"]
        score = refs.normalized_score(ret[:, -1], r_rand, r_exp)
        dt = time.time() - t0
        print(f"  {name:18s} score {score.mean():6.1f} +- {score.std():5.1f}  ({dt:.0f} s)", flush=True)
        rows.append([name, round(float(score.mean()), 1), round(float(score.std()), 1), " ".join(f"{x:.1f}" for x in score), round(dt, 1)])
        table.append([name, f"{score.mean():.1f} ± {score.std():.1f}", " ".join(f"{x:.1f}" for x in score)])
        for i, s in enumerate(seeds):
            for step, r in zip(m["eval_update"][i], ret[i], strict=True):
                curves.append([name, s, int(step), float(r), float(refs.normalized_score(r, r_rand, r_exp))])
    wall = time.time() - t_start
    scale = "paper scale" if args.paper_scale else ("SMOKE (tiny, meaningless numbers)" if args.smoke else "CPU-default scale (reduced)")
    meta = provenance(
        seeds=list(seeds), task="gymnax:Pendulum-v1", expert_trajectory=args.traj, expert_steps=len(expert),
        mixed_transitions=len(mixed), gradient_steps=args.steps, hidden=list(pi_hidden), disc_steps=args.disc_steps,
        scale=scale, wall_seconds=round(wall, 1),
    )
    write_csv(os.path.join(out, "il_pendulum.csv"), ["algo", "score_mean", "score_std", "per_seed", "wall_s"], rows, meta)
    write_csv(os.path.join(out, "il_pendulum_curves.csv"), ["algo", "seed", "step", "return", "score"], curves, meta)
    sc = {r[0]: r[1] for r in rows}
    body = markdown_table(["algorithm", "normalised score (mean ± std)", "per seed"], table)
    body += (
        f"\n\nOffline IL from expert trajectory #{args.traj} ({len(expert)} reward-free steps) plus {len(mixed)} mixed "
        f"reward-free transitions (uniform random + medium noisy controller). Final evaluation, {eval_episodes} episodes, mean "
        f"action, normalised with the random / clean-controller references. O-DICE >= BC (expert traj): "
        f"{sc['O-DICE'] >= sc['BC (expert traj)']}. Wall time {wall:.0f} s.\n"
    )
    write_markdown(os.path.join(out, "il_pendulum.md"), "Offline imitation from one expert trajectory (Pendulum-v1)", body, meta)
    print(f"wrote {out}/il_pendulum.{{csv,md}} in {wall:.0f} s")


if __name__ == "__main__":
    main(tyro.cli(Args))
