"""``rlsuite data ...``: build and inspect offline datasets.

::

    rlsuite data build --env brax:hopper --kind medium --size 100000 --out /work/datasets/brax-hopper-medium-v0 \
        [--seed 0] [--ppo-steps 1000000] [--num-envs 64] [--cache-dir DIR] [--random-policy network|uniform] \
        [--backend spring] [--episode-length 1000] [--overwrite]
    rlsuite data info PATH [--json]

``build`` writes a Minari dataset directory (``PATH/data/...``).  PPO runs and the reference
returns are cached in ``--cache-dir`` (default: ``<dirname of --out>/_cache``) so building
``medium``, ``expert``, ``medium-replay`` and ``medium-expert`` for one env trains PPO once.
``info`` reads a Minari directory / id or a D4RL-layout HDF5 file and prints size, episodes,
return statistics, the reference returns and the data's normalised score.

Also runnable as ``python -m rlsuite.data.cli ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlsuite data", description="Build and inspect offline RL datasets (D4RL recipe, Minari format).")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="collect a dataset through the rollout engine and save it (Minari)")
    b.add_argument("--env", required=True, help="registered env id, e.g. brax:hopper, gymnax:Pendulum-v1")
    b.add_argument("--kind", required=True, help="random | medium | expert | medium-replay | medium-expert")
    b.add_argument("--size", type=int, default=100_000, help="transitions per collected dataset (medium-replay: cap)")
    b.add_argument("--out", required=True, help="output directory (Minari layout); its name is the dataset id, e.g. hopper-medium-v0")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--ppo-steps", type=int, default=1_000_000, help="PPO training budget in env steps (medium/expert/replay)")
    b.add_argument("--num-envs", type=int, default=64, help="parallel envs for collection")
    b.add_argument("--num-segments", type=int, default=40, help="PPO snapshots (medium granularity, replay segments)")
    b.add_argument("--eval-episodes", type=int, default=10, help="episodes per PPO snapshot evaluation")
    b.add_argument("--ref-episodes", type=int, default=100, help="episodes for the random / expert reference returns")
    b.add_argument("--random-policy", default="network", choices=("network", "uniform"))
    b.add_argument("--cache-dir", default=None, help="PPO runs + references.json (default: <out dir>/../_cache)")
    b.add_argument("--backend", default=None, help="Brax backend (default: rlsuite's, spring)")
    b.add_argument("--episode-length", type=int, default=None, help="Brax episode length (default 1000)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    b.add_argument("--quiet", action="store_true", help="no progress display")
    i = sub.add_parser("info", help="print statistics of a dataset (Minari dir / id, or D4RL .hdf5)")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    return p


class _RichProgress:
    """Progress display (rich) fed by the collector's ``progress(message, done, total)`` calls."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._prog = None
        self._task = None
        self._label = None
        self._t0 = time.time()
        self._last = 0.0
        self._d0 = 0.0

    def __enter__(self):
        if self.enabled and sys.stdout.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._prog = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), transient=False)
            self._prog.__enter__()
        return self

    def __exit__(self, *exc):
        if self._prog is not None:
            self._prog.__exit__(*exc)

    def __call__(self, msg: str, done: float, total: float) -> None:
        stem = msg.split(" (")[0].split(" segment")[0]
        if self.enabled and not sys.stdout.isatty():  # logs: a plain line per stage and every 30 s
            now = time.time()
            if stem != self._label or now - self._last >= 30 or done >= total:
                if stem != self._label:
                    self._label, self._t0, self._d0 = stem, now, done
                rate = (done - self._d0) / max(now - self._t0, 1e-9)
                print(f"[{time.strftime('%H:%M:%S')}] {msg}: {done:,.0f}/{total:,.0f} ({rate:,.0f}/s)", flush=True)
                self._last = now
            return
        if self._prog is None:
            return
        if stem != self._label:
            self._label = stem
            self._t0 = time.time()
            self._task = self._prog.add_task(msg, total=max(total, 1), rate="")
        dt = max(time.time() - self._t0, 1e-9)
        self._prog.update(self._task, completed=done, total=max(total, 1), description=msg, rate=f"{done / dt:,.0f}/s")


def _build(args) -> int:
    from rlsuite.data.collect import Builder, BuildSpec
    from rlsuite.data.io import save_minari

    env_kwargs = {}
    if args.backend is not None:
        env_kwargs["backend"] = args.backend
    if args.episode_length is not None:
        env_kwargs["episode_length"] = args.episode_length
    out = os.path.abspath(args.out)
    if os.path.exists(os.path.join(out, "data")) and not args.overwrite:
        raise ValueError(f"a dataset already exists at {out}; pass --overwrite to replace it")
    cache = args.cache_dir or os.path.join(os.path.dirname(out), "_cache")
    spec = BuildSpec(
        env_id=args.env, kind=args.kind, size=args.size, seed=args.seed, ppo_steps=args.ppo_steps,
        num_envs=args.num_envs, num_segments=args.num_segments, eval_episodes=args.eval_episodes,
        ref_episodes=args.ref_episodes, random_policy=args.random_policy, env_kwargs=env_kwargs,
        cache_dir=cache, command="rlsuite data " + " ".join(shlex.quote(a) for a in args.argv),
    )
    t0 = time.time()
    with _RichProgress(not args.quiet) as prog:
        ds = Builder(spec, prog).build(spec.kind)
    ds = ds.with_metadata(build_seconds=round(time.time() - t0, 1))
    path = save_minari(ds, out, overwrite=args.overwrite)
    print(f"wrote {len(ds):,} transitions ({ds.num_episodes} episodes) to {path} in {time.time() - t0:.0f} s")
    _print_info(ds, out)
    return 0


def info_dict(ds) -> dict:
    from rlsuite.data.references import dataset_normalized_score

    md = ds.metadata
    out = {"path": md.get("loaded_from"), "env_id": md.get("env_id"), "kind": md.get("kind")}
    out.update(ds.summary())
    out["ref_random_return"] = md.get("ref_random_return")
    out["ref_expert_return"] = md.get("ref_expert_return")
    out["ref_source"] = md.get("ref_source")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score = float(dataset_normalized_score(ds))
        out["normalized_score"] = score if score == score else None
        if score != score:
            out["normalized_score_note"] = "undefined: the dataset has no complete episode"
    except ValueError as e:
        out["normalized_score"] = None
        out["normalized_score_note"] = str(e)
    for k in ("seed", "command", "policy", "policy_checkpoint", "created", "ppo_steps", "policy_eval_return"):
        if md.get(k) is not None:
            out[k] = md[k]
    return out


def _print_info(ds, path: str | None = None, as_json: bool = False) -> None:
    d = info_dict(ds)
    if path:
        d["path"] = path
    if as_json:
        print(json.dumps(d, indent=1, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"dataset {d.get('path')}", show_header=False)
    for k, v in d.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        t.add_row(k, str(v))
    Console().print(t)


def _info(args) -> int:
    from rlsuite.data.io import load

    ds = load(args.path)
    _print_info(ds, args.path, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``rlsuite data ...``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    if args.cmd == "build":
        return _build(args)
    return _info(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
