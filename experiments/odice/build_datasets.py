"""Build the D4RL-style offline datasets for the O-DICE experiments (sheet §7) with rlsuite.data.

For every env: one PPO run (snapshots + evaluation after every segment), the random / expert
reference returns (100 episodes each), then the kinds random, medium, expert, medium-replay,
medium-expert, each saved as a Minari dataset ``<out>/<ns>-<env>-<kind>-v0``; a summary with
provenance goes to ``results/odice/datasets.md`` (+ ``datasets.csv``).

CPU defaults (2 shared cores): Brax hopper / walker2d / halfcheetah (spring backend, 1000-step
episodes), 100k transitions per kind, PPO budget 1M env steps; gymnax Pendulum-v1 smoke sets of
20k transitions with a 200k-step PPO budget.  ``--paper``: 1M transitions per kind and a 10M-step
PPO budget (D4RL used 1M transitions and fully trained agents; not CPU-feasible).

    python experiments/odice/build_datasets.py                        # CPU defaults -> /work/datasets
    python experiments/odice/build_datasets.py --envs gymnax:Pendulum-v1 --out /tmp/ds
    python experiments/odice/build_datasets.py --paper                # paper sizes
    python experiments/odice/build_datasets.py --smoke                # CI: tiny Pendulum build in /tmp/rlsuite-smoke/odice

PPO snapshots are cached as orbax checkpoints under ``<out>/_cache`` (``rlsuite.data.collect``);
an old msgpack cache is not read (PPO is retrained once).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from typing import Optional

import tyro

BRAX_ENVS = ("brax:hopper", "brax:walker2d", "brax:halfcheetah")
SMOKE_ENVS = ("gymnax:Pendulum-v1",)
KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert")
SMOKE_OUT = "/tmp/rlsuite-smoke/odice"


@dataclasses.dataclass
class Args:
    """Build the D4RL-style offline datasets for the O-DICE experiments with rlsuite.data."""

    out: Optional[str] = None
    """Dataset root, outside the repo (default /work/datasets; smoke: /tmp/rlsuite-smoke/odice/datasets)."""
    envs: Optional[tuple[str, ...]] = None
    """Env ids (default: Pendulum-v1 + Brax hopper, walker2d, halfcheetah)."""
    kinds: tuple[str, ...] = KINDS
    """Dataset kinds."""
    size: Optional[int] = None
    """Transitions per kind (default 100k Brax, 20k Pendulum)."""
    ppo_steps: Optional[int] = None
    """PPO budget in env steps (default 1M Brax, 200k Pendulum)."""
    seed: int = 0
    """Seed of the PPO run and the collection."""
    ppo_preset: str = "cpu"
    """'cpu': 64x64 PPO sized for the CPU budget (default); 'brax': PureJaxRL's full brax preset
    (256x256, 2048 envs x 10 steps) for stronger experts, e.g. --ppo-preset brax --ppo-steps
    20000000 (cached under <out>/_cache/..._brax)."""
    paper: bool = False
    """Paper scale: 1M transitions, 10M PPO steps."""
    results: Optional[str] = None
    """Where datasets.md / datasets.csv go (default results/odice; smoke: /tmp/rlsuite-smoke/odice)."""
    overwrite: bool = False
    """Rebuild datasets that exist."""
    smoke: bool = False
    """Tiny Pendulum build (CI): 400 transitions per kind, a 2-update PPO run, 4 reference episodes."""


def dataset_dir(out: str, env_id: str, kind: str) -> str:
    return os.path.join(out, f"{env_id.replace(':', '-').lower()}-{kind}-v0")


def main(args: Args) -> int:
    extra = {}
    if args.smoke:
        args.envs, args.size, args.ppo_steps, args.overwrite = SMOKE_ENVS, 400, 4096, True
        extra = dict(num_segments=2, eval_episodes=2, ref_episodes=4)
    args.out = args.out or (os.path.join(SMOKE_OUT, "datasets") if args.smoke else "/work/datasets")
    args.results = args.results or (SMOKE_OUT if args.smoke else "results/odice")
    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.data.cli import _RichProgress
    from rlsuite.data.collect import Builder, BuildSpec
    from rlsuite.data.io import save_minari
    from rlsuite.data.references import dataset_normalized_score

    envs = args.envs or list(SMOKE_ENVS + BRAX_ENVS)
    cache = os.path.join(args.out, "_cache")
    header = ["env", "kind", "transitions", "episodes", "complete", "return mean", "return std",
              "return min", "return max", "normalized score", "random ref", "expert ref",
              "PPO steps", "policy (snapshot / PPO env steps)", "build s", "path"]
    rows, notes = [], []
    t_all = time.time()
    for env_id in envs:
        smoke = not env_id.startswith("brax:")
        size = args.size or (1_000_000 if args.paper else (20_000 if smoke else 100_000))
        ppo_steps = args.ppo_steps or (10_000_000 if args.paper else (200_000 if smoke else 1_000_000))
        spec = BuildSpec(env_id=env_id, kind="random", size=size, seed=args.seed, ppo_steps=ppo_steps,
                         ppo_preset=args.ppo_preset,
                         num_envs=16 if smoke else 64, cache_dir=cache,
                         command=" ".join([os.path.basename(sys.executable)] + sys.argv), **extra)
        t_env = time.time()
        try:
            with _RichProgress() as prog:
                todo = [k for k in args.kinds
                        if args.overwrite or not os.path.exists(os.path.join(dataset_dir(args.out, env_id, k), "data"))]
                b = Builder(spec, prog) if todo else None  # nothing to build: only summarise
                if b is not None and any(k != "random" for k in args.kinds):
                    b.expert_reference()  # PPO first, so the random dataset is stored with both references
                kept = []
                for kind in args.kinds:
                    t0 = time.time()
                    path = dataset_dir(args.out, env_id, kind)
                    if kind not in todo:
                        from rlsuite.data.io import load_minari

                        ds = load_minari(path)
                        kept.append(kind)
                    else:
                        ds = b.build(kind)
                        ds = ds.with_metadata(build_seconds=round(time.time() - t0, 1))
                        save_minari(ds, path, overwrite=args.overwrite)
                    md = ds.metadata
                    st = ds.return_stats()
                    try:
                        score = float(dataset_normalized_score(ds))
                    except ValueError:
                        score = float("nan")
                    pol = md.get("policy_checkpoint") or md.get("policy") or ""
                    pol = pol.split("#")[-1] if "#" in str(pol) and kind != "medium-expert" else str(pol)
                    rows.append([env_id, kind, len(ds), st.get("episodes"), st.get("complete_episodes"),
                                 st.get("return_mean"), st.get("return_std"), st.get("return_min"), st.get("return_max"),
                                 score, md.get("ref_random_return"), md.get("ref_expert_return"),
                                 md.get("ppo_steps", "-") if kind != "random" else "-",
                                 pol if kind in ("medium", "expert") else md.get("policy", ""),
                                 md.get("build_seconds"), path])
                    print(f"[{env_id} {kind}] {len(ds):,} transitions, score {score:.1f}, {time.time() - t0:.0f} s", flush=True)
            if kept:
                notes.append(f"{env_id}: kept existing datasets ({', '.join(kept)}); rebuild with --overwrite")
            exp_md = next((r[-1] for r in rows if r[0] == env_id and r[1] == "expert"), None)
            if exp_md is not None:
                from rlsuite.data.io import load_minari

                md = load_minari(exp_md).metadata
                curve = md.get("ppo_eval_curve") or []
                med_md = load_minari(dataset_dir(args.out, env_id, "medium")).metadata if "medium" in args.kinds else {}
                rets = [c[1] for c in curve]
                notes.append(
                    f"{env_id}: PPO budget {md.get('ppo_steps'):,} env steps ({len(curve) - 1} segments; config "
                    f"`{md.get('ppo_config')}`), trained in {md.get('ppo_train_seconds', 0):.0f} s "
                    f"({curve[-1][0] / max(md.get('ppo_train_seconds', 1e-9), 1e-9):,.0f} steps/s incl. evaluations); "
                    f"evaluation return of the stochastic policy: start {rets[0]:.1f}, best {max(rets):.1f}, "
                    f"final {rets[-1]:.1f}; medium = {med_md.get('policy', '?')} at "
                    f"{med_md.get('ppo_env_steps_at_snapshot', '?'):,} steps (eval {med_md.get('policy_eval_return', float('nan')):.1f}). "
                    f"Env total {time.time() - t_env:.0f} s this invocation."
                )
        except Exception as e:  # keep going with the other envs; report the failure
            traceback.print_exc()
            notes.append(f"{env_id}: FAILED: {type(e).__name__}: {e}")
        meta = provenance(seeds=[args.seed], datasets_root=os.path.abspath(args.out), total_seconds=round(time.time() - t_all))
        body = (
            "Offline datasets built with `rlsuite.data` (D4RL recipe, O-DICE sheet §7); Minari format, "
            "stored outside the repository under the datasets root. Returns are of complete episodes "
            "(ended by termination or the 1000-step / env time limit); the normalised score uses the "
            "references measured for this env (random = uniform random actions, expert = the stochastic "
            "expert policy, 100 episodes each), never D4RL's MuJoCo numbers. The `gymnax:Pendulum-v1` "
            "rows here (PPO recipe) are *not* the data of `offline_pendulum.md` / `il_pendulum.md`: those "
            "`pendulum-*` sets are collected by `experiments/odice/_common.py` from an epsilon-noisy "
            "hand-written energy/PD controller (medium eps = 0.7, medium-replay eps 1.0 -> 0.7, expert "
            "eps = 0; references: uniform random / the clean controller).\n\n"
            + markdown_table(header[:-1], [r[:-1] for r in rows])
            + "\n\n## Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
        )
        write_markdown(os.path.join(args.results, "datasets.md"), "O-DICE datasets (rlsuite.data)", body, meta)
        write_csv(os.path.join(args.results, "datasets.csv"), header, rows, meta)
    print(f"done in {time.time() - t_all:.0f} s; summary in {args.results}/datasets.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(tyro.cli(Args)))
