"""rejax 0.1.3 PPO on CartPole-v1, timed like rlsuite's PPO in benchmarks/ppo_vs_rejax.py.

Runs INSIDE the separate benchmark venv (benchmarks/rejax_env.sh; rejax needs gymnax<1.0), so it
imports nothing from rlsuite.  Prints one JSON line: compile / run times, final returns.

    runs/bench-venv/bin/python benchmarks/_rejax_ppo.py --seeds 16 --hparams '{"lr": 2.5e-4, ...}'

Timing (identical to the rlsuite worker): AOT ``jax.jit(train).lower(keys).compile()`` timed as
compile; then the compiled function runs (twice for 1 seed, on other keys the second time,
keeping the faster; once for more seeds); ``first_total_s`` = compile + first run.  rejax's in-loop evaluation is replaced by
a no-op so that only training is timed (``eval_freq`` = all training in one block); final
returns come from rejax's own ``evaluate`` (stochastic policy, 128 episodes per seed) after timing.
"""

import argparse
import json
import time

t_start = time.perf_counter()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rejax import PPO  # noqa: E402
from rejax.evaluate import evaluate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--hparams", type=str, required=True, help="JSON of the shared hyper-parameters")
    args = ap.parse_args()
    hp = json.loads(args.hparams)

    batch = hp["num_envs"] * hp["num_steps"]
    num_updates = hp["total_timesteps"] // batch
    steps = num_updates * batch  # same number of updates as rlsuite's PPO
    algo = PPO.create(
        env="CartPole-v1",
        num_envs=hp["num_envs"],
        num_steps=hp["num_steps"],
        num_epochs=hp["update_epochs"],
        num_minibatches=hp["num_minibatches"],
        learning_rate=hp["lr"],
        max_grad_norm=hp["max_grad_norm"],
        total_timesteps=steps,
        eval_freq=steps,
        skip_initial_evaluation=True,
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_eps=hp["clip_eps"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        normalize_observations=False,
        agent_kwargs={"activation": hp["activation"], "hidden_layer_sizes": tuple(hp["hidden"])},
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))

    def train(key):
        return algo.train(key)[0]

    fn = train if args.seeds == 1 else jax.vmap(train)

    def keys(offset):
        if args.seeds == 1:
            return jax.random.PRNGKey(offset)
        return jax.random.split(jax.random.PRNGKey(offset), args.seeds)

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(keys(0)).compile()
    compile_s = time.perf_counter() - t0
    runs = []
    for off in ((0, 1) if args.seeds == 1 else (0,)):
        t0 = time.perf_counter()
        ts = jax.block_until_ready(compiled(keys(off)))
        runs.append(time.perf_counter() - t0)
    train_end = time.perf_counter()

    def eval_one(ts, key):
        _, returns = evaluate(algo.make_act(ts), key, algo.env, algo.env_params, 128, 500)
        return returns.mean()

    if args.seeds == 1:
        rets = [float(eval_one(ts, jax.random.PRNGKey(123)))]
    else:
        rets = jax.vmap(eval_one, in_axes=(0, None))(ts, jax.random.PRNGKey(123)).tolist()
    print(
        json.dumps(
            dict(
                lib="rejax",
                seeds=args.seeds,
                env_steps_per_seed=steps,
                compile_s=compile_s,
                first_run_s=runs[0],
                run_s=min(runs),
                first_total_s=compile_s + runs[0],
                import_to_trained_s=train_end - t_start - sum(runs[1:]),
                final_return_mean=sum(rets) / len(rets),
                final_returns=rets,
                jax=jax.__version__,
            )
        )
    )


if __name__ == "__main__":
    main()
