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

Hyper-parameters: PureJaxRL's CartPole config (rlsuite's ``PPOConfig()`` defaults): 4 envs x 128
steps, 4 epochs x 4 minibatches, lr 2.5e-4, gamma 0.99, lambda 0.95, clip 0.2, ent 0.01, vf 0.5,
max grad norm 0.5, tanh 64x64.  Known differences rejax cannot express: rejax has no
learning-rate annealing (ours anneals linearly, PureJaxRL's default) and keeps separate actor and
critic optimisers; rlsuite bootstraps time-outs from the final observation.

Usage:
    bash benchmarks/rejax_env.sh                # once: creates runs/bench-venv
    python benchmarks/ppo_vs_rejax.py           # 1 and 16 seeds, writes results/benchmarks/ppo_vs_rejax.md
    python benchmarks/ppo_vs_rejax.py --seeds 1 --total-timesteps 100000   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "results", "benchmarks")


def shared_hparams(total_timesteps: int) -> dict:
    from rlsuite.agents import ppo

    c = ppo.PPOConfig(total_timesteps=total_timesteps)
    return dict(
        total_timesteps=c.total_timesteps, num_envs=c.num_envs, num_steps=c.num_steps,
        update_epochs=c.update_epochs, num_minibatches=c.num_minibatches, lr=c.lr,
        max_grad_norm=c.max_grad_norm, gamma=c.gamma, gae_lambda=c.gae_lambda, clip_eps=c.clip_eps,
        ent_coef=c.ent_coef, vf_coef=c.vf_coef, activation=c.activation, hidden=list(c.hidden),
        anneal_lr=c.anneal_lr,
    )


# ----------------------------------------------------------------------------- rlsuite worker


def ours_worker(seeds: int, hp: dict) -> dict:
    t_start = time.perf_counter()
    import jax

    from rlsuite.agents import ppo
    from rlsuite.core.rollout import rollout_episodes
    from rlsuite.envs import make

    env, env_params = make("gymnax:CartPole-v1")
    config = ppo.PPOConfig(total_timesteps=hp["total_timesteps"])
    hparams = ppo.default_hparams(config)
    train = ppo.make_train(config, env, env_params)

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

    policy = ppo.make_policy(config, env, env_params, deterministic=False)

    def eval_one(state, key):
        traj = rollout_episodes(env, env_params, policy, ppo.policy_params(state), key, 128, 500)
        return traj.episode_return.mean()

    if seeds == 1:
        rets = [float(jax.jit(eval_one)(state, jax.random.PRNGKey(123)))]
    else:
        rets = jax.jit(jax.vmap(eval_one, in_axes=(0, None)))(state, jax.random.PRNGKey(123)).tolist()
    return dict(
        lib="rlsuite", seeds=seeds, env_steps_per_seed=config.num_updates * config.num_envs * config.num_steps,
        compile_s=compile_s, first_run_s=runs[0], run_s=min(runs), first_total_s=compile_s + runs[0],
        import_to_trained_s=train_end - t_start - sum(runs[1:]),
        final_return_mean=sum(rets) / len(rets), final_returns=rets, jax=jax.__version__,
    )


# ----------------------------------------------------------------------------- driver


def run_worker(lib: str, seeds: int, hp: dict, venv: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if lib == "rlsuite":
        cmd = [sys.executable, os.path.join(HERE, "ppo_vs_rejax.py"), "--worker", "--seeds", str(seeds),
               "--hparams", json.dumps(hp)]
    else:
        cmd = [os.path.join(venv, "bin", "python"), os.path.join(HERE, "rejax_ppo.py"), "--seeds", str(seeds),
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--hparams", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 16], help="seed counts to time (vmapped)")
    ap.add_argument("--total-timesteps", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=1, help="alternate ours/rejax this many times (min kept)")
    ap.add_argument("--venv", default=os.environ.get("REJAX_VENV", os.path.join(ROOT, "runs", "bench-venv")))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(ours_worker(args.seeds[0], json.loads(args.hparams))))
        return

    if not os.path.exists(os.path.join(args.venv, "bin", "python")):
        sys.exit(f"rejax venv {args.venv!r} not found: run `bash benchmarks/rejax_env.sh` first")
    hp = shared_hparams(args.total_timesteps)
    best: dict = {}
    for _ in range(args.repeats):
        for seeds in args.seeds:
            for lib in ("rlsuite", "rejax"):
                r = run_worker(lib, seeds, hp, args.venv)
                k = (lib, seeds)
                if k not in best or r["first_total_s"] < best[k]["first_total_s"]:
                    best[k] = r

    from rlsuite.core import results

    rows, ratio_rows = [], []
    for seeds in args.seeds:
        o, j = best[("rlsuite", seeds)], best[("rejax", seeds)]
        for r in (o, j):
            rows.append([r["lib"], seeds, r["compile_s"], r["run_s"], r["first_total_s"], r["process_wall_s"],
                         r["final_return_mean"], min(r["final_returns"])])
        ratio_rows.append([seeds, o["run_s"] / j["run_s"], o["first_total_s"] / j["first_total_s"],
                           o["process_wall_s"] / j["process_wall_s"], o["compile_s"] / j["compile_s"]])
        print(f"seeds={seeds:2d}  ours/rejax  run {ratio_rows[-1][1]:.2f}  compile+run {ratio_rows[-1][2]:.2f}  "
              f"process {ratio_rows[-1][3]:.2f}")
    meta = results.provenance(
        seeds=args.seeds, repeats=args.repeats, env="gymnax:CartPole-v1",
        env_steps_per_seed=best[("rlsuite", args.seeds[0])]["env_steps_per_seed"],
        rejax_jax=best[("rejax", args.seeds[0])]["jax"], hparams=json.dumps(hp),
    )
    header = ["lib", "seeds", "compile_s", "run_s", "compile_plus_run_s", "process_wall_s",
              "final_return_mean", "final_return_min_seed"]
    results.write_csv(os.path.join(args.out, "ppo_vs_rejax.csv"), header, rows, meta)
    body = "\n".join([
        "PPO CartPole-v1, same hyper-parameters (PureJaxRL's), each run in its own process, "
        "timed identically: AOT compile, then the compiled `train` (vmapped over seeds); "
        "`run` = without compile, `compile+run` = with compile, `process` = whole subprocess "
        "incl. imports. Final return: stochastic policy, 128 fresh episodes per seed.",
        "",
        results.markdown_table(
            ["lib", "seeds", "compile s", "run s", "compile+run s", "process s", "mean final return",
             "worst seed"], rows),
        "",
        "## Ratios ours / rejax (target <= 0.8)",
        "",
        results.markdown_table(["seeds", "run (no compile)", "compile+run", "process", "compile"], ratio_rows),
        "",
        "Differences rejax cannot express: no learning-rate annealing in rejax (ours anneals, as "
        "PureJaxRL), separate actor/critic optimisers in rejax; rlsuite bootstraps time-outs.",
    ])
    results.write_markdown(os.path.join(args.out, "ppo_vs_rejax.md"), "PPO: rlsuite vs rejax", body, meta)
    print("wrote", os.path.normpath(os.path.join(args.out, "ppo_vs_rejax.md")))


if __name__ == "__main__":
    main()
