"""PPO CartPole-v1 profile: compile, rollout phase, update phase, against this machine's floor.

Every measurement runs in its own subprocess with a clean environment (:func:`clean_env`: no
compilation cache, and ``XLA_FLAGS`` without rlsuite's scheduler flag unless a row sets it), so
the driver never imports rlsuite before spawning and nothing leaks between workers.

A worker (:func:`ours_worker`, also the rlsuite side of ``benchmarks/ppo_vs_rejax.py``) builds PPO
through the agent protocol (``agents.get("ppo").make`` + ``core.agent.make_train``, the runner's
path), AOT-compiles the whole jitted ``train`` (``compile``), runs it twice and keeps the faster
(``run``).  With ``phases`` it also times, compiled separately, ``num_updates`` rollouts alone
(``actor_critic.collect``: engine + GAE targets, params fixed) and ``num_updates`` learning steps
alone (PPO's epochs of minibatch steps on one fixed batch): ``rollout`` and ``update``.

Floor = bare env loop + network FLOPs at the matmul limit (both from ``benchmarks/limits.py``,
measured in their own worker in the same run): ``steps / bare_steps_per_s(N) + steps * F /
GFLOP/s(64x64)`` with ``F`` = matmul FLOPs per env step of the actor and critic: one forward pass
to act, ``update_epochs`` x (forward + backward = 3 forward passes) to learn.

Unmodified-code comparison (``--src LABEL=DIR``): the same workers on another source tree put on
``PYTHONPATH`` (e.g. ``git archive HEAD rlsuite envs | tar -x -C DIR && mv DIR/envs DIR/rlsuite/``),
interleaved with the working tree; each row reports its median run time and its ratio to the
first ``--src`` (the baseline).  ``--flags`` adds rows without the scheduler workaround flag.

    python benchmarks/ppo_profile.py                                   # writes results/benchmarks/ppo_profile.md
    python benchmarks/ppo_profile.py --src base=/tmp/base new=.        # ratios vs unmodified code
    python benchmarks/ppo_profile.py --smoke                           # CI: tiny, writes to /tmp
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "results", "benchmarks")
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"
ENV_ID = "gymnax:CartPole-v1"
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"  # what `import rlsuite` sets to false


def clean_env(scheduler: str = "default", pythonpath: str | None = None, threads: int | None = None) -> dict:
    """Environment of a benchmark worker subprocess: CPU, no persistent compilation cache, and
    ``XLA_FLAGS`` stripped of the scheduler flag; ``scheduler="default"`` leaves the worker's
    library to its own defaults (rlsuite sets the flag to false on import, rejax does not),
    ``"on"`` / ``"off"`` sets the concurrency-optimised scheduler explicitly (rlsuite then keeps it).
    ``threads``: ``PJRT_NPROC`` (the CPU runtime's thread count, ``--cpu-threads``); ``None`` leaves
    jaxlib's default (one per core), never an inherited value."""
    if scheduler not in ("default", "on", "off"):
        raise ValueError(f"scheduler must be default, on or off, got {scheduler!r}")
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(SCHEDULER_FLAG)]
    if scheduler != "default":
        flags.append(f"{SCHEDULER_FLAG}={'true' if scheduler == 'on' else 'false'}")
    env["XLA_FLAGS"] = " ".join(flags)
    if not env["XLA_FLAGS"]:
        env.pop("XLA_FLAGS")
    if pythonpath:
        env["PYTHONPATH"] = os.path.abspath(pythonpath)
    env.pop("PJRT_NPROC", None)
    if threads is not None:
        env["PJRT_NPROC"] = str(threads)
    return env


def run_json(cmd: list[str], env: dict, timeout: float | None = None) -> dict:
    """Run a worker command; its last stdout line is a JSON object (``process_wall_s`` added)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd="/tmp")
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"worker {cmd[1:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    return res


def ppo_hparams(total_timesteps: int, **config_overrides) -> dict:
    """PureJaxRL's CartPole config (= rlsuite's ``PPOConfig()`` defaults) as a JSON-able dict.

    Written out, not read from rlsuite, so that the driver does not import rlsuite (the worker
    checks that rlsuite's defaults agree)."""
    hp = dict(
        total_timesteps=total_timesteps, num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4,
        lr=2.5e-4, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01,
        vf_coef=0.5, activation="tanh", hidden=[64, 64], anneal_lr=True, eval_episodes=128, eval_horizon=500,
    )
    hp.update(config_overrides)
    return hp


# ----------------------------------------------------------------------------- workers


def ours_worker(seeds: int, hp: dict, phases: bool = False, final_eval: bool = True) -> dict:
    """rlsuite's PPO timed like rejax's worker (see the module docstring)."""
    t_start = time.perf_counter()
    import jax
    from limits import compile_fn

    import rlsuite
    from rlsuite import agents
    from rlsuite.agents import ppo
    from rlsuite.core.agent import make_train
    from rlsuite.core.rollout import rollout_episodes
    from rlsuite.envs import make

    env, env_params = make(ENV_ID)
    entry = agents.get("ppo")
    config = entry.config(
        total_timesteps=hp["total_timesteps"], num_envs=hp["num_envs"], num_steps=hp["num_steps"],
        update_epochs=hp["update_epochs"], num_minibatches=hp["num_minibatches"], hidden=tuple(hp["hidden"]),
        activation=hp["activation"], anneal_lr=hp["anneal_lr"],
    )
    hparams = entry.default_hparams(config)
    for k in ("lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm"):
        if abs(float(getattr(hparams, k)) - float(hp[k])) > 1e-6 * abs(float(hp[k])):  # float32 vs JSON
            raise ValueError(f"hparam {k}: config default {float(getattr(hparams, k))} != shared {hp[k]}")
    agent = entry.make(config, env, env_params)
    train = make_train(agent)

    def train_state(key):
        return train(key, hparams)[0]

    fn = train_state if seeds == 1 else jax.vmap(train_state)

    def keys(offset):
        return jax.random.PRNGKey(offset) if seeds == 1 else jax.random.split(jax.random.PRNGKey(offset), seeds)

    compiled, compile_s = compile_fn(fn, keys(0))
    runs = []
    for off in (0, 1) if seeds == 1 else (0,):  # like rejax's worker: evaluate the last timed run
        t0 = time.perf_counter()
        state = jax.block_until_ready(compiled(keys(off)))
        runs.append(time.perf_counter() - t0)
    out = dict(
        lib="rlsuite", seeds=seeds, env_steps_per_seed=agent.num_updates * agent.steps_per_update,
        compile_s=compile_s, first_run_s=runs[0], run_s=min(runs), first_total_s=compile_s + runs[0],
        import_to_trained_s=time.perf_counter() - t_start - sum(runs[1:]) - runs[0],
        jax=jax.__version__, rlsuite_file=rlsuite.__file__, xla_flags=os.environ.get("XLA_FLAGS", ""),
    )
    if phases:
        out.update(_phase_times(config, env, env_params, agent, hparams))
    if final_eval:  # stochastic policy, like rejax's `evaluate` (agent.evaluate is the greedy one)
        policy = ppo.make_policy(config, env, env_params, deterministic=False)

        def eval_one(state, key):
            traj = rollout_episodes(env, env_params, policy, ppo.policy_params(state), key,
                                    hp["eval_episodes"], hp["eval_horizon"])
            return traj.episode_return.mean()

        if seeds == 1:
            rets = [float(jax.jit(eval_one)(state, jax.random.PRNGKey(123)))]
        else:
            rets = jax.jit(jax.vmap(eval_one, in_axes=(0, None)))(state, jax.random.PRNGKey(123)).tolist()
        out.update(final_return_mean=sum(rets) / len(rets), final_returns=rets)
    return out


def _phase_times(config, env, env_params, agent, hparams) -> dict:
    """``num_updates`` rollouts alone and ``num_updates`` learning steps alone (best of 2 each)."""
    import jax
    from limits import compile_fn, time_run

    from rlsuite.agents import actor_critic as ac
    from rlsuite.agents import ppo

    penv, net, discrete = ac.make_network(config, env, env_params)
    policy = ac.make_policy_fn(net, discrete, config.normalize_obs)
    learn, optimizer = ppo._make_learn(config), ppo._optimizer_fn(config)(hparams)
    n = agent.num_updates
    state0 = jax.jit(agent.init)(jax.random.PRNGKey(0), hparams)

    def rollouts(state):
        def body(s, _):
            s, batch, ep = ac.collect(config, penv, env_params, net, policy, s, hparams)
            return s, (ep["episodes"], batch.target.sum())

        return jax.lax.scan(body, state, None, length=n)

    def learns(state, batch):
        def body(s, k):
            params, opt_state, m = learn(s, batch, hparams, net, discrete, optimizer, k)
            return s.replace(params=params, opt_state=opt_state), m["loss/actor"]

        return jax.lax.scan(body, state, jax.random.split(state.key, n))

    _, batch, _ = jax.jit(lambda s: ac.collect(config, penv, env_params, net, policy, s, hparams))(state0)
    out = {}
    for name, fn, args in (("rollout", rollouts, (state0,)), ("update", learns, (state0, batch))):
        compiled, c = compile_fn(fn, *args)
        out[f"{name}_compile_s"] = c
        out[f"{name}_s"] = min(time_run(compiled, *args) for _ in range(2))
    return out


def limits_worker(num_envs: list[int], steps: int) -> dict:
    """The floor's inputs: matmul GFLOP/s at 64x64 and bare-loop steps/s per env count."""
    from limits import env_steps_per_s, matmul_gflops

    return dict(gflops64=matmul_gflops(64, reps=3),
                env_sps={str(n): env_steps_per_s(ENV_ID, n, max(1, steps // n), reps=3) for n in num_envs})


def network_flops_per_step(hp: dict, obs_dim: int = 4, actions: int = 2) -> int:
    """Matmul FLOPs per env step of PPO's actor + critic: act (1 forward) + learn (epochs x 3)."""
    from limits import mlp_flops

    fwd = mlp_flops([obs_dim, *hp["hidden"], actions]) + mlp_flops([obs_dim, *hp["hidden"], 1])
    return fwd * (1 + 3 * hp["update_epochs"])


def floor_s(hp: dict, lim: dict, seeds: int = 1) -> float:
    """Bare env loop + network FLOPs at the 64x64 matmul limit for ``seeds`` x 500k-style runs."""
    steps = seeds * (hp["total_timesteps"] // (hp["num_envs"] * hp["num_steps"])) * hp["num_envs"] * hp["num_steps"]
    sps = lim["env_sps"][str(hp["num_envs"] * seeds)]
    return steps / sps + steps * network_flops_per_step(hp) / (lim["gflops64"] * 1e9)


# ----------------------------------------------------------------------------- driver


@dataclasses.dataclass(frozen=True)
class Args:
    """PPO CartPole-v1 profile (compile / rollout / update) vs the FLOP + env-loop floor."""

    num_envs: tuple[int, ...] = (4, 64)
    """Env counts (4: PureJaxRL's CartPole default; 64: update-heavy)."""
    total_timesteps: int = 500_000
    """Environment steps of one run."""
    reps: int = 3
    """Interleaved repeats of every row (medians reported)."""
    src: tuple[str, ...] = ()
    """``LABEL=DIR`` source trees to compare (the first is the baseline of the ratios; ``.`` is
    the working tree); empty: the working tree only."""
    flags: bool = True
    """Also time the working tree with the concurrency-optimised scheduler ON (no workaround)."""
    one_thread: bool = True
    """Also time the working tree on one CPU-runtime thread (``--cpu-threads 1``, ``PJRT_NPROC=1``)."""
    timeout: float = 600.0
    """Seconds before a worker counts as hung (the scheduler deadlock)."""
    out: str = OUT
    """Output folder of ppo_profile.md (``--smoke``: /tmp/rlsuite-smoke/benchmarks)."""
    smoke: bool = False
    """CI: 4 envs, 4096 steps, 1 repeat, no scheduler row; never writes results/."""
    worker: str | None = None
    """Internal: run one worker for this JSON spec and print one JSON line."""


def _worker_cmd(spec: dict) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]


def main(args: Args) -> None:
    if args.worker is not None:
        spec = json.loads(args.worker)
        if spec["kind"] == "limits":
            print(json.dumps(limits_worker(spec["num_envs"], spec["steps"])))
        else:
            print(json.dumps(ours_worker(spec["seeds"], spec["hp"], spec.get("phases", False), final_eval=False)))
        return
    if args.smoke:
        args = dataclasses.replace(args, num_envs=(4,), total_timesteps=4096, reps=1, flags=False, one_thread=False,
                                   out=SMOKE_OUT if args.out == OUT else args.out)
    if args.reps < 1 or args.total_timesteps < 1 or not args.num_envs or min(args.num_envs) < 1:
        raise ValueError(f"--reps, --total-timesteps and --num-envs must be positive, got {args}")
    srcs = [s.split("=", 1) for s in args.src] or [["working tree", "."]]
    for s in srcs:
        if len(s) != 2 or not os.path.isdir(s[1]):
            raise ValueError(f"--src must be LABEL=DIR with an existing DIR, got {'='.join(s)!r}")
    rows = []  # (label, src, scheduler, num_envs)
    for label, path in srcs:
        for n in args.num_envs:
            rows.append((label, path, "default", n))
    if args.flags:
        here = [s for s in srcs if os.path.abspath(s[1]) == ROOT] or [srcs[-1]]
        rows += [(here[0][0] + ", scheduler on (no workaround)", here[0][1], "on", n) for n in args.num_envs]
    if args.one_thread:
        here = [s for s in srcs if os.path.abspath(s[1]) == ROOT] or [srcs[-1]]
        rows += [(here[0][0] + ", 1 thread (--cpu-threads 1)", here[0][1], "1thread", n) for n in args.num_envs]

    load0 = os.getloadavg()[0]
    lim = run_json(_worker_cmd(dict(kind="limits", num_envs=list(args.num_envs), steps=min(args.total_timesteps, 1_000_000))),
                   clean_env())
    print(f"limits: matmul 64x64 {lim['gflops64']:.1f} GFLOP/s, bare CartPole steps/s {lim['env_sps']}", flush=True)
    # the phase breakdown: once per env count, on the working tree with its defaults (else the first tree)
    profiled = {n: next((r for r in rows if r[3] == n and r[2] == "default" and os.path.abspath(r[1]) == ROOT),
                        next(r for r in rows if r[3] == n)) for n in args.num_envs}
    got: dict = {r: [] for r in rows}
    for rep in range(args.reps):
        for r in rows:
            label, path, sched, n = r
            hp = ppo_hparams(args.total_timesteps, num_envs=n)
            phases = rep == 0 and profiled[n] == r
            spec = dict(kind="ours", seeds=1, hp=hp, phases=phases)
            pp = None if os.path.abspath(path) == ROOT else path
            env = clean_env("default" if sched == "1thread" else sched, pp, threads=1 if sched == "1thread" else None)
            try:
                res = run_json(_worker_cmd(spec), env, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                res = dict(hung=True, run_s=float("nan"), compile_s=float("nan"), first_total_s=float("nan"))
            got[r].append(res)
            print(f"{label:45s} N={n:3d} sched={sched:7s} compile {res['compile_s']:6.2f}s run {res['run_s']:6.3f}s"
                  + (f" rollout {res['rollout_s']:.3f}s update {res['update_s']:.3f}s" if "rollout_s" in res else "")
                  + (" HUNG" if res.get("hung") else ""), flush=True)
    write_tables(args, rows, got, lim, load0)


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def write_tables(args: Args, rows, got, lim, load0: float) -> None:
    from rlsuite.core import results  # only now: the workers are done

    phase_rows, cmp_rows = [], []
    for r in rows:
        label, _, sched, n = r
        res = got[r]
        hp = ppo_hparams(args.total_timesteps, num_envs=n)
        run = _median([x["run_s"] for x in res])
        comp = _median([x["compile_s"] for x in res])
        ph = next((x for x in res if "rollout_s" in x), None)
        if ph is not None:
            tot = ph["rollout_s"] + ph["update_s"]
            fl = floor_s(hp, lim)
            phase_rows.append([n, ph["compile_s"], ph["run_s"], ph["rollout_s"], ph["update_s"],
                               f"{100 * ph['update_s'] / tot:.0f}%", fl, ph["run_s"] / fl])
        base = next(x for x in rows if x[3] == n)
        b = _median([x["run_s"] for x in got[base]])
        bc = _median([x["first_total_s"] for x in got[base]])
        cmp_rows.append([label, n, len(res), comp, run, run / b,
                         _median([x["first_total_s"] for x in res]) / bc, run / floor_s(hp, lim)])
    hp0 = ppo_hparams(args.total_timesteps)
    meta = results.provenance(
        seeds=[0, 1], reps=args.reps, env=ENV_ID, total_timesteps=args.total_timesteps,
        sources={label: os.path.relpath(os.path.abspath(p), ROOT) if os.path.abspath(p).startswith(ROOT) else p
                 for label, p, _, _ in rows},
        load_avg_1min_start_end=[round(load0, 1), round(os.getloadavg()[0], 1)], matmul_64_gflops=round(lim["gflops64"], 2), bare_env_steps_per_s={k: round(v) for k, v in lim["env_sps"].items()},
    )
    body = "\n".join([
        "PPO CartPole-v1 (PureJaxRL's config, `num_envs` varied), 1 seed, built through the agent protocol "
        "(`agents.get('ppo').make` + `core.agent.make_train`), each row in its own clean subprocess; "
        "`run` = the AOT-compiled whole `train`, best of 2 runs; `rollout` / `update` = `num_updates` "
        "rollouts (engine + GAE, params fixed) / `num_updates` learning phases (epochs x minibatches on one batch) "
        "timed alone, compiled separately. Floor = bare env loop at the same env count + the actor/critic matmul "
        f"FLOPs ({network_flops_per_step(hp0)} per env step: act + {hp0['update_epochs']} epochs x fwd+bwd) at the "
        "64x64 float32 matmul limit (benchmarks/limits.py, measured in the same run).",
        "",
        "## Breakdown (working tree, rlsuite's defaults)",
        "",
        results.markdown_table(["num_envs", "compile s", "run s", "rollout s", "update s", "update share",
                                "floor s", "run / floor (target <= 1.3)"], phase_rows),
        "",
        "## Rows (medians over repeats; ratios against the first row of the same num_envs)",
        "",
        results.markdown_table(["source / setting", "num_envs", "n", "compile s", "run s", "run ratio",
                                "compile+run ratio", "run / floor"], cmp_rows),
        "",
        "The load average at the start and end of the run is in the header (2 cores): under load, absolute "
        "times are inflated and only ratios between rows of one run are the figures to compare.",
    ])
    path = os.path.join(args.out, "ppo_profile.md")
    results.write_markdown(path, "PPO profile" + (" [SMOKE]" if args.smoke else ""), body, meta)
    print("wrote", path)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Args))
