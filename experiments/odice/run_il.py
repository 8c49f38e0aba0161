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

    python experiments/odice/run_il.py [--traj 1] [--steps 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run_offline import pendulum_dataset, pendulum_references  # noqa: E402

from rlsuite.agents import odice  # noqa: E402
from rlsuite.agents.offline_baselines import BCConfig, bc_default_hparams, make_train_bc  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402
from rlsuite.data import references as refs  # noqa: E402
from rlsuite.data.dataset import Dataset  # noqa: E402
from rlsuite.envs import make  # noqa: E402

SEEDS = (0, 10, 100)


def expert_trajectory(expert: Dataset, t: int) -> Dataset:
    """The ``t``-th (1-based) complete trajectory of ``expert`` with rewards set to 0."""
    done = np.flatnonzero(expert.complete_episode_mask())
    if t < 1 or t > done.size:
        raise ValueError(f"--traj {t} out of range: the expert dataset has {done.size} complete trajectories")
    ep = expert.episode(int(done[t - 1]))
    return ep.replace(rewards=np.zeros_like(ep.rewards))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traj", type=int, default=1, help="use the T-th expert trajectory (paper: 1, 10, 20, 30)")
    ap.add_argument("--random-size", type=int, default=10_000)
    ap.add_argument("--medium-size", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--eval-every", type=int, default=2500)
    ap.add_argument("--disc-steps", type=int, default=2000)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--paper-scale", action="store_true")
    ap.add_argument("--out", default="results/odice")
    args = ap.parse_args(argv)
    v_hidden = pi_hidden = tuple(args.hidden)
    if args.paper_scale:
        args.steps, args.eval_every, v_hidden, pi_hidden = 500_000, 5000, (256, 256), (1024, 1024)
    t_start = time.time()
    env, p = make("gymnax:Pendulum-v1")
    ref = pendulum_references(env, p)
    expert_full = pendulum_dataset("expert", 4000, seed=3, references=ref)
    expert = expert_trajectory(expert_full, args.traj)
    mixed = Dataset.concatenate([
        pendulum_dataset("random", args.random_size, seed=4, references=ref),
        pendulum_dataset("medium", args.medium_size, seed=5, references=ref),
    ])
    mixed = mixed.replace(rewards=np.zeros_like(mixed.rewards))
    r_rand, r_exp = ref["ref_random_return"], ref["ref_expert_return"]
    print(f"expert trajectory {args.traj}: {len(expert)} steps; mixed {len(mixed)}; refs {r_rand:.1f}/{r_exp:.1f}", flush=True)

    ev = dict(gradient_steps=args.steps, eval_every=args.eval_every, eval_episodes=10)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in SEEDS])
    runs = {}
    for rule, name in (("orthogonal", "O-DICE"), ("semi_gradient", "semi-DICE"), ("true_gradient", "true-DICE")):
        cfg = odice.il_config(gradient_rule=rule, value_hidden=v_hidden, policy_hidden=pi_hidden, disc_steps=args.disc_steps, **ev)
        runs[name] = (odice.make_train(cfg, mixed, env, p, expert=expert), odice.default_hparams(cfg))
    bc_cfg = BCConfig(policy_hidden=pi_hidden, tanh_mean=True, normalize_states=True, **ev)
    runs["BC (expert traj)"] = (make_train_bc(bc_cfg, expert, env, p), bc_default_hparams(pi_lr=1e-4, pi_weight_decay=1e-5))
    runs["BC (union)"] = (make_train_bc(bc_cfg, Dataset.concatenate([expert, mixed]), env, p),
                          bc_default_hparams(pi_lr=1e-4, pi_weight_decay=1e-5))

    rows, table, curves = [], [], []
    for name, (train, hp) in runs.items():
        t0 = time.time()
        if getattr(train, "expert_data", None) is not None:
            fn = jax.jit(jax.vmap(lambda k, d, e: train.with_data(k, hp, d, e), in_axes=(0, None, None)))
            _, m = fn(keys, train.data, train.expert_data)
        else:
            fn = jax.jit(jax.vmap(lambda k, d: train.with_data(k, hp, d), in_axes=(0, None)))
            _, m = fn(keys, train.data)
        ret = np.asarray(m["eval_return"])
        score = refs.normalized_score(ret[:, -1], r_rand, r_exp)
        dt = time.time() - t0
        print(f"  {name:18s} score {score.mean():6.1f} +- {score.std():5.1f}  ({dt:.0f} s)", flush=True)
        rows.append([name, round(float(score.mean()), 1), round(float(score.std()), 1), " ".join(f"{x:.1f}" for x in score), round(dt, 1)])
        table.append([name, f"{score.mean():.1f} ± {score.std():.1f}", " ".join(f"{x:.1f}" for x in score)])
        for i, s in enumerate(SEEDS):
            for j, r in enumerate(ret[i]):
                curves.append([name, s, (j + 1) * args.eval_every, float(r), float(refs.normalized_score(r, r_rand, r_exp))])
    wall = time.time() - t_start
    meta = provenance(
        seeds=list(SEEDS), task="gymnax:Pendulum-v1", expert_trajectory=args.traj, expert_steps=len(expert),
        mixed_transitions=len(mixed), gradient_steps=args.steps, hidden=list(pi_hidden), disc_steps=args.disc_steps,
        scale="paper scale" if args.paper_scale else "CPU-default scale (reduced)", wall_seconds=round(wall, 1),
    )
    write_csv(os.path.join(args.out, "il_pendulum.csv"), ["algo", "score_mean", "score_std", "per_seed", "wall_s"], rows, meta)
    write_csv(os.path.join(args.out, "il_pendulum_curves.csv"), ["algo", "seed", "step", "return", "score"], curves, meta)
    sc = {r[0]: r[1] for r in rows}
    body = markdown_table(["algorithm", "normalised score (mean ± std)", "per seed"], table)
    body += (
        f"\n\nOffline IL from expert trajectory #{args.traj} ({len(expert)} reward-free steps) plus {len(mixed)} mixed "
        f"reward-free transitions (uniform random + medium noisy controller). Final evaluation, 10 episodes, mean "
        f"action, normalised with the random / clean-controller references. O-DICE >= BC (expert traj): "
        f"{sc['O-DICE'] >= sc['BC (expert traj)']}. Wall time {wall:.0f} s.\n"
    )
    write_markdown(os.path.join(args.out, "il_pendulum.md"), "Offline imitation from one expert trajectory (Pendulum-v1)", body, meta)
    print(f"wrote {args.out}/il_pendulum.{{csv,md}} in {wall:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
