"""This machine's limits: float32 matmul throughput and the bare CartPole env loop.

Every other benchmark reports its figure also as a fraction of one of these limits, and imports
the measuring functions from here (``from limits import ...``; scripts run from ``benchmarks/``
have it on their path):

- :func:`matmul_gflops`: a chain of ``k`` dependent ``[n, n] @ [n, n]`` float32 matmuls in one
  jitted ``fori_loop`` (``2 n^3`` FLOPs each; dispatch amortised), best of interleaved repeats;
- :func:`bare_env_loop` / :func:`env_steps_per_s`: PureJaxRL's loop, ``lax.scan(vmap(env.step))``
  with gymnax's auto-resetting ``step`` and a fixed random linear policy (the least work an
  agent's rollout can do); the stacked per-step data and final observations are reduced to a
  checksum so XLA cannot delete the simulation;
- :func:`mlp_flops`: matmul FLOPs of one forward pass of an MLP per sample (what the
  FLOP + env-loop floor of ``benchmarks/ppo_profile.py`` / ``ppo_vs_rejax.py`` uses).

    python benchmarks/limits.py            # writes results/benchmarks/limits.md
    python benchmarks/limits.py --smoke    # CI: tiny, writes to /tmp/rlsuite-smoke/benchmarks
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

OUT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks"))
SMOKE_OUT = "/tmp/rlsuite-smoke/benchmarks"


# ----------------------------------------------------------------------------- timing helpers


def compile_fn(fn, *args):
    """AOT ``jax.jit(fn).lower(*args).compile()``: ``(compiled, seconds)``."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def time_run(compiled, *args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    return time.perf_counter() - t0


def checksum(tree) -> jax.Array:
    return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(tree))


# ----------------------------------------------------------------------------- matmul


def matmul_gflops(n: int, iters: int | None = None, reps: int = 5) -> float:
    """float32 GFLOP/s of ``[n, n] @ [n, n]`` on the default device (best of ``reps``)."""
    iters = iters or max(8, int(4e9 / (2 * n**3)))  # ~4 GFLOP per timed call

    def chain(x, w):
        return jax.lax.fori_loop(0, iters, lambda _, y: y @ w, x)

    x = jnp.ones((n, n), jnp.float32)
    w = jnp.eye(n, dtype=jnp.float32) * 0.999  # keeps the chain finite
    compiled, _ = compile_fn(chain, x, w)
    jax.block_until_ready(compiled(x, w))
    best = min(time_run(compiled, x, w) for _ in range(reps))
    return 2.0 * n**3 * iters / best / 1e9


def mlp_flops(sizes: Sequence[int]) -> int:
    """Matmul FLOPs of one forward pass per sample through layers ``sizes[0] -> ... -> sizes[-1]``."""
    return int(sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:])))


# ----------------------------------------------------------------------------- env loop


def random_linear_policy(env, params):
    """A fixed random linear policy; categorical for Discrete, tanh-Gaussian in [-1, 1] for Box."""
    obs_dim = int(np.prod(env.observation_space(params).shape))
    space = env.action_space(params)
    discrete = hasattr(space, "n")
    act_dim = int(space.n) if discrete else int(np.prod(space.shape))
    w = jax.random.normal(jax.random.PRNGKey(42), (obs_dim, act_dim)) * 0.1

    def policy(w, obs, key):
        logits = obs.reshape(obs.shape[0], -1) @ w
        if discrete:
            return jax.random.categorical(key, logits).astype(jnp.int32), ()
        noise = 0.3 * jax.random.normal(key, logits.shape)
        return jnp.clip(jnp.tanh(logits) + noise, -1.0, 1.0), ()

    return policy, w


def bare_env_loop(env, params, policy, num_envs: int, num_steps: int):
    """``run(w, key) -> checksum``: PureJaxRL-style ``lax.scan(vmap(env.step))`` with gymnax's
    built-in auto-reset (reset computed every step, selected where done)."""

    def run(w, key):
        key, k_reset = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), params)

        def step(c, _):
            obs, state, key = c
            key, k_act, k_step = jax.random.split(key, 3)
            action, _ = policy(w, obs, k_act)
            nobs, state, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, num_envs), state, action, params
            )
            return (nobs, state, key), (obs, action, r, term | trunc)

        (obs, state, key), ys = jax.lax.scan(step, (obs, state, key), None, length=num_steps)
        return checksum(ys) + checksum(obs)

    return run


def env_steps_per_s(env_id: str = "gymnax:CartPole-v1", num_envs: int = 4, num_steps: int = 20_000,
                    reps: int = 5) -> float:
    """Steps/s (all envs together) of :func:`bare_env_loop` on ``env_id`` (best of ``reps``)."""
    from rlsuite.envs import make

    env, params = make(env_id)
    policy, w = random_linear_policy(env, params)
    compiled, _ = compile_fn(bare_env_loop(env, params, policy, num_envs, num_steps), w, jax.random.PRNGKey(0))
    jax.block_until_ready(compiled(w, jax.random.PRNGKey(0)))
    best = min(time_run(compiled, w, jax.random.PRNGKey(r + 1)) for r in range(reps))
    return num_envs * num_steps / best


# ----------------------------------------------------------------------------- script


@dataclasses.dataclass(frozen=True)
class Args:
    """float32 matmul GFLOP/s and bare CartPole env-loop steps/s on this machine."""

    sizes: tuple[int, ...] = (64, 256)
    """Square matmul sizes."""
    envs: tuple[int, ...] = (4, 64, 256, 2048)
    """Vmapped CartPole env counts of the bare loop."""
    env_steps: int = 2_000_000
    """Env steps (all envs together) per timed bare-loop call."""
    reps: int = 5
    """Timed repeats (the best is kept)."""
    out: str = OUT
    """Output folder of limits.md (``--smoke``: /tmp/rlsuite-smoke/benchmarks)."""
    smoke: bool = False
    """CI: 2 repeats, 50k env steps, never writes results/."""


def main(args: Args) -> None:
    from rlsuite.core import results

    if args.smoke:
        args = dataclasses.replace(args, reps=2, env_steps=50_000, envs=(4, 64),
                                   out=SMOKE_OUT if args.out == OUT else args.out)
    if args.reps < 1 or args.env_steps < 1 or min(args.sizes + args.envs) < 1:
        raise ValueError(f"--reps, --env-steps, --sizes and --envs must be positive, got {args}")
    load0, rows = os.getloadavg()[0], []
    for n in args.sizes:
        g = matmul_gflops(n, reps=args.reps)
        rows.append([f"float32 matmul {n}x{n} @ {n}x{n}", round(g, 2), "GFLOP/s"])
        print(f"matmul {n:4d}: {g:7.2f} GFLOP/s", flush=True)
    for n in args.envs:
        sps = env_steps_per_s(num_envs=n, num_steps=max(1, args.env_steps // n), reps=args.reps)
        rows.append([f"bare CartPole-v1 loop, {n} vmapped envs", round(sps / 1e6, 3), "M steps/s"])
        print(f"bare CartPole N={n:5d}: {sps / 1e6:7.3f} M steps/s", flush=True)
    meta = results.provenance(seeds=[0], reps=args.reps, jax=jax.__version__,
                              xla_flags=os.environ.get("XLA_FLAGS", ""),
                              load_avg_1min_start_end=[round(load0, 1), round(os.getloadavg()[0], 1)])
    body = "\n".join([
        results.markdown_table(["limit", "value", "unit"], rows),
        "",
        "Matmul: a chain of dependent square float32 matmuls in one jitted `fori_loop` (~4 GFLOP per "
        "call, 2 n^3 FLOPs each). Env loop: PureJaxRL's `lax.scan(vmap(env.step))` with gymnax's "
        "auto-reset and a random linear policy, stacked outputs reduced to a checksum. Best of "
        f"{args.reps} repeats; the machine (2 cores) was shared with other jobs, so these are lower "
        "bounds of the true limits and the fractions other benchmarks report against them are upper bounds.",
    ])
    results.write_markdown(os.path.join(args.out, "limits.md"), "Machine limits" + (" [SMOKE]" if args.smoke else ""),
                           body, meta)
    print("wrote", os.path.join(args.out, "limits.md"))


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Args))
