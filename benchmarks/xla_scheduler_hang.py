"""Which programs hang under jaxlib 0.10.2's concurrency-optimised CPU scheduler, and which settings
keep the hang away (issue 17; the workaround is the flag ``import rlsuite`` sets).

Each cell runs one small program in a fresh process (no compilation cache) under one runtime
setting and reports ``ok`` with its run time, or ``HANG`` when it has not finished ``--timeout``
seconds after compiling (a hung process sits at 0% CPU with every runtime thread parked; it never
finishes).  The programs, from the regression test's program down to pieces of it:

- ``ppo``: ``jit(vmap(lambda k: train(k, hp)[0].params))`` of PPO CartPole-v1 (20 updates), 4 keys
  (tests/test_xla_workaround.py);  ``ppo-metrics``: the same returning the metrics too;
  ``ppo-2seeds`` / ``ppo-1seed``: 2 keys / no vmap;  ``ppo-tree-adam``: ``ppo`` with the optimiser
  before issue 17 (clip + Adam per parameter leaf instead of on one flattened vector);
- ``rollout+sgd-scan``: PPO's rollout and GAE, then a ``lax.scan`` of 4 SGD steps on the
  rollout's batch (no Adam, no minibatches);  ``rollout+1-step``: one SGD step instead of the scan;
  ``const+sgd-scan``: the scan on a constant batch (so it does not depend on the rollout);
- ``synthetic``: pure JAX, a linear-tanh "environment" scanned for 128 steps then a scan of SGD
  steps on its data, vmapped over 4 keys (the same loop structure with no gymnax and no rlsuite).

Settings: ``concurrency`` = jaxlib's default scheduler; ``rlsuite flag`` = the memory-optimised
scheduler (``--xla_cpu_enable_concurrency_optimized_scheduler=false``, what rlsuite sets);
``concurrency+region-copies`` = default scheduler with
``--xla_cpu_copy_insertion_use_region_analysis=true``; ``concurrency, 1 thread`` = default
scheduler with ``PJRT_NPROC=1`` (``--cpu-threads 1``).

    python benchmarks/xla_scheduler_hang.py         # writes results/benchmarks/xla_scheduler_hang.md
    python benchmarks/xla_scheduler_hang.py --smoke # CI: one cell
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Optional

import tyro
from ppo_profile import clean_env

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "results", "benchmarks", "xla_scheduler_hang.md"))
SETTINGS = {  # label -> (scheduler, extra XLA flag, CPU-runtime threads) for ppo_profile.clean_env
    "concurrency": ("on", None, None),
    "rlsuite flag": ("off", None, None),
    "concurrency+region-copies": ("on", "--xla_cpu_copy_insertion_use_region_analysis=true", None),
    "concurrency, 1 thread": ("on", None, 1),
}
PROGRAMS = ("ppo", "ppo-tree-adam", "ppo-metrics", "ppo-2seeds", "ppo-1seed", "rollout+sgd-scan", "rollout+1-step",
            "const+sgd-scan", "synthetic")


@dataclasses.dataclass
class Args:
    """Hang matrix of the jaxlib CPU scheduler deadlock."""

    timeout: float = 30.0
    """Seconds after compiling before a program counts as hung."""
    programs: tuple[str, ...] = PROGRAMS
    settings: tuple[str, ...] = tuple(SETTINGS)
    out: str = OUT
    smoke: bool = False
    """CI: one program (``ppo-1seed``) under the rlsuite flag; writes under /tmp/rlsuite-smoke."""
    worker: Optional[str] = None
    """Internal: build, compile and run this program; print one JSON line."""


# ----------------------------------------------------------------------------- programs (worker)


def ppo_program(name: str):
    import jax
    import jax.numpy as jnp
    import optax

    from rlsuite.agents import actor_critic as ac
    from rlsuite.agents import ppo
    from rlsuite.core.agent import make_train
    from rlsuite.envs import make

    env, params = make("gymnax:CartPole-v1")
    cfg = ppo.PPOConfig(total_timesteps=512 * 20)
    hp = ppo.default_hparams(cfg)
    if name == "ppo-tree-adam":
        def tree_adam(hp):  # ac.make_optimizer before optax.flatten
            sched = lambda count: hp.lr * (1.0 - (count // 16) / cfg.num_updates)
            return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), optax.adam(sched, eps=1e-5))

        train = make_train(ac.make_agent(cfg, env, params, ppo._make_learn(cfg), tree_adam))
    elif name.startswith("ppo"):
        train = ppo.make_train(cfg, env, params)
    else:
        def learn(state, batch, hp, net, discrete, optimizer, key):
            flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
            if name.startswith("const"):
                flat = jax.tree.map(jnp.ones_like, flat)

            def sgd(p, _):
                g, _m = jax.grad(ppo.ppo_loss, has_aux=True)(p, net, discrete, flat, hp)
                return jax.tree.map(lambda a, b: a - 1e-3 * b, p, g), None

            p = sgd(state.params, None)[0] if name == "rollout+1-step" else jax.lax.scan(sgd, state.params, None, 4)[0]
            return p, state.opt_state, {}

        train = make_train(ac.make_agent(cfg, env, params, learn, ppo._optimizer_fn(cfg)))
    body = (lambda k: train(k, hp)) if name == "ppo-metrics" else (lambda k: train(k, hp)[0].params)
    n = {"ppo-2seeds": 2, "ppo-1seed": 0}.get(name, 4)
    keys = jax.random.split(jax.random.PRNGKey(0), max(n, 1))
    return (jax.jit(jax.vmap(body)), keys) if n else (jax.jit(body), keys[0])


def synthetic_program():
    import jax
    import jax.numpy as jnp

    def train(k):
        k1, k2 = jax.random.split(k)
        p = {"w1": jax.random.normal(k1, (4, 64)) * 0.1, "w2": jax.random.normal(k2, (64, 1)) * 0.1}

        def update(c, _):
            p, s, k = c

            def step(c, _):
                s, k = c
                k, kk = jax.random.split(k)
                a = jnp.tanh(s @ p["w1"]) @ p["w2"]
                return (0.9 * s + 0.1 * a + jax.random.normal(kk, s.shape), k), (s, a[:, 0])

            (s, k), (xs, ys) = jax.lax.scan(step, (s, k), None, 128)
            xs, ys = xs.reshape(-1, 4), ys.reshape(-1, 1)
            loss = lambda p: jnp.mean((jnp.tanh(xs @ p["w1"]) @ p["w2"] - ys) ** 2)
            p = jax.lax.scan(lambda p, _: (jax.tree.map(lambda a, b: a - 1e-3 * b, p, jax.grad(loss)(p)), None),
                             p, None, 4)[0]
            return (p, s, k), None

        return jax.lax.scan(update, (p, jnp.zeros((4, 4)), k), None, 20)[0][0]

    return jax.jit(jax.vmap(train)), jax.random.split(jax.random.PRNGKey(0), 4)


def worker(name: str) -> None:
    import jax

    fn, args = synthetic_program() if name == "synthetic" else ppo_program(name)
    compiled = fn.lower(args).compile()
    print("COMPILED", flush=True)
    t = time.perf_counter()
    jax.block_until_ready(compiled(args))
    print(json.dumps({"program": name, "run_s": time.perf_counter() - t}), flush=True)


# ----------------------------------------------------------------------------- driver


def run_cell(program: str, setting: str, timeout: float) -> str:
    """``ok <run time>`` or ``HANG`` (no exit ``timeout`` seconds after the worker compiled)."""
    scheduler, flag, threads = SETTINGS[setting]
    env = clean_env(scheduler, threads=threads)
    if flag:
        env["XLA_FLAGS"] = f"{env['XLA_FLAGS']} {flag}"
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", program], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd="/tmp")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # blocks until compiled (or the worker died)
    if not first.startswith("COMPILED"):
        proc.wait()
        raise RuntimeError(f"{program} under {setting} failed before running (rc {proc.returncode})")
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "HANG"
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{program} under {setting} failed (rc {proc.returncode})")
    return f"ok {json.loads(out.strip().splitlines()[-1])['run_s']:.2f} s"


def main(args: Args) -> None:
    if args.worker:
        return worker(args.worker)
    if args.smoke:
        args = dataclasses.replace(args, programs=("ppo-1seed",), settings=("rlsuite flag",),
                                   out="/tmp/rlsuite-smoke/benchmarks/xla_scheduler_hang.md" if args.out == OUT else args.out)
    for p in args.programs:
        if p not in PROGRAMS:
            raise SystemExit(f"unknown program {p!r}; choose from {PROGRAMS}")
    for s in args.settings:
        if s not in SETTINGS:
            raise SystemExit(f"unknown setting {s!r}; choose from {tuple(SETTINGS)}")
    sys.path.insert(0, os.path.dirname(HERE))
    from rlsuite.core.results import markdown_table, provenance, write_markdown

    rows = []
    for p in args.programs:
        row = [p]
        for s in args.settings:
            row.append(run_cell(p, s, args.timeout))
            print(f"{p:18s} {s:28s} {row[-1]}", flush=True)
        rows.append(row)
    load = os.getloadavg()[0]
    body = (
        f"A cell is `HANG` when the program had not finished {args.timeout:.0f} s after compiling (it "
        "never finishes: all runtime threads parked on a futex, 0% CPU, main thread in "
        "`BlockUntilReady`); otherwise its run time.  See the script's docstring for the programs.\n\n"
        + markdown_table(["program"] + list(args.settings), rows)
    )
    write_markdown(args.out, "jaxlib 0.10.2 CPU scheduler deadlock: programs x settings", body,
                   provenance(seeds=[0], timeout_s=args.timeout, load_avg_1min_end=round(load, 2),
                              jax=__import__("jax").__version__))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
