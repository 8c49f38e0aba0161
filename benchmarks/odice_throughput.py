"""O-DICE training throughput: gradient steps/s at batch 256 with the paper's network sizes.

Each algorithm is its registered agent (``odice`` with the three gradient rules, ``iql``, ``bc``);
the whole update loop is ``agent.segment`` (fused ``lax.scan``, no per-step host round trip).
``segment`` is compiled for two lengths ``n1 < n2``, both are run after compilation, and
``steps/s = (n2 - n1) / (t2 - t1)`` so compile and dispatch cancel.  Networks: V twin 2x256
LayerNorm, policy 2x1024 Gaussian (sheet §4); IQL: twin Q 2x256 + V 2x256 + the same policy.
Data: a synthetic Dataset of 100k transitions with the shapes of ``--env`` (default gymnax
Pendulum-v1, obs 3 / act 1: cheap to compile; ``--env brax:hopper`` gives obs 11 / act 3, a
negligible difference in update cost), so no built dataset is needed.

    python benchmarks/odice_throughput.py [--n1 200 --n2 1000 --out results/benchmarks/odice_throughput.md]
    python benchmarks/odice_throughput.py --smoke     # CI: tiny, writes to /tmp/rlsuite-smoke/odice
    python benchmarks/odice_throughput.py --algos orthogonal semi --src before=/tmp/base after=.

Ratios (vs semi-gradient DICE, which does one backward pass) are what to compare across machines.
Each row also gives its FLOPs per gradient step (XLA's cost analysis of one compiled update) and
its fraction of the machine's float32 matmul limit at 256x256 (``benchmarks/limits.py``, measured
in the same run): ``steps/s x FLOPs/step / GFLOP/s``.  With ``--src LABEL=DIR`` every timing runs
in a subprocess on that source tree (on ``PYTHONPATH``; see ``benchmarks/ppo_profile.py`` for how
to export one), repeats interleaved across the trees, and the rows get their ratio to the first
tree: the before/after measurement of a change in one run.
The PyTorch reference is not installed here (torch is not a dependency), so no peer timing is
reported; see the Markdown output for what would be needed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Optional

import jax
import numpy as np
import tyro
from limits import matmul_gflops
from ppo_profile import clean_env, run_json

from rlsuite import agents
from rlsuite.core.results import markdown_table, provenance, write_markdown
from rlsuite.data.dataset import Dataset
from rlsuite.envs import make

ALGOS = {  # short name -> (row label, agent, gradient rule or None)
    "orthogonal": ("O-DICE (orthogonal)", "odice", "orthogonal"),
    "true": ("true-gradient DICE", "odice", "true_gradient"),
    "semi": ("semi-gradient DICE", "odice", "semi_gradient"),
    "iql": ("IQL", "iql", None),
    "bc": ("BC", "bc", None),
}


@dataclasses.dataclass
class Args:
    """O-DICE training throughput (gradient steps/s)."""

    n1: int = 200
    """Shorter segment length."""
    n2: int = 1000
    """Longer segment length."""
    batch: int = 256
    """Batch size."""
    reps: int = 3
    """Interleaved repeats; the best time per length is used."""
    algos: tuple[str, ...] = tuple(ALGOS)
    """Which algorithms to time (orthogonal, true, semi, iql, bc); ratios need semi."""
    src: tuple[str, ...] = ()
    """``LABEL=DIR`` source trees to time in subprocesses (``.`` = the working tree); the first is
    the baseline of the ``ratio vs first tree`` column.  Empty: this process, the working tree."""
    env: str = "gymnax:Pendulum-v1"
    """Env that sets the observation / action shapes."""
    smoke: bool = False
    """Tiny sizes (CI): n1=2, n2=4, 2x16 networks, O-DICE and semi-gradient only, one repeat; writes
    under /tmp/rlsuite-smoke/odice."""
    out: Optional[str] = None
    """Markdown output (default results/benchmarks/odice_throughput.md)."""
    worker: bool = False
    """Internal: time in this process and print one JSON line (used with ``--src``)."""


def synthetic_dataset(n: int, obs_dim: int, act_dim: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    term = np.zeros(n, bool)
    tout = np.zeros(n, bool)
    tout[999::1000] = True
    return Dataset.from_arrays(
        observations=obs, actions=rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32), next_observations=np.roll(obs, -1, 0),
        terminals=term, timeouts=tout,
    )


def timed(fn, *args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def network_sizes(smoke: bool) -> dict:
    if smoke:
        return dict(value_hidden=(16, 16), policy_hidden=(16, 16), hidden=(16, 16))
    return dict(value_hidden=(256, 256), policy_hidden=(1024, 1024), hidden=(256, 256))


def time_algos(args: Args) -> dict:
    """``{algo: dict(t=[best t(n1), best t(n2)], compile_s, flops)}`` for ``args.algos`` in this process."""
    nets = network_sizes(args.smoke)
    env, p = make(args.env)
    obs_dim = env.observation_space(p).shape[0]
    act_dim = env.action_space(p).shape[0]
    ds = synthetic_dataset(1000 if args.smoke else 100_000, obs_dim, act_dim)
    ev = dict(eval_episodes=1, eval_horizon=1, batch_size=args.batch, gradient_steps=args.n2, eval_every=args.n2)
    dice = dict(value_hidden=nets["value_hidden"], policy_hidden=nets["policy_hidden"], **ev)
    key = jax.random.PRNGKey(0)
    fns, out = {}, {}
    for algo in args.algos:
        _, agent_name, rule = ALGOS[algo]
        kw = dict(dice, gradient_rule=rule) if rule else dict(policy_hidden=nets["policy_hidden"], **ev)
        if agent_name == "iql":
            kw["hidden"] = nets["hidden"]
        entry = agents.get(agent_name)
        cfg = entry.config(**kw)
        agent, hp = entry.make(cfg, env, p, ds), entry.default_hparams(cfg)
        t0 = time.perf_counter()
        state = jax.block_until_ready(jax.jit(agent.init)(key, hp))
        seg = jax.jit(agent.segment, static_argnums=2)
        c1, c2 = (seg.lower(state, hp, n).compile() for n in (args.n1, args.n2))
        ca = c1.cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        fns[algo] = (c1, c2, state, hp)
        # XLA counts a loop body once: the flops of the n1-step program are those of one update
        out[algo] = dict(t=[np.inf, np.inf], compile_s=time.perf_counter() - t0, flops=float(ca.get("flops", np.nan)))
        print(f"compiled {ALGOS[algo][0]} ({out[algo]['compile_s']:.0f} s, {out[algo]['flops'] / 1e9:.2f} GFLOP/step)",
              flush=True)
    # interleaved repeats, best time of each length: the machine is shared, noise only adds time
    for _ in range(args.reps):
        for algo, (f1, f2, state, hp) in fns.items():
            out[algo]["t"][0] = min(out[algo]["t"][0], timed(f1, state, hp))
            out[algo]["t"][1] = min(out[algo]["t"][1], timed(f2, state, hp))
    return out


def main(args: Args) -> None:
    if args.smoke:
        args.n1, args.n2, args.reps, args.algos = 2, 4, 1, ("orthogonal", "semi")
    for a in args.algos:
        if a not in ALGOS:
            raise ValueError(f"--algos: unknown {a!r}; choose from {sorted(ALGOS)}")
    if args.worker:
        print(json.dumps(time_algos(args)))
        return
    out = args.out or ("/tmp/rlsuite-smoke/odice/odice_throughput.md" if args.smoke else "results/benchmarks/odice_throughput.md")
    load0 = os.getloadavg()[0]
    gflops = matmul_gflops(16 if args.smoke else 256, reps=2 if args.smoke else 5)
    print(f"matmul limit {gflops:.1f} GFLOP/s", flush=True)
    srcs = [s.split("=", 1) for s in args.src]
    for s in srcs:
        if len(s) != 2 or not os.path.isdir(s[1]):
            raise ValueError(f"--src must be LABEL=DIR with an existing DIR, got {'='.join(s)!r}")
    if not srcs:
        got = {"": time_algos(args)}
    else:  # each repeat of each tree in a fresh process, trees interleaved; best times kept
        got = {label: None for label, _ in srcs}
        here = os.path.dirname(os.path.abspath(__file__))
        for _ in range(args.reps):
            for label, path in srcs:
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--reps", "1", "--n1", str(args.n1),
                       "--n2", str(args.n2), "--batch", str(args.batch), "--env", args.env, "--algos", *args.algos]
                pp = None if os.path.abspath(path) == os.path.dirname(here) else path
                res = run_json(cmd, dict(clean_env(pythonpath=pp), PYTHONPATH=os.pathsep.join(filter(None, [pp, here]))))
                res.pop("process_wall_s")
                if got[label] is None:
                    got[label] = res
                for algo, r in res.items():
                    got[label][algo]["t"] = [min(a, b) for a, b in zip(got[label][algo]["t"], r["t"])]
                print(f"{label}: " + ", ".join(f"{a} {(args.n2 - args.n1) / (r['t'][1] - r['t'][0]):.1f} steps/s"
                                               for a, r in res.items()), flush=True)
    rows, first = [], next(iter(got))
    for label, res in got.items():
        for algo, r in res.items():
            t1, t2 = r["t"]
            rate = (args.n2 - args.n1) / (t2 - t1) if t2 > t1 else float("nan")  # nan: below timer noise (smoke)
            r["rate"] = rate
            base = got[first][algo]["t"]
            base_rate = (args.n2 - args.n1) / (base[1] - base[0]) if base[1] > base[0] else float("nan")
            semi = res.get("semi")
            rows.append([label or "working tree", ALGOS[algo][0], round(rate, 1), round(1e3 / rate, 2),
                         round(r["compile_s"], 1), round(r["flops"] / 1e9, 3), round(rate * r["flops"] / 1e9 / gflops, 3),
                         round(rate / base_rate, 3),
                         round(rate / ((args.n2 - args.n1) / (semi["t"][1] - semi["t"][0])), 2) if semi else "-"])
            print(f"{label:10s} {ALGOS[algo][0]:22s} {rate:8.1f} steps/s  {r['flops'] / 1e9:.2f} GFLOP/step  "
                  f"{rows[-1][6]:.2f} of the matmul limit", flush=True)
    nets = network_sizes(args.smoke)
    body = markdown_table(["source", "algorithm", "grad steps/s", "ms/step", "compile s (both lengths)", "GFLOP/step",
                           "fraction of matmul limit", "ratio vs first tree", "ratio vs semi-gradient"], rows)
    body += (
        f"\n\nBatch {args.batch}; V twin {nets['value_hidden']} LayerNorm, policy {nets['policy_hidden']} "
        f"(IQL: twin Q {nets['hidden']}, V {nets['hidden']}, same policy); "
        f"synthetic data; rate = ({args.n2}-{args.n1}) steps / (t({args.n2}) - t({args.n1})) "
        f"of the agent's `segment`, with both lengths compiled beforehand and the best of {args.reps} interleaved repeats, "
        "so compile and dispatch cancel.  GFLOP/step: XLA's cost analysis of one update (all ops, not only "
        f"matmuls); fraction of matmul limit = steps/s x GFLOP/step / {gflops:.1f} GFLOP/s (float32 256x256 matmul, "
        "benchmarks/limits.py, this run).  O-DICE runs V-bar on [s; s'], V on s and on s' separately, and three "
        "vector-Jacobian products each over the half of the batch its term depends on (linear and forward: s; "
        "backward: s'), plus one dot product over the flattened parameters.  The policy (2x1024) dominates the cost.\n\n"
        "PyTorch peer: torch is not installed in this environment (not a project dependency), so the official "
        "PyTorch implementation was not timed here.  The load average at the start and end of the run is in the "
        "header (the machine has 2 cores): under load, absolute numbers are noisy and only the ratios within one "
        "run are meaningful.\n"
    )
    meta = provenance(seeds=[0], n1=args.n1, n2=args.n2, batch=args.batch, smoke=args.smoke,
                      matmul_256_gflops=round(gflops, 2),
                      load_avg_1min_start_end=[round(load0, 1), round(os.getloadavg()[0], 1)], sources=dict(srcs) or "this process (working tree)")
    write_markdown(out, "O-DICE training throughput (CPU)" + (" [SMOKE]" if args.smoke else ""), body, meta)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
