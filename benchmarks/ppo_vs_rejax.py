"""PPO on gymnax CartPole-v1, 500k steps: rlsuite vs rejax 0.1.3, same hyper-parameters.

Each measurement runs in its own subprocess (fresh JAX, no persistent compilation cache):
rlsuite's PPO in this venv, rejax in the separate benchmark venv (benchmarks/rejax_env.sh,
because rejax needs gymnax<1.0).  Both workers time the same way: AOT compile of the whole
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
import math
import os
import subprocess
import sys
import time
from typing import Optional

import tyro

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "results", "benchmarks")
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"
ENV_ID = "gymnax:CartPole-v1"


@dataclasses.dataclass(frozen=True)
class Args:
    """PPO CartPole-v1: rlsuite vs rejax 0.1.3, same hyper-parameters, each in its own process."""

    seeds: tuple[int, ...] = (1, 16)
    """Seed counts to time (vmapped)."""
    total_timesteps: int = 500_000
    """Environment steps per seed."""
    repeats: int = 1
    """Alternate ours / rejax this many times (the fastest compile+run of each is kept)."""
    eval_episodes: int = 128
    """Fresh episodes per seed of the final (stochastic-policy) return."""
    venv: str = os.environ.get("REJAX_VENV", os.path.join(ROOT, "runs", "bench-venv"))
    """The rejax virtualenv (benchmarks/rejax_env.sh creates it; $REJAX_VENV overrides)."""
    out: str = OUT
    """Output folder of ppo_vs_rejax.{md,csv} (``--smoke``: /tmp/rlsuite-smoke/benchmarks unless given)."""
    smoke: bool = False
    """CI: 1 seed, 2048 steps with 4 envs x 32 steps and a 16-unit net, 8 evaluation episodes, rejax
    skipped; never writes results/."""
    worker: Optional[str] = None
    """Internal: run one rlsuite timing worker for this JSON spec and print one JSON line."""


SMOKE = dict(seeds=(1,), total_timesteps=2048, eval_episodes=8)
SMOKE_CONFIG = dict(num_envs=4, num_steps=32, hidden=(16,))


def shared_hparams(total_timesteps: int, eval_episodes: int, config_overrides: dict) -> dict:
    """The settings both workers use (rlsuite's PPO defaults = PureJaxRL's CartPole config)."""
    from rlsuite import agents

    c = agents.get("ppo").config(total_timesteps=total_timesteps, **config_overrides)
    return dict(
        total_timesteps=c.total_timesteps, num_envs=c.num_envs, num_steps=c.num_steps,
        update_epochs=c.update_epochs, num_minibatches=c.num_minibatches, lr=c.lr,
        max_grad_norm=c.max_grad_norm, gamma=c.gamma, gae_lambda=c.gae_lambda, clip_eps=c.clip_eps,
        ent_coef=c.ent_coef, vf_coef=c.vf_coef, activation=c.activation, hidden=list(c.hidden),
        anneal_lr=c.anneal_lr, eval_episodes=eval_episodes, eval_horizon=500,
    )


# ----------------------------------------------------------------------------- rlsuite worker


def ours_worker(seeds: int, hp: dict) -> dict:
    t_start = time.perf_counter()
    import jax

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
        if not math.isclose(float(getattr(hparams, k)), float(hp[k]), rel_tol=1e-6):  # float32 vs JSON float64
            raise ValueError(f"hparam {k}: config default {float(getattr(hparams, k))} != shared {hp[k]}")
    agent = entry.make(config, env, env_params)
    train = make_train(agent)

    def train_state(key):
        return train(key, hparams)[0]

    fn = train_state if seeds == 1 else jax.vmap(train_state)

    def keys(offset):
        return jax.random.PRNGKey(offset) if seeds == 1 else jax.random.split(jax.random.PRNGKey(offset), seeds)

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(keys(0)).compile()
    compile_s = time.perf_counter() - t0
    runs = []
    for off in ((0, 1) if seeds == 1 else (0,)):
        t0 = time.perf_counter()
        state = jax.block_until_ready(compiled(keys(off)))
        runs.append(time.perf_counter() - t0)
    train_end = time.perf_counter()

    # Stochastic policy, like rejax's `evaluate` (agent.evaluate is the greedy one).
    policy = ppo.make_policy(config, env, env_params, deterministic=False)

    def eval_one(state, key):
        traj = rollout_episodes(env, env_params, policy, ppo.policy_params(state), key,
                                hp["eval_episodes"], hp["eval_horizon"])
        return traj.episode_return.mean()

    if seeds == 1:
        rets = [float(jax.jit(eval_one)(state, jax.random.PRNGKey(123)))]
    else:
        rets = jax.jit(jax.vmap(eval_one, in_axes=(0, None)))(state, jax.random.PRNGKey(123)).tolist()
    return dict(
        lib="rlsuite", seeds=seeds, env_steps_per_seed=agent.num_updates * agent.steps_per_update,
        compile_s=compile_s, first_run_s=runs[0], run_s=min(runs), first_total_s=compile_s + runs[0],
        import_to_trained_s=train_end - t_start - sum(runs[1:]),
        final_return_mean=sum(rets) / len(rets), final_returns=rets, jax=jax.__version__,
    )


# ----------------------------------------------------------------------------- driver


def run_worker(lib: str, seeds: int, hp: dict, venv: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    spec = json.dumps(dict(seeds=seeds, hparams=hp))
    if lib == "rlsuite":
        cmd = [sys.executable, os.path.join(HERE, "ppo_vs_rejax.py"), "--worker", spec]
    else:
        cmd = [os.path.join(venv, "bin", "python"), os.path.join(HERE, "_rejax_ppo.py"), "--seeds", str(seeds),
               "--hparams", json.dumps(hp)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    print(
        f"{lib:8s} seeds={seeds:2d}  compile {res['compile_s']:6.2f}s  run {res['run_s']:7.2f}s  "
        f"compile+run {res['first_total_s']:7.2f}s  process {wall:7.2f}s  "
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
        print(json.dumps(ours_worker(int(spec["seeds"]), spec["hparams"])))
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
    libs = ("rlsuite",) if skip else ("rlsuite", "rejax")
    if skip:
        print(f"rejax: SKIPPED ({skip}); timing rlsuite only", flush=True)
    hp = shared_hparams(args.total_timesteps, args.eval_episodes, overrides)
    best: dict = {}
    for _ in range(args.repeats):
        for seeds in args.seeds:
            for lib in libs:
                r = run_worker(lib, seeds, hp, args.venv)
                k = (lib, seeds)
                if k not in best or r["first_total_s"] < best[k]["first_total_s"]:
                    best[k] = r

    if skip and not args.smoke and os.path.abspath(args.out) == os.path.abspath(OUT):
        print(f"not writing {os.path.relpath(OUT, ROOT)}/ppo_vs_rejax.md without the rejax side "
              "(pass --out DIR to keep an rlsuite-only table)")
        return
    write_tables(args, hp, best, libs)


def write_tables(args: Args, hp: dict, best: dict, libs) -> None:
    from rlsuite.core import results

    rows, ratio_rows = [], []
    for seeds in args.seeds:
        for lib in libs:
            r = best[(lib, seeds)]
            rows.append([r["lib"], seeds, r["compile_s"], r["run_s"], r["first_total_s"], r["process_wall_s"],
                         r["final_return_mean"], min(r["final_returns"])])
        if "rejax" not in libs:
            continue
        o, j = best[("rlsuite", seeds)], best[("rejax", seeds)]
        ratio_rows.append([seeds, o["run_s"] / j["run_s"], o["first_total_s"] / j["first_total_s"],
                           o["process_wall_s"] / j["process_wall_s"], o["compile_s"] / j["compile_s"]])
        print(f"seeds={seeds:2d}  ours/rejax  run {ratio_rows[-1][1]:.2f}  compile+run {ratio_rows[-1][2]:.2f}  "
              f"process {ratio_rows[-1][3]:.2f}")
    first = args.seeds[0]
    meta = results.provenance(
        seeds=list(args.seeds), repeats=args.repeats, env=ENV_ID,
        env_steps_per_seed=best[("rlsuite", first)]["env_steps_per_seed"],
        rejax_jax=best[("rejax", first)]["jax"] if "rejax" in libs else "skipped", hparams=json.dumps(hp),
    )
    header = ["lib", "seeds", "compile_s", "run_s", "compile_plus_run_s", "process_wall_s",
              "final_return_mean", "final_return_min_seed"]
    results.write_csv(os.path.join(args.out, "ppo_vs_rejax.csv"), header, rows, meta)
    ratios = (
        results.markdown_table(["seeds", "run (no compile)", "compile+run", "process", "compile"], ratio_rows)
        if ratio_rows else "rejax side skipped: no ratios."
    )
    body = "\n".join([
        "PPO CartPole-v1, same hyper-parameters (PureJaxRL's), each run in its own process, "
        "timed identically: AOT compile, then the compiled `train` (vmapped over seeds); "
        "`run` = without compile, `compile+run` = with compile, `process` = whole subprocess "
        f"incl. imports. Final return: stochastic policy, {hp['eval_episodes']} fresh episodes per seed.",
        "",
        results.markdown_table(
            ["lib", "seeds", "compile s", "run s", "compile+run s", "process s", "mean final return",
             "worst seed"], rows),
        "",
        "## Ratios ours / rejax (target <= 0.8)",
        "",
        ratios,
        "",
        "Differences rejax cannot express: no learning-rate annealing in rejax (ours anneals, as "
        "PureJaxRL), separate actor/critic optimisers in rejax; rlsuite bootstraps time-outs.",
    ])
    results.write_markdown(os.path.join(args.out, "ppo_vs_rejax.md"), "PPO: rlsuite vs rejax", body, meta)
    print("wrote", os.path.normpath(os.path.join(args.out, "ppo_vs_rejax.md")))


if __name__ == "__main__":
    main(tyro.cli(Args))
