"""Why offline imitation from one expert trajectory fails on Pendulum (issue 15): measurements.

Same data as ``run_il.py`` (expert trajectory #1 of the clean controller, reward-free, plus 10k
uniform-random + 10k medium reward-free transitions), with one addition: ``probe`` transitions
that start at the *expert's states* but take uniformly random torques (the true next state from
the env's dynamics; 200 of them, 1% of the mixed data).  They tell whether the discriminator
reward ``log c/(1-c)`` separates expert *actions* or only expert *states*.

O-DICE IL (``odice.il_config``) is trained for every (lambda, seed) in one ``jit(vmap)``; with
the final state the script evaluates, on the whole prepared union and per group
(expert / probe / random / medium):

- the discriminator reward (mean);
- the policy residual ``delta = r + g (1-d) Vbar(s') - V(s)`` and the weighted-BC weight
  ``min(relu(delta), 100)``: its mean, the fraction of positive weights, and the group's share of
  the total weight (what the policy actually imitates);
- the final normalised score.

    python experiments/odice/il_diagnose.py              # CPU default (10k steps, 3 seeds, lambda 0.4 / 0.8)
    python experiments/odice/il_diagnose.py --smoke      # seconds, writes to /tmp/rlsuite-smoke/odice

Writes ``results/odice/il_diagnosis.{md,csv}``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import SMOKE_OUT, pendulum_dataset, pendulum_references  # noqa: E402
from run_il import SEEDS, expert_trajectory  # noqa: E402

from rlsuite.agents import odice  # noqa: E402
from rlsuite.core import sweep  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402
from rlsuite.data import offline  # noqa: E402
from rlsuite.data import references as refs  # noqa: E402
from rlsuite.data.dataset import Dataset  # noqa: E402
from rlsuite.envs import make  # noqa: E402

GROUPS = ("expert", "probe", "random", "medium")


@dataclasses.dataclass
class Args:
    """Measure where O-DICE IL's policy weight goes on Pendulum (one expert trajectory)."""

    steps: int = 10_000
    """Gradient steps (run_il.py's CPU default)."""
    lams: tuple[float, ...] = (0.4, 0.8)
    """lambda values (sheet IL default 0.4)."""
    disc_steps: int = 2000
    """Discriminator pre-training steps (run_il.py's default)."""
    hidden: tuple[int, ...] = (64, 64)
    """V and policy hidden sizes (run_il.py's CPU default)."""
    smoke: bool = False
    """Tiny sizes; writes under /tmp/rlsuite-smoke/odice."""
    out: Optional[str] = None
    """Output directory (default results/odice)."""


def probe_transitions(env, env_params, expert: Dataset, seed: int) -> Dataset:
    """Expert states, uniformly random torques, true next states (one env step each)."""
    obs = np.asarray(expert.observations)
    n = obs.shape[0]
    key = jax.random.PRNGKey(seed)
    k_a, k_s = jax.random.split(key)
    lo, hi = env.action_space(env_params).low, env.action_space(env_params).high
    act = jax.random.uniform(k_a, (n, 1), minval=lo, maxval=hi)
    state_cls = type(env.reset(key, env_params)[1])
    theta = jnp.arctan2(obs[:, 1], obs[:, 0])
    states = state_cls(theta=theta, theta_dot=jnp.asarray(obs[:, 2]), last_u=jnp.zeros(n), time=jnp.zeros(n, jnp.int32))
    step = jax.vmap(lambda k, s, a: env.step_env(k, s, a, env_params))
    nxt = step(jax.random.split(k_s, n), states, act)[0]
    return Dataset(observations=obs, actions=np.asarray(act), rewards=np.zeros(n, np.float32),
                   next_observations=np.asarray(nxt), terminals=np.zeros(n, bool), timeouts=np.zeros(n, bool))


def main(args: Args) -> None:
    seeds, expert_size, ref_episodes, size = SEEDS, 4000, 100, 10_000
    v_hidden = tuple(args.hidden)
    if args.smoke:
        args.steps, args.disc_steps, v_hidden = 20, 5, (16, 16)
        seeds, expert_size, ref_episodes, size = SEEDS[:2], 2000, 4, 2000
    out = args.out or (SMOKE_OUT if args.smoke else "results/odice")
    t0 = time.time()
    env, p = make("gymnax:Pendulum-v1")
    ref = pendulum_references(env, p, episodes=ref_episodes)
    expert = expert_trajectory(pendulum_dataset("expert", expert_size, seed=3, references=ref), 1)
    parts = {"probe": probe_transitions(env, p, expert, seed=7),
             "random": pendulum_dataset("random", size, seed=4, references=ref),
             "medium": pendulum_dataset("medium", size, seed=5, references=ref)}
    mixed = Dataset.concatenate([parts["probe"].with_metadata(**ref), parts["random"], parts["medium"]])
    mixed = mixed.replace(rewards=np.zeros_like(mixed.rewards))
    # group label of every transition the prepared union keeps (D4RL qlearning drops time-outs)
    labels = np.concatenate([np.full(len(d), g) for g, d in
                             (("expert", expert), ("probe", parts["probe"]), ("random", parts["random"]),
                              ("medium", parts["medium"]))])
    union = Dataset.concatenate([expert, mixed])
    labels = labels[~(np.asarray(union.timeouts) & ~np.asarray(union.terminals))]

    cfg = odice.il_config(gradient_steps=args.steps, eval_every=args.steps, value_hidden=v_hidden,
                          policy_hidden=v_hidden, disc_steps=args.disc_steps, eval_episodes=10)
    prep = odice.prepare(cfg, {"dataset": mixed, "expert": expert}, env, p)
    if prep[0].observations.shape[0] != labels.size:
        raise RuntimeError(f"group labels ({labels.size}) do not match the prepared union ({prep[0].observations.shape[0]})")
    refs_pair = offline.references(mixed)
    v_net = odice.TwinV(tuple(cfg.value_hidden), cfg.value_layer_norm, heads=2)
    hps, points = sweep.grid(odice.default_hparams(cfg), lam=list(args.lams))

    def run(key, hp):
        agent = odice.make_from_prepared(cfg, env, p, prep, refs_pair)
        state, _ = agent.segment(agent.init(key, hp), hp, cfg.gradient_steps)
        d = prep[0]
        x, xp = d.normalize(d.observations), d.normalize(d.next_observations)
        v_s = v_net.apply(state.v_params, x)[0].mean(0)
        vt_sp = v_net.apply(state.vt_params, xp)[0].min(0)
        delta = state.rewards + hp.gamma * (1.0 - d.dones) * vt_sp - v_s
        w = odice.policy_weight(delta, cfg, hp.weight_clip)
        ev = agent.evaluate(state, jax.random.fold_in(key, 1))
        return state.rewards, delta, w, ev["eval_return"]

    out_v = sweep.run_sweep(run, sweep.seed_keys(seeds), hps)
    rew, delta, w, ret = (np.asarray(x) for x in out_v)  # [G, S, N], ..., [G, S]
    rows = []
    for gi, pt in enumerate(points):
        score = refs.normalized_score(ret[gi], ref["ref_random_return"], ref["ref_expert_return"])
        total = w[gi].sum(-1)  # [S]
        for g in GROUPS:
            m = labels == g
            share = (w[gi][:, m].sum(-1) / np.maximum(total, 1e-12)).mean()
            rows.append([pt["lam"], g, int(m.sum()), round(float(m.mean()), 4),
                         round(float(rew[gi][:, m].mean()), 2), round(float(delta[gi][:, m].mean()), 3),
                         round(float((w[gi][:, m] > 0).mean()), 3), round(float(w[gi][:, m].mean()), 4),
                         round(float(share), 4), round(float(score.mean()), 1)])
    header = ["lambda", "group", "transitions", "share of data", "mean reward log c/(1-c)", "mean delta",
              "fraction w > 0", "mean w", "share of total w", "final score (mean over seeds)"]
    meta = provenance(seeds=list(seeds), task="gymnax:Pendulum-v1", gradient_steps=args.steps,
                      disc_steps=args.disc_steps, hidden=list(v_hidden),
                      scale="SMOKE (meaningless)" if args.smoke else "CPU-default scale (run_il.py's)",
                      machine="2 CPU cores shared with other jobs", wall_seconds=round(time.time() - t0, 1))
    write_csv(os.path.join(out, "il_diagnosis.csv"), header, rows, meta)
    body = (
        "O-DICE offline IL on Pendulum-v1 (run_il.py's data + 200 *probe* transitions: expert states, "
        "uniformly random torques). Per group of the prepared union, with the final state of each "
        "run (mean over seeds): discriminator reward, policy residual delta, weighted-BC weight "
        "w = min(relu(delta), 100), and the group's share of the total weight.\n\n"
        + markdown_table(header, rows) + "\n"
    )
    write_markdown(os.path.join(out, "il_diagnosis.md"), "Offline IL on Pendulum: where the policy weight goes", body, meta)
    print(body)


if __name__ == "__main__":
    main(tyro.cli(Args))
