"""Offline RL benchmark: BC / IQL / semi-gradient DICE / true-gradient DICE / O-DICE.

Each algorithm trains ``--seeds`` seeds in ONE ``jax.vmap`` over a fused ``lax.scan`` training loop
per dataset; the score is the D4RL-style normalised return of the final evaluation (mean-action
policy, ``eval_episodes`` episodes), with the random / expert references stored with the dataset.

Datasets
--------
- ``--suite brax`` (the issue's task): the medium datasets of brax hopper / walker2d / halfcheetah
  built by ``experiments/odice/build_datasets.py`` (``rlsuite.data``), read from ``--data-dir``
  (default ``/work/datasets``).  Point ``--dataset`` at any Minari / D4RL-layout file of your own.
- ``--suite pendulum`` (CPU default, builds in seconds): gymnax Pendulum-v1 datasets collected
  here through the rollout engine from a hand-written controller (energy-pumping swing-up + PD
  balance): ``medium`` = with probability 0.7 a uniformly random torque instead of the controller's
  (return ~ 1/3 of the way from random to expert, the D4RL "medium" level); ``medium-replay`` = the
  noise level annealed from 1.0 (random) to 0.7 over collection, like the replay of a training run
  up to the medium snapshot.  References: uniform random actions and the clean controller, 100
  episodes each.

CPU-default scale (say so in every table): small networks (V 2x64, policy 2x64), 10k gradient
steps, 5 seeds.  ``--paper-scale``: V 2x256 LayerNorm twin, policy 2x1024, 1M steps, eval every 5k.

    python experiments/odice/run_offline.py                      # pendulum, CPU default
    python experiments/odice/run_offline.py --suite brax --data-dir /work/datasets
    python experiments/odice/run_offline.py --paper-scale --suite brax
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.agents import odice
from rlsuite.agents.offline_baselines import (
    BCConfig,
    IQLConfig,
    bc_default_hparams,
    iql_default_hparams,
    make_train_bc,
    make_train_iql,
)
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.core.rollout import init_rollout, rollout
from rlsuite.data import references as refs
from rlsuite.data.dataset import Dataset
from rlsuite.envs import make

ALGOS = ("BC", "IQL", "semi-DICE", "true-DICE", "O-DICE")
BRAX_TASKS = ("hopper", "walker2d", "halfcheetah")

# ============================================================================ Pendulum datasets


def pendulum_controller(obs):
    """Energy-pumping swing-up + PD balance for gymnax Pendulum-v1 (theta'' = 15 sin(theta) + 3u)."""
    c, s, w = obs[:, 0], obs[:, 1], obs[:, 2]
    th = jnp.arctan2(s, c)
    energy = 0.5 * w**2 + 15.0 * (c - 1.0)
    swing = jnp.where(energy < 0, 2.0 * jnp.sign(w + 1e-3), -2.0 * jnp.sign(w))
    u = jnp.where(c > 0.85, -(10.0 * th + 2.0 * w), swing)
    return jnp.clip(u, -2.0, 2.0)[:, None]


def noisy_controller(eps, obs, key):
    """With probability ``eps`` (per env and step) a uniform random torque, else the controller's."""
    k1, k2 = jax.random.split(key)
    a = pendulum_controller(obs)
    rnd = jax.random.uniform(k1, a.shape, minval=-2.0, maxval=2.0)
    use = jax.random.uniform(k2, (obs.shape[0], 1)) < eps
    return jnp.where(use, rnd, a), None


def collect_segments(env, env_params, eps_list, key, num_envs: int, steps_per_segment: int) -> Dataset:
    """Engine rollouts with a noise level per segment (carry runs on across segments); env-major
    layout so episodes are contiguous; the last step of each env's stream is a (cut) time-out."""
    carry = init_rollout(env, env_params, key, num_envs)
    run = jax.jit(lambda c, eps: rollout(env, env_params, noisy_controller, eps, c, steps_per_segment))
    parts = []
    for eps in eps_list:
        carry, tr = run(carry, jnp.asarray(eps, jnp.float32))
        parts.append(tr)
    tr = jax.tree.map(lambda *x: jnp.concatenate(x, 0), *parts)

    def flat(x):
        x = np.asarray(jnp.swapaxes(x, 0, 1))
        return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])

    tout = np.asarray(tr.truncated).copy()
    tout[-1] |= ~np.asarray(tr.terminated)[-1]
    return Dataset.from_arrays(
        observations=flat(tr.obs), actions=flat(tr.action), rewards=flat(tr.reward),
        next_observations=flat(tr.next_obs), terminals=flat(tr.terminated), timeouts=flat(jnp.asarray(tout)),
    )


def pendulum_references(env, env_params, seed: int = 0) -> dict:
    rand = refs.random_reference(env, env_params, seed=10_000 + seed, num_episodes=100)
    expert = refs.policy_reference(
        env, env_params, lambda p, o, k: (pendulum_controller(o), None), None, seed=20_000 + seed, num_episodes=100
    )
    return {"ref_random_return": rand["mean"], "ref_expert_return": expert["mean"], "ref_source": "rlsuite-controller"}


def pendulum_dataset(kind: str, size: int, seed: int = 0, references: dict | None = None) -> Dataset:
    """``medium`` (eps = 0.7), ``medium-replay`` (eps annealed 1.0 -> 0.7), ``expert`` (eps = 0),
    ``random`` (eps = 1)."""
    env, p = make("gymnax:Pendulum-v1")
    num_envs, segments = 10, 10
    steps = max(size // (num_envs * segments), 1)
    eps = {
        "medium": [0.7] * segments, "expert": [0.0] * segments, "random": [1.0] * segments,
        "medium-replay": list(np.linspace(1.0, 0.7, segments)),
    }[kind]
    ds = collect_segments(env, p, eps, jax.random.PRNGKey(seed + 1), num_envs, steps)
    md = {"env_id": "gymnax:Pendulum-v1", "kind": kind, "seed": seed, "max_episode_steps": int(p.max_steps_in_episode),
          "policy": "noisy energy/PD controller", "eps": [float(e) for e in eps]}
    md.update(references or pendulum_references(env, p, seed))
    return ds.with_metadata(**md)


# ============================================================================ loading


def load_dataset(path: str) -> Dataset:
    """Load a dataset file with rlsuite.data's IO (Minari directory or D4RL-layout HDF5)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset {path!r} does not exist (build it with experiments/odice/build_datasets.py)")
    from rlsuite.data import io as dio  # written by the data side of issue 6

    for name in ("load", "load_dataset", "load_any"):
        if hasattr(dio, name):
            return getattr(dio, name)(path)
    raise RuntimeError("rlsuite.data.io has no load function")


def find_brax_dataset(data_dir: str, task: str, kind: str) -> str | None:
    pats = [f"*{task}*{kind}*", f"*{task}*/*{kind}*", f"*{task}*{kind}*/**"]
    for pat in pats:
        hits = sorted(h for h in glob.glob(os.path.join(data_dir, pat)) if "replay" not in h or "replay" in kind)
        hits = [h for h in hits if "expert" not in os.path.basename(h) or "expert" in kind]
        if hits:
            return hits[0]
    return None


# ============================================================================ running


def configs(args):
    steps, every = args.steps, args.eval_every
    ev = dict(gradient_steps=steps, eval_every=every, eval_episodes=args.eval_episodes, batch_size=args.batch)
    v, pi = tuple(args.value_hidden), tuple(args.policy_hidden)
    dice = lambda rule: odice.ODiceConfig(gradient_rule=rule, value_hidden=v, policy_hidden=pi, **ev)  # noqa: E731
    dhp = odice.default_hparams(lam=args.lam, eta=args.eta)
    return {
        "BC": (lambda ds, env, p: make_train_bc(BCConfig(policy_hidden=pi, **ev), ds, env, p), bc_default_hparams()),
        "IQL": (lambda ds, env, p: make_train_iql(IQLConfig(hidden=v, policy_hidden=pi, **ev), ds, env, p), iql_default_hparams()),
        "semi-DICE": (lambda ds, env, p: odice.make_train(dice("semi_gradient"), ds, env, p), dhp),
        "true-DICE": (lambda ds, env, p: odice.make_train(dice("true_gradient"), ds, env, p), dhp),
        "O-DICE": (lambda ds, env, p: odice.make_train(dice("orthogonal"), ds, env, p), dhp),
    }


def run_algo(make_fn, hp, ds, env, env_params, seeds):
    train = make_fn(ds, env, env_params)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    fn = jax.jit(jax.vmap(lambda k, d: train.with_data(k, hp, d), in_axes=(0, None)))
    _, m = fn(keys, train.data)
    return {k: np.asarray(v) for k, v in jax.block_until_ready(m).items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("pendulum", "brax"), default="pendulum")
    ap.add_argument("--kinds", nargs="+", default=None, help="dataset kinds (pendulum default: medium medium-replay; brax: medium)")
    ap.add_argument("--tasks", nargs="+", default=list(BRAX_TASKS), help="brax tasks")
    ap.add_argument("--data-dir", default="/work/datasets")
    ap.add_argument("--dataset", nargs="*", default=None, help="explicit dataset files (overrides --suite lookup)")
    ap.add_argument("--env", default=None, help="env id for --dataset files (default: the file's metadata env_id)")
    ap.add_argument("--size", type=int, default=100_000, help="pendulum dataset size (transitions)")
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--eval-every", type=int, default=2500)
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--value-hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--policy-hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--lam", type=float, default=0.6)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--paper-scale", action="store_true", help="1M steps, eval every 5k, V 2x256 LN twin, policy 2x1024")
    ap.add_argument("--out", default="results/odice")
    ap.add_argument("--tag", default=None, help="file-name tag (default: the suite)")
    args = ap.parse_args(argv)
    if args.paper_scale:
        args.steps, args.eval_every, args.value_hidden, args.policy_hidden = 1_000_000, 5000, [256, 256], [1024, 1024]
    if args.seeds <= 0 or args.steps <= 0 or args.eval_every <= 0:
        raise SystemExit("--seeds, --steps and --eval-every must be positive")
    t_start = time.time()

    # ---- datasets: list of (name, env_id, Dataset)
    jobs = []
    if args.dataset:
        for path in args.dataset:
            ds = load_dataset(path)
            jobs.append((os.path.basename(path.rstrip("/")), args.env or ds.metadata.get("env_id"), ds))
    elif args.suite == "pendulum":
        env, p = make("gymnax:Pendulum-v1")
        ref = pendulum_references(env, p)
        for kind in args.kinds or ["medium", "medium-replay"]:
            jobs.append((f"pendulum-{kind}", "gymnax:Pendulum-v1", pendulum_dataset(kind, args.size, 0, ref)))
    else:
        for task in args.tasks:
            for kind in args.kinds or ["medium"]:
                path = find_brax_dataset(args.data_dir, task, kind)
                if path is None:
                    print(f"[skip] no {task} {kind} dataset under {args.data_dir}", flush=True)
                    continue
                ds = load_dataset(path)
                jobs.append((f"{task}-{kind}", ds.metadata.get("env_id", f"brax:{task}"), ds))
    if not jobs:
        raise SystemExit("no datasets found; build them first or use --suite pendulum")

    seeds = list(range(args.seeds))
    algos = configs(args)
    rows, curve_rows, scores, cosines = [], [], {}, {}
    for name, env_id, ds in jobs:
        env_kwargs = ds.metadata.get("env_kwargs") or {}
        env, p = make(env_id, **env_kwargs)
        r_rand, r_exp = ds.metadata.get("ref_random_return"), ds.metadata.get("ref_expert_return")
        ds_score = refs.dataset_normalized_score(ds)
        print(f"== {name}: {len(ds)} transitions, dataset score {ds_score:.1f} (refs {r_rand:.1f} / {r_exp:.1f})", flush=True)
        for algo in args.algos:
            t0 = time.time()
            make_fn, hp = algos[algo]
            m = run_algo(make_fn, hp, ds, env, p, seeds)
            final = refs.normalized_score(m["eval_return"][:, -1], r_rand, r_exp)  # [seeds]
            scores[(name, algo)] = final
            dt = time.time() - t0
            print(f"   {algo:10s} score {final.mean():6.1f} +- {final.std():5.1f}   ({dt:.0f} s)", flush=True)
            for s in seeds:
                for i, ret in enumerate(m["eval_return"][s]):
                    curve_rows.append([name, algo, s, (i + 1) * args.eval_every, float(ret),
                                       float(refs.normalized_score(ret, r_rand, r_exp))])
            fcos = float(m["feature_cos"][:, -1].mean()) if "feature_cos" in m else float("nan")
            cosines[(name, algo)] = fcos
            rows.append([name, len(ds), round(ds_score, 1), algo, round(float(final.mean()), 1),
                         round(float(final.std()), 1), " ".join(f"{x:.1f}" for x in final), round(fcos, 4), round(dt, 1)])

    wall = time.time() - t_start
    tag = args.tag or (args.suite if not args.dataset else "custom")
    scale = "paper scale" if args.paper_scale else "CPU-default scale (reduced: see settings)"
    meta = provenance(
        seeds=seeds, scale=scale, gradient_steps=args.steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        batch=args.batch, value_hidden=args.value_hidden, policy_hidden=args.policy_hidden, lam=args.lam, eta=args.eta,
        dataset_sizes={n: len(d) for n, _, d in jobs}, wall_seconds=round(wall, 1),
    )
    os.makedirs(args.out, exist_ok=True)
    header = ["dataset", "transitions", "dataset_score", "algo", "score_mean", "score_std", "per_seed",
              "v_feature_cos_s_s2", "wall_s"]
    write_csv(os.path.join(args.out, f"offline_{tag}.csv"), header, rows, meta)
    write_csv(os.path.join(args.out, f"offline_{tag}_curves.csv"), ["dataset", "algo", "seed", "step", "return", "score"], curve_rows, meta)

    # pivot table: one row per dataset
    names = [n for n, _, _ in jobs]
    piv = []
    for n, _, d in jobs:
        ds_score = refs.dataset_normalized_score(d)
        piv.append([n, len(d), f"{ds_score:.1f}"] + [
            f"{scores[(n, a)].mean():.1f} ± {scores[(n, a)].std():.1f}" if (n, a) in scores else "-" for a in args.algos
        ])
    body = markdown_table(["dataset", "transitions", "dataset"] + list(args.algos), piv)
    checks = []
    if all(a in args.algos for a in ("O-DICE", "true-DICE", "BC")):
        wins = [n for n in names if scores[(n, "O-DICE")].mean() >= scores[(n, "true-DICE")].mean()
                and scores[(n, "O-DICE")].mean() >= scores[(n, "BC")].mean()]
        checks.append(f"O-DICE >= true-gradient DICE and >= BC (mean over seeds) on {len(wins)} of {len(names)} datasets: "
                      f"{', '.join(wins) or 'none'}.")
    if all(a in args.algos for a in ("O-DICE", "true-DICE")):
        checks += [
            f"{n}: cosine similarity of penultimate V features of s and s' (final, mean over seeds and twin heads): "
            f"true-DICE {cosines[(n, 'true-DICE')]:.4f}, O-DICE {cosines[(n, 'O-DICE')]:.4f}"
            + (f", semi-DICE {cosines[(n, 'semi-DICE')]:.4f}" if (n, "semi-DICE") in cosines else "")
            for n in names
        ]
    body += (
        f"\n\nNormalised score 100 (R - R_random) / (R_expert - R_random) of the final evaluation "
        f"({args.eval_episodes} episodes, mean action), mean ± std over {len(seeds)} seeds (vmapped). {scale}: "
        f"{args.steps} gradient steps, batch {args.batch}, V {args.value_hidden} (DICE: LayerNorm twin; IQL: twin Q), "
        f"policy {args.policy_hidden}; lambda={args.lam}, eta={args.eta}. Wall time end to end {wall:.0f} s.\n\n"
        + "\n".join(f"- {c}" for c in checks) + "\n"
    )
    write_markdown(os.path.join(args.out, f"offline_{tag}.md"), f"Offline RL normalised scores ({tag})", body, meta)
    _plot(curve_rows, names, args.algos, os.path.join(args.out, f"offline_{tag}.png"))
    print(f"wrote {args.out}/offline_{tag}.{{csv,md,png}} in {wall:.0f} s")


def _plot(curve_rows, names, algos, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    arr = np.array([(r[0], r[1], r[3], r[5]) for r in curve_rows], dtype=object)
    for ax, n in zip(axes[0], names, strict=True):
        for a in algos:
            sel = arr[(arr[:, 0] == n) & (arr[:, 1] == a)]
            if not len(sel):
                continue
            steps = np.unique(sel[:, 2].astype(int))
            mean = [np.mean(sel[sel[:, 2] == s][:, 3].astype(float)) for s in steps]
            ax.plot(steps, mean, marker="o", label=a)
        ax.set_title(n)
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalised score")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
