"""PPO on gymnax CartPole-v1, 500k steps: rlsuite vs rejax 0.1.3, same hyper-parameters.

Each measurement runs in its own subprocess with a clean environment (fresh JAX, no persistent
compilation cache, ``XLA_FLAGS`` stripped of the scheduler flag ``import rlsuite`` sets: the
driver imports rlsuite only after every worker has run, see ``ppo_profile.clean_env``), so each
library runs on its own defaults: rlsuite's PPO in this venv (and, as ``rlsuite-noflag``, with
jaxlib's default scheduler), rejax in the separate benchmark venv (benchmarks/rejax_env.sh,
because rejax needs gymnax<1.0).  The rlsuite worker is ``ppo_profile.ours_worker``.  Both workers time the same way: AOT compile of the whole
jitted ``train`` (1 seed, or ``vmap`` over 16 seeds), then the compiled function runs (twice
for 1 seed, keeping the faster; once for 16 seeds): ``run_s`` is "without compile",
``first_total_s`` = compile + first run is "with compile"; the process
wall time (imports included) is measured here.  Final return: mean undiscounted return of the
stochastic policy over 128 fresh episodes per seed (our engine's episode mode / rejax's
``evaluate``), after timing.

Our side is built through the agent protocol: ``agents.get("ppo").make(config, env, params)``
composed by ``rlsuite.core.agent.make_train`` (what ``rlsuite train ppo`` and the sweeps run).

Hyper-parameters: PureJaxRL's CartPole config (rlsuite's ``PPOConfig()`` defaults): 4 envs x 128
steps, 4 epochs x 4 minibatches, lr 2.5e-4, gamma 0.99, lambda 0.95, clip 0.2, ent 0.01, vf 0.5,
max grad norm 0.5, tanh 64x64.  Known differences rejax cannot express: rejax has no
learning-rate annealing (ours anneals linearly, PureJaxRL's default) and keeps separate actor and
critic optimisers; rlsuite bootstraps time-outs from the final observation.

Usage:
    bash benchmarks/rejax_env.sh                # once: creates runs/bench-venv
    python benchmarks/ppo_vs_rejax.py           # 1 and 16 seeds, writes results/benchmarks/ppo_vs_rejax.md
    python benchmarks/ppo_vs_rejax.py --seeds 1 --total-timesteps 100000   # quick check
    python benchmarks/ppo_vs_rejax.py --smoke   # CI: tiny run of our side only, writes to /tmp

Without the rejax venv (and always with ``--smoke``) the rejax side is skipped with a message and
only our side is timed; the table is then written only outside results/ (``--out``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from typing import Optional

import tyro
from ppo_profile import ENV_ID, clean_env, floor_s, ours_worker, ppo_hparams, run_json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "results", "benchmarks")
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


@dataclasses.dataclass(frozen=True)
class Args:
    """PPO CartPole-v1: rlsuite vs rejax 0.1.3, same hyper-parameters, each in its own clean process."""

    seeds: tuple[int, ...] = (1, 16)
    """Seed counts to time (vmapped)."""
    total_timesteps: int = 500_000
    """Environment steps per seed."""
    repeats: int = 3
    """Alternate the workers this many times; medians (and medians of the per-repeat ratios) are reported."""
    noflag: bool = True
    """Also time rlsuite without its scheduler workaround flag (the jaxlib default scheduler)."""
    one_thread: bool = True
    """Also time rlsuite and rejax on one CPU-runtime thread (``--cpu-threads 1``, ``PJRT_NPROC=1``)."""
    eval_episodes: int = 128
    """Fresh episodes per seed of the final (stochastic-policy) return."""
    timeout: float = 600.0
    """Seconds before a worker counts as hung (the jaxlib scheduler deadlock) and is killed."""
    venv: str = os.environ.get("REJAX_VENV", os.path.join(ROOT, "runs", "bench-venv"))
    """The rejax virtualenv (benchmarks/rejax_env.sh creates it; $REJAX_VENV overrides)."""
    out: str = OUT
    """Output folder of ppo_vs_rejax.{md,csv} (``--smoke``: /tmp/rlsuite-smoke/benchmarks unless given)."""
    smoke: bool = False
    """CI: 1 seed, 2048 steps with 4 envs x 32 steps and a 16-unit net, 8 evaluation episodes, rejax
    and the no-flag row skipped; never writes results/."""
    worker: Optional[str] = None
    """Internal: run one rlsuite timing worker for this JSON spec and print one JSON line."""


SMOKE = dict(seeds=(1,), total_timesteps=2048, eval_episodes=8, repeats=1, noflag=False, one_thread=False)
SMOKE_CONFIG = dict(num_envs=4, num_steps=32, hidden=[16])


# ----------------------------------------------------------------------------- driver


def run_worker(lib: str, seeds: int, hp: dict, args: Args) -> dict:
    """One timing worker in its own clean process (:func:`ppo_profile.clean_env`).

    ``rlsuite`` runs on its own defaults (it sets the scheduler workaround flag on import),
    ``rlsuite-noflag`` with the concurrency-optimised scheduler explicitly on (jaxlib's default,
    i.e. without the workaround), ``rejax`` on its own defaults (no rlsuite flag in its env);
    ``-1thread``: the same with ``PJRT_NPROC=1`` (jaxlib's CPU runtime on one thread)."""
    if lib.startswith("rlsuite"):
        cmd = [sys.executable, os.path.join(HERE, "ppo_vs_rejax.py"), "--worker", json.dumps(dict(seeds=seeds, hp=hp))]
    else:
        cmd = [os.path.join(args.venv, "bin", "python"), os.path.join(HERE, "_rejax_ppo.py"), "--seeds", str(seeds),
               "--hparams", json.dumps(hp)]
    env = clean_env("on" if lib == "rlsuite-noflag" else "default", threads=1 if lib.endswith("-1thread") else None)
    try:
        res = run_json(cmd, env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"{lib:15s} seeds={seeds:2d}  HUNG (killed after {args.timeout:.0f} s)", flush=True)
        return dict(lib=lib, hung=True)
    res["lib"] = lib
    print(
        f"{lib:15s} seeds={seeds:2d}  compile {res['compile_s']:6.2f}s  run {res['run_s']:7.2f}s  "
        f"compile+run {res['first_total_s']:7.2f}s  process {res['process_wall_s']:7.2f}s  "
        f"return {res['final_return_mean']:6.1f}",
        flush=True,
    )
    return res


def peer_status(args: Args) -> str | None:
    """Why the rejax side is skipped (None: it runs)."""
    if args.smoke:
        return "smoke mode"
    if not os.path.exists(os.path.join(args.venv, "bin", "python")):
        return f"rejax venv {args.venv!r} not found (create it with `bash benchmarks/rejax_env.sh`)"
    return None


def main(args: Args):
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(ours_worker(int(spec["seeds"]), spec["hp"])))
        return
    overrides = {}
    if args.smoke:
        args = dataclasses.replace(args, **SMOKE, out=SMOKE_OUT if args.out == OUT else args.out)
        overrides = SMOKE_CONFIG
    for name in ("total_timesteps", "repeats", "eval_episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.seeds or min(args.seeds) < 1:
        raise ValueError(f"--seeds must be positive seed counts, got {args.seeds}")
    skip = peer_status(args)
    libs = (("rlsuite",) + (("rlsuite-noflag",) if args.noflag else ()) + (("rlsuite-1thread",) if args.one_thread else ())
            + (() if skip else ("rejax",) + (("rejax-1thread",) if args.one_thread else ())))
    if skip:
        print(f"rejax: SKIPPED ({skip}); timing rlsuite only", flush=True)
    hp = ppo_hparams(args.total_timesteps, eval_episodes=args.eval_episodes, **overrides)
    load0 = os.getloadavg()[0]
    lim = run_json([sys.executable, os.path.join(HERE, "ppo_profile.py"), "--worker", json.dumps(dict(
        kind="limits", num_envs=[hp["num_envs"] * s for s in args.seeds], steps=200_000 if not args.smoke else 4096))],
        clean_env())
    got: dict = {(lib, s): [] for lib in libs for s in args.seeds}
    for _ in range(args.repeats):
        for seeds in args.seeds:
            for lib in libs:
                got[(lib, seeds)].append(run_worker(lib, seeds, hp, args))

    if skip and not args.smoke and os.path.abspath(args.out) == os.path.abspath(OUT):
        print(f"not writing {os.path.relpath(OUT, ROOT)}/ppo_vs_rejax.md without the rejax side "
              "(pass --out DIR to keep an rlsuite-only table)")
        return
    write_tables(args, hp, got, libs, lim, load0)


def _med(xs) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def _field(res: list[dict], k: str) -> list[float]:
    return [r[k] if not r.get("hung") else float("nan") for r in res]


def write_tables(args: Args, hp: dict, got: dict, libs, lim: dict, load0: float = float("nan")) -> None:
    from rlsuite.core import results  # only now: every worker has run

    rows, ratio_rows, noflag_rows, thread_rows = [], [], [], []
    for seeds in args.seeds:
        for lib in libs:
            res = got[(lib, seeds)]
            hung = sum(bool(r.get("hung")) for r in res)
            rets = [x for r in res if not r.get("hung") for x in r["final_returns"]]
            rows.append([lib, seeds, len(res), hung, _med(_field(res, "compile_s")), _med(_field(res, "run_s")),
                         _med(_field(res, "first_total_s")), _med(_field(res, "process_wall_s")),
                         _med(_field(res, "run_s")) / floor_s(hp, lim, seeds),
                         sum(rets) / len(rets) if rets else float("nan"), min(rets) if rets else float("nan")])
        if "rejax" not in libs:
            continue
        pr = lambda a, b, k: _med([x[k] / y[k] if not (x.get("hung") or y.get("hung")) else float("nan")  # noqa: E731
                                   for x, y in zip(got[(a, seeds)], got[(b, seeds)])])
        ratio_rows.append([seeds, pr("rlsuite", "rejax", "run_s"), pr("rlsuite", "rejax", "first_total_s"),
                           pr("rlsuite", "rejax", "process_wall_s"), pr("rlsuite", "rejax", "compile_s")])
        print(f"seeds={seeds:2d}  ours/rejax  run {ratio_rows[-1][1]:.3f}  compile+run {ratio_rows[-1][2]:.3f}")
        for a, b in (("rlsuite-1thread", "rejax"), ("rlsuite-1thread", "rejax-1thread")):
            if a in libs and b in libs:
                thread_rows.append([f"{a} / {b}", seeds, pr(a, b, "run_s"), pr(a, b, "first_total_s"),
                                    pr(a, b, "process_wall_s")])
        if "rlsuite-noflag" in libs:
            noflag_rows.append([seeds, pr("rlsuite-noflag", "rejax", "run_s"),
                                pr("rlsuite-noflag", "rejax", "first_total_s"), pr("rlsuite", "rlsuite-noflag", "run_s")])
    meta = results.provenance(
        seeds=list(args.seeds), repeats=args.repeats, env=ENV_ID,
        env_steps_per_seed=(hp["total_timesteps"] // (hp["num_envs"] * hp["num_steps"])) * hp["num_envs"] * hp["num_steps"],
        rejax_jax=next((r["jax"] for r in got.get(("rejax", args.seeds[0]), []) if not r.get("hung")), "skipped"),
        load_avg_1min_start_end=[round(load0, 1), round(os.getloadavg()[0], 1)], matmul_64_gflops=round(lim["gflops64"], 2), bare_env_steps_per_s={k: round(v) for k, v in lim["env_sps"].items()},
        hparams=json.dumps(hp),
    )
    header = ["lib", "seeds", "repeats", "hung", "compile_s", "run_s", "compile_plus_run_s", "process_wall_s",
              "run_over_floor", "final_return_mean", "final_return_min_seed"]
    results.write_csv(os.path.join(args.out, "ppo_vs_rejax.csv"), header, rows, meta)
    ratios = (
        results.markdown_table(["seeds", "run (no compile)", "compile+run", "process", "compile"], ratio_rows)
        if ratio_rows else "rejax side skipped: no ratios."
    )
    if noflag_rows:
        ratios += "\n\nWithout the scheduler workaround (`rlsuite-noflag`):\n\n" + results.markdown_table(
            ["seeds", "noflag / rejax run", "noflag / rejax compile+run", "flag cost (rlsuite / noflag run)"], noflag_rows)
    if thread_rows:
        ratios += ("\n\nOne CPU-runtime thread (`rlsuite train ... --cpu-threads 1`, i.e. `PJRT_NPROC=1`; "
                   "rejax-1thread: rejax given the same setting):\n\n") + results.markdown_table(
            ["ratio", "seeds", "run", "compile+run", "process"], thread_rows)
    body = "\n".join([
        "PPO CartPole-v1, same hyper-parameters (PureJaxRL's), every worker in its own clean process "
        "(no compilation cache; `XLA_FLAGS` stripped of rlsuite's scheduler flag, so rejax runs on its own "
        "defaults; the driver imports rlsuite only after all workers), timed identically: AOT compile, then the "
        "compiled `train` (vmapped over seeds); `run` = without compile, `compile+run` = with compile, "
        "`process` = whole subprocess incl. imports; medians over the repeats. `rlsuite` = our defaults "
        "(the scheduler workaround flag on), `rlsuite-noflag` = jaxlib's default scheduler, `-1thread` = "
        "`PJRT_NPROC=1` (one CPU-runtime thread). "
        "Floor = bare env loop (same number of vmapped envs) + actor/critic matmul FLOPs at the 64x64 matmul "
        "limit (benchmarks/limits.py, same run). Final return: stochastic policy, "
        f"{hp['eval_episodes']} fresh episodes per seed.",
        "",
        results.markdown_table(
            ["lib", "seeds", "n", "hung", "compile s", "run s", "compile+run s", "process s",
             "run / floor (target <= 1.3)", "mean final return", "worst seed"], rows),
        "",
        "## Ratios ours / rejax, medians of the per-repeat ratios (targets: run <= 0.8, compile+run <= 0.9)",
        "",
        ratios,
        "",
        "Differences rejax cannot express: no learning-rate annealing in rejax (ours anneals, as "
        "PureJaxRL), separate actor/critic optimisers in rejax; rlsuite bootstraps time-outs. "
        "Load average at the start and end of the run is in the header.",
    ])
    results.write_markdown(os.path.join(args.out, "ppo_vs_rejax.md"), "PPO: rlsuite vs rejax", body, meta)
    print("wrote", os.path.normpath(os.path.join(args.out, "ppo_vs_rejax.md")))


if __name__ == "__main__":
    main(tyro.cli(Args))
