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

Every algorithm is a registered agent (``odice`` with ``gradient_rule`` semi_gradient /
true_gradient / orthogonal, ``bc``, ``iql``) trained through ``rlsuite.core.agent.make_train``
(``_common.train_seeds``: seeds vmapped, prepared data passed into ``jit`` as an argument).

    python experiments/odice/run_offline.py                      # pendulum, CPU default
    python experiments/odice/run_offline.py --suite brax --tasks hopper walker2d --scale 100k   # 100k steps
    python experiments/odice/run_offline.py --suite brax --data-dir /work/datasets
    python experiments/odice/run_offline.py --paper-scale --suite brax
    python experiments/odice/run_offline.py --smoke              # CI: seconds, writes to /tmp/rlsuite-smoke/odice
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
import time
from typing import Literal, Optional

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SMOKE_OUT, load_dataset, pendulum_dataset, pendulum_references, train_seeds  # noqa: E402

from rlsuite import agents  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402
from rlsuite.data import references as refs  # noqa: E402
from rlsuite.envs import make  # noqa: E402

ALGOS = ("BC", "IQL", "semi-DICE", "true-DICE", "O-DICE")
Algo = Literal["BC", "IQL", "semi-DICE", "true-DICE", "O-DICE"]
BRAX_TASKS = ("hopper", "walker2d", "halfcheetah")


@dataclasses.dataclass
class Args:
    """Offline RL benchmark: BC / IQL / semi-gradient DICE / true-gradient DICE / O-DICE."""

    suite: Literal["pendulum", "brax"] = "pendulum"
    """Datasets: Pendulum-v1 built here, or the Brax medium datasets under --data-dir."""
    kinds: Optional[tuple[str, ...]] = None
    """Dataset kinds (pendulum default: medium medium-replay; brax: medium)."""
    tasks: tuple[str, ...] = BRAX_TASKS
    """Brax tasks."""
    data_dir: str = "/work/datasets"
    """Where build_datasets.py put the Brax datasets."""
    dataset: tuple[str, ...] = ()
    """Explicit dataset files (Minari dirs / D4RL .hdf5); overrides the --suite lookup."""
    env: Optional[str] = None
    """Env id for --dataset files (default: the file's metadata env_id)."""
    size: int = 100_000
    """Pendulum dataset size (transitions)."""
    algos: tuple[Algo, ...] = ALGOS
    """Algorithms to run."""
    seeds: int = 5
    """Seeds 0..N-1, vmapped."""
    steps: int = 10_000
    """Gradient steps."""
    eval_every: int = 2500
    """Gradient steps between evaluations."""
    eval_episodes: int = 10
    """Episodes per evaluation (mean action)."""
    batch: int = 256
    """Batch size."""
    value_hidden: tuple[int, ...] = (64, 64)
    """V (DICE) / Q and V (IQL) hidden sizes."""
    policy_hidden: tuple[int, ...] = (64, 64)
    """Policy hidden sizes."""
    lam: float = 0.6
    """DICE lambda."""
    eta: float = 1.0
    """DICE eta."""
    scale: Literal["cpu", "100k", "paper"] = "cpu"
    """'cpu': --steps / --eval-every / network sizes as given (default 10k steps, 2x64);
    '100k': 100k gradient steps, evaluation every 10k (network sizes as given);
    'paper': 1M steps, eval every 5k, V 2x256 LN twin, policy 2x1024."""
    paper_scale: bool = False
    """Alias of --scale paper."""
    smoke: bool = False
    """Tiny sizes (CI): one small Pendulum dataset, 2 seeds, 20 steps; writes under /tmp/rlsuite-smoke/odice."""
    out: Optional[str] = None
    """Output directory (default results/odice; smoke: /tmp/rlsuite-smoke/odice)."""
    tag: Optional[str] = None
    """File-name tag (default: the suite)."""


def find_brax_dataset(data_dir: str, task: str, kind: str) -> str | None:
    pats = [f"*{task}*{kind}*", f"*{task}*/*{kind}*", f"*{task}*{kind}*/**"]
    for pat in pats:
        hits = sorted(h for h in glob.glob(os.path.join(data_dir, pat)) if "replay" not in h or "replay" in kind)
        hits = [h for h in hits if "expert" not in os.path.basename(h) or "expert" in kind]
        if hits:
            return hits[0]
    return None


def configs(args: Args) -> dict:
    """``{algo: (registry name, config, hparams)}``."""
    ev = dict(gradient_steps=args.steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes, batch_size=args.batch)
    v, pi = tuple(args.value_hidden), tuple(args.policy_hidden)
    odice, bc, iql = agents.get("odice"), agents.get("bc"), agents.get("iql")

    def dice(rule):
        cfg = odice.config(gradient_rule=rule, value_hidden=v, policy_hidden=pi, **ev)
        return ("odice", cfg, odice.load().default_hparams(cfg, lam=args.lam, eta=args.eta))

    bc_cfg, iql_cfg = bc.config(policy_hidden=pi, **ev), iql.config(hidden=v, policy_hidden=pi, **ev)
    return {
        "BC": ("bc", bc_cfg, bc.default_hparams(bc_cfg)),
        "IQL": ("iql", iql_cfg, iql.default_hparams(iql_cfg)),
        "semi-DICE": dice("semi_gradient"),
        "true-DICE": dice("true_gradient"),
        "O-DICE": dice("orthogonal"),
    }


def main(args: Args) -> None:
    if args.paper_scale:
        args.scale = "paper"
    if args.scale == "paper":
        args.steps, args.eval_every, args.value_hidden, args.policy_hidden = 1_000_000, 5000, (256, 256), (1024, 1024)
    elif args.scale == "100k":
        args.steps, args.eval_every = 100_000, 10_000
    ref_episodes = 100
    if args.smoke:
        args.suite, args.kinds, args.dataset = "pendulum", args.kinds or ("medium",), ()
        args.size, args.seeds, args.steps, args.eval_every, args.eval_episodes = 2000, 2, 20, 10, 2
        args.batch, args.value_hidden, args.policy_hidden = 32, (16, 16), (16, 16)
        ref_episodes = 4
    args.out = args.out or (SMOKE_OUT if args.smoke else "results/odice")
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
        ref = pendulum_references(env, p, episodes=ref_episodes)
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
            agent_name, cfg, hp = algos[algo]
            m = train_seeds(agent_name, cfg, env, p, ds, seeds, hp)
            final = refs.normalized_score(m["eval_return"][:, -1], r_rand, r_exp)  # [seeds]
            scores[(name, algo)] = final
            dt = time.time() - t0
            print(f"   {algo:10s} score {final.mean():6.1f} +- {final.std():5.1f}   ({dt:.0f} s)", flush=True)
            for s in seeds:
                for step, ret in zip(m["eval_update"][s], m["eval_return"][s], strict=True):
                    curve_rows.append([name, algo, s, int(step), float(ret),
                                       float(refs.normalized_score(ret, r_rand, r_exp))])
            fcos = float(m["feature_cos"][:, -1].mean()) if "feature_cos" in m else float("nan")
            cosines[(name, algo)] = fcos
            rows.append([name, len(ds), round(ds_score, 1), algo, round(float(final.mean()), 1),
                         round(float(final.std()), 1), " ".join(f"{x:.1f}" for x in final), round(fcos, 4), round(dt, 1)])

    wall = time.time() - t_start
    tag = args.tag or (args.suite if not args.dataset else "custom")
    scale = {"paper": "paper scale", "100k": "100k gradient steps (10% of the paper's)"}.get(
        args.scale, "CPU-default scale (reduced: see settings)")
    if args.smoke:
        scale = "SMOKE (tiny, meaningless numbers)"
    pendulum_note = (
        "Datasets `pendulum-*`: collected by experiments/odice/_common.py from an epsilon-noisy hand-written "
        "energy/PD controller (medium: random torque with probability 0.7; medium-replay: 1.0 -> 0.7), NOT the "
        "PPO-snapshot recipe of build_datasets.py; references: uniform random / the clean controller."
        if any(n.startswith("pendulum-") for n, _, _ in jobs) else "")
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
        f"policy {args.policy_hidden}; lambda={args.lam}, eta={args.eta}. Wall time end to end {wall:.0f} s. "
        f"{pendulum_note}\n\n"
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
    main(tyro.cli(Args))
