"""Experiment (b): learning curves of MC-PG vs BPG vs BAC at equal numbers of sampled episodes.

LQR (``lqr:lqr-1d``): every method takes M episodes per update; the curve is the *exact*
``J(theta_j)`` (closed form) against the number of episodes used.  Each method runs a small
step-size grid (one ``vmap`` over hyper-parameters x seeds); the table reports every step size
and the plot the best one per method (by final J averaged over seeds).

Mountain car (gymnax ``MountainCar-v0``, actions {0, 2}, 4x4 RBF softmax policy): BAC (sparse
MC-GPTD critic) vs BPG vs MC-PG; the curve is the mean episode length of the sampled episodes.

Every method trains through the agent protocol (``rlsuite.agents.get("bpg" | "bac").make``,
``rlsuite.core.agent.make_train``) and one ``rlsuite.core.sweep.run_sweep`` over the step-size
grid x seeds (seed ``s`` is ``PRNGKey(s)``).

    python experiments/bayesian_pg/learning_curves.py                # CPU default (a few minutes)
    python experiments/bayesian_pg/learning_curves.py --seeds 20 --lqr-updates 200 --mc-updates 500
    python experiments/bayesian_pg/learning_curves.py --skip-mountain-car
    python experiments/bayesian_pg/learning_curves.py --smoke        # tiny sizes, writes to /tmp
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from rlsuite import agents
from rlsuite.agents import bayes_pg as B
from rlsuite.core import stats, sweep
from rlsuite.core.agent import make_train
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.envs import make
from rlsuite.envs.lqr import lqr_exact_return

OUT = "results/bayesian_pg"
SMOKE_OUT = "/tmp/rlsuite-smoke/bayesian_pg"


@dataclasses.dataclass(frozen=True)
class Args:
    seeds: int = 10
    """LQR: seeds per (method, step size)."""
    M: int = 10
    """LQR: episodes per update."""
    lqr_updates: int = 60
    """LQR: updates per run."""
    gamma: float = 0.95
    """LQR: discount (of the estimators and of the exact J reported)."""
    skip_mountain_car: bool = False
    """Run the LQR part only."""
    mc_seeds: int = 6
    """Mountain car: seeds per (method, step size)."""
    mc_M: int = 5
    """Mountain car: episodes per update."""
    mc_cap: int = 1000
    """Mountain car: episode cap (gymnax max_steps_in_episode and the agents' horizon)."""
    mc_updates: int = 300
    """Mountain car: updates per run."""
    mc_dict: int = 64
    """Mountain car: BAC's ALD dictionary capacity."""
    methods: tuple[str, ...] = ()
    """Run only these methods (names as in the tables, e.g. "BAC" "MC-PG"); empty: all."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/bayesian_pg unless --out is given)."""
    smoke: bool = False
    """Tiny sizes (CI): 2 seeds, a few updates, short mountain-car episodes; never writes results/."""


SMOKE = dict(seeds=2, M=3, lqr_updates=4, mc_seeds=2, mc_M=2, mc_cap=40, mc_updates=2, mc_dict=8,
             methods=("MC-PG", "BPG-1", "BPG-2 natural", "BAC"))


def lqr_methods(M, updates, gamma):
    """(name, config, step sizes) for the LQR comparison."""
    vanilla, natural = (1e-3, 3e-3, 1e-2), (0.1, 0.3, 1.0)
    kw = dict(num_episodes=M, num_updates=updates, gamma=gamma)
    return [
        ("MC-PG", B.BPGConfig(estimator="mc", **kw), vanilla),
        ("BPG-1", B.BPGConfig(estimator="bpg1", **kw), vanilla),
        ("BPG-2", B.BPGConfig(estimator="bpg2", **kw), vanilla),
        ("BPG-1 natural", B.BPGConfig(estimator="bpg1", natural=True, **kw), natural),
        ("BPG-2 natural", B.BPGConfig(estimator="bpg2", natural=True, **kw), natural),
        ("BAC", B.BACConfig(**kw), (1e-2, 3e-2, 1e-1)),
        ("BAC natural", B.BACConfig(natural=True, **kw), (1.0, 3.0, 10.0)),
    ]


def run_grid(cfg, env, p, steps, seeds, extra):
    """Train ``len(steps) x seeds`` runs in one vmap; returns metrics with leading axes [S, seeds, ...]."""
    entry = agents.get("bac" if isinstance(cfg, B.BACConfig) else "bpg")
    train = make_train(entry.make(cfg, env, p))
    hps, _ = sweep.grid(entry.default_hparams(cfg).replace(**{k: jnp.float32(v) for k, v in extra.items()}), step_size=steps)
    _, m = sweep.run_sweep(train, sweep.seed_keys(range(seeds)), hps)
    return jax.tree.map(np.asarray, m)


def run_lqr(args):
    env, p = make("lqr:lqr-1d")
    J = jax.jit(jax.vmap(jax.vmap(jax.vmap(lambda th: lqr_exact_return(th, p, args.gamma)))))
    rows, curves = [], {}
    J0 = float(lqr_exact_return(jnp.array([-0.2, 0.0]), p, args.gamma))
    for name, cfg, steps in lqr_methods(args.M, args.lqr_updates, args.gamma):
        if args.methods and name not in args.methods:
            continue
        t = time.time()
        m = run_grid(cfg, env, p, steps, args.seeds, dict(max_step_norm=0.5))
        Js = np.asarray(J(jnp.asarray(m["theta"])))  # [S, seeds, updates]
        Js = np.where(np.isfinite(Js), Js, -1e6)
        final = Js[:, :, -10:].mean(-1)  # mean over the last 10 updates
        for i, s in enumerate(steps):
            hit = (Js[i] > -2.0).argmax(-1).astype(float)
            hit[~(Js[i] > -2.0).any(-1)] = np.nan
            rows.append([name, s, *stats.mean_ci(final[i]),
                         float(np.nanmean(hit) * args.M) if np.isfinite(hit).any() else "never",
                         int(np.isfinite(hit).sum())])
        best = int(final.mean(-1).argmax())
        curves[name] = (steps[best], Js[best])
        print(f"LQR {name:14s} best step {steps[best]:g}: final J {final[best].mean():.3f}  ({time.time() - t:.1f}s)", flush=True)
    return rows, curves, J0


def run_mountain_car(args):
    env, p = make("gymnax:MountainCar-v0", max_steps_in_episode=args.mc_cap)
    kw = dict(num_episodes=args.mc_M, horizon=args.mc_cap, num_updates=args.mc_updates, gamma=0.99, init_theta=None)
    methods = [
        ("MC-PG", B.BPGConfig(estimator="mc", **kw), (3e-4, 3e-3), dict(max_step_norm=0.3)),
        ("BPG-2", B.BPGConfig(estimator="bpg2", **kw), (3e-3, 1e-2), dict(max_step_norm=0.3)),
        ("BAC", B.BACConfig(sparse=True, dictionary_size=args.mc_dict, **kw), (3e-3, 1e-2), dict(max_step_norm=0.3)),
    ]
    rows, curves = [], {}
    for name, cfg, steps, extra in methods:
        if args.methods and name not in args.methods:
            continue
        t = time.time()
        m = run_grid(cfg, env, p, steps, args.mc_seeds, extra)
        L = m["episode_length"]  # [S, seeds, updates]
        final = L[:, :, -10:].mean(-1)
        for i, s in enumerate(steps):
            rows.append([name, s, *stats.mean_ci(final[i]),
                         float(L[i].mean()), float(L[i].mean(0).min()), float(L[i, :, :10].mean())])
        best = int(L.mean((1, 2)).argmin())  # by mean length over the whole run (less noisy)
        curves[name] = (steps[best], L[best])
        print(f"MountainCar {name:6s} best step {steps[best]:g}: final length {final[best].mean():.1f}  ({time.time() - t:.1f}s)", flush=True)
    return rows, curves


def plot(curves, M, ylabel, title, path, ref=None, ylim=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, (step, Y) in curves.items():
        x = (np.arange(Y.shape[-1]) + 1) * M
        lo, mid, hi = np.percentile(Y, [25, 50, 75], axis=0)  # median and quartiles over seeds
        ax.plot(x, mid, label=f"{name} (beta0={step:g})")
        ax.fill_between(x, lo, hi, alpha=0.2)
    if ref is not None:
        ax.axhline(ref, color="k", ls=":", lw=1)
    ax.set(xlabel="episodes sampled", ylabel=ylabel + " (median, quartiles over seeds)", title=title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, **SMOKE, out=SMOKE_OUT if args.out == OUT else args.out)
    out = args.out
    os.makedirs(out, exist_ok=True)

    rows, curves, J0 = run_lqr(args)
    meta = provenance(seeds=f"PRNGKey(s), s < {args.seeds}", M=args.M, updates=args.lqr_updates, gamma=args.gamma,
                      J_init=round(J0, 3), max_step_norm=0.5)
    header = ["method", "step_size", "final_J", "final_J_ci95_lo", "final_J_ci95_hi", "episodes_to_J>-2", "seeds_reaching"]
    write_csv(f"{out}/learning_lqr.csv", header, rows, meta)
    plot(dict(curves), args.M, "exact J(theta)", "1-D LQR: exact return vs episodes", f"{out}/learning_lqr.png",
         ylim=(1.1 * J0, 0.0))
    body = (f"Exact J(theta) (closed form) after {args.lqr_updates} updates x {args.M} episodes, mean of the last 10 updates; "
            f"J at the initial theta = {J0:.3f}. All updates clipped to norm 0.5. "
            "CI: 95% percentile bootstrap over seeds (`rlsuite.core.stats`).\n\n" + markdown_table(header, rows))
    write_markdown(f"{out}/learning_lqr.md", "Learning curves on the 1-D LQR (equal episodes)", body, meta)

    if not args.skip_mountain_car:
        rows, curves = run_mountain_car(args)
        meta = provenance(seeds=f"PRNGKey(s), s < {args.mc_seeds}", M=args.mc_M, updates=args.mc_updates,
                          episode_cap=args.mc_cap, dictionary=args.mc_dict, gamma=0.99)
        header = ["method", "step_size", "final_episode_length", "ci95_lo", "ci95_hi", "mean_length_all_updates",
                  "best_update_mean_length", "initial_episode_length"]
        write_csv(f"{out}/learning_mountain_car.csv", header, rows, meta)
        plot(curves, args.mc_M, "mean episode length", f"MountainCar-v0 (actions 0/2, cap {args.mc_cap})",
             f"{out}/learning_mountain_car.png", ref=args.mc_cap)
        body = (f"Mean episode length (lower is better; cap {args.mc_cap}) over the last 10 of {args.mc_updates} updates "
                f"x {args.mc_M} episodes; updates clipped to norm 0.3; vanilla (not natural) gradients: the sum-form Fisher "
                f"of the redundant 2-action softmax is singular, and its natural step only follows the clip.\n\n"
                + markdown_table(header, rows))
        write_markdown(f"{out}/learning_mountain_car.md", "Learning curves on mountain car (equal episodes)", body, meta)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
