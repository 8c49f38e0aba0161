"""Experiment (a): accuracy of MC vs BPG Model 1 vs Model 2 gradient estimates on the 1-D LQR.

For each number of trajectories M and each repetition, M episodes are sampled at a fixed
theta with the rollout engine; every estimator is computed from the *same* episodes and compared
with the exact gradient ``jax.grad`` of the closed-form ``J(theta)``.  Reported: mean angular
error (degrees), mean relative error ``|g_hat - g| / |g|``, and the target ratio
"error of Model 2 at M / error of MC at 2M" (target <= 1).

    python experiments/bayesian_pg/gradient_accuracy.py            # CPU default (~1-2 min)
    python experiments/bayesian_pg/gradient_accuracy.py --reps 2000 --noise-vars 0.1 1 10
    python experiments/bayesian_pg/gradient_accuracy.py --smoke    # tiny sizes, writes to /tmp
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from rlsuite.agents import bayes_pg as B
from rlsuite.core import stats
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
from rlsuite.envs import make
from rlsuite.envs.lqr import lqr_exact_fisher, lqr_exact_gradient

OUT = "results/bayesian_pg"
SMOKE_OUT = "/tmp/rlsuite-smoke/bayesian_pg"
CHUNK = 100  # repetitions per vmapped call
ESTIMATORS = ("mc", "bpg1", "bpg2", "bpg2_trajG", "bpg1_exactG", "bpg2_exactG")


@dataclasses.dataclass(frozen=True)
class Args:
    reps: int = 400
    """Repetitions (independent batches of M episodes) per M."""
    Ms: tuple[int, ...] = (5, 10, 20, 40, 80)
    """Numbers of trajectories per estimate."""
    noise_vars: tuple[float, ...] = (1.0, 0.1, 10.0)
    """BPG GP noise variances sigma^2 (the first is the headline one)."""
    theta: tuple[float, float] = (-0.2, 0.0)
    """Policy parameters (lambda, log sigma) where the gradient is estimated."""
    gamma: float = 0.95
    """Discount."""
    seed: int = 0
    """Repetition keys: PRNGKey(seed + M) split into reps."""
    envs: tuple[str, ...] = ("lqr:lqr-1d", "lqr:bandit")
    """Env ids (LQR family, with a closed-form gradient)."""
    out: str = OUT
    """Output folder (``--smoke`` writes to /tmp/rlsuite-smoke/bayesian_pg unless --out is given)."""
    smoke: bool = False
    """Tiny sizes (CI): 8 repetitions, M in (5, 10), sigma^2 = 1; never writes results/."""


SMOKE = dict(reps=8, Ms=(5, 10), noise_vars=(1.0,))


def errors(est, g):
    cos = est @ g / (jnp.linalg.norm(est) * jnp.linalg.norm(g) + 1e-30)
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0))), jnp.linalg.norm(est - g) / jnp.linalg.norm(g)


def run(env_id, theta, gamma, Ms, reps, noise_vars, seed):
    env, p = make(env_id)
    g = lqr_exact_gradient(theta, p, gamma)
    G_exact = lqr_exact_fisher(theta, p)
    rows = []
    for M in Ms:
        cfg = B.BPGConfig(num_episodes=M, horizon=int(p.max_steps_in_episode), gamma=gamma)
        est, hp = B.make_estimator(cfg, env, p), B.default_hparams(cfg)

        def one(key, s2):
            _, b = est(key, theta, hp)
            U, y = b.traj_score, b.ret
            Gs = B.fisher_estimate(b.step_score, U, "step", 1e-6)
            Gt = B.fisher_estimate(b.step_score, U, "trajectory", 1e-6)
            ests = {
                "mc": B.mc_gradient(U, y).mean,
                "bpg1": B.bpg_model1(U, y, Gs, s2).mean,
                "bpg2": B.bpg_model2(U, y, Gs, s2).mean,
                "bpg2_trajG": B.bpg_model2(U, y, Gt, s2).mean,
                "bpg1_exactG": B.bpg_model1(U, y, G_exact, s2).mean,
                "bpg2_exactG": B.bpg_model2(U, y, G_exact, s2).mean,
            }
            return {k: errors(v, g) for k, v in ests.items()}

        f = jax.jit(jax.vmap(one, (0, None)))
        keys = jax.random.split(jax.random.PRNGKey(seed + M), reps)
        for s2 in noise_vars:
            chunks = [f(keys[i : i + CHUNK], jnp.float32(s2)) for i in range(0, reps, CHUNK)]  # last may be short
            r = jax.tree.map(lambda *x: np.concatenate([np.asarray(c) for c in x]), *chunks)
            for k in ESTIMATORS:
                if k == "mc" and s2 != noise_vars[0]:
                    continue  # MC does not depend on sigma^2
                a, e = np.asarray(r[k][0]), np.asarray(r[k][1])
                rows.append([env_id, M, k, float(s2) if k != "mc" else "-", *stats.mean_ci(a), *stats.mean_ci(e)])
        print(env_id, "M", M, "done", flush=True)
    return rows, np.asarray(g)


def ratios(rows, Ms, noise_vars):
    """Model 2 at M vs MC at 2M (and Model 1 for reference)."""
    idx = {(r[0], r[1], r[2], r[3]): r for r in rows}
    out = []
    for env_id in sorted({r[0] for r in rows}):
        for M in Ms:
            if 2 * M not in Ms:
                continue
            mc2 = idx[(env_id, 2 * M, "mc", "-")]
            for s2 in noise_vars:
                for k in ("bpg2", "bpg1"):
                    r = idx[(env_id, M, k, float(s2))]
                    out.append([env_id, M, k, float(s2), r[7] / mc2[7], r[4] / mc2[4]])
    return out


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r[0] for r in rows})
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 7), squeeze=False)
    for j, env_id in enumerate(envs):
        for k in ESTIMATORS:
            sel = [r for r in rows if r[0] == env_id and r[2] == k and (r[3] == "-" or r[3] == 1.0)]
            if not sel:
                continue
            Ms = [r[1] for r in sel]
            for ax, c in ((axes[0, j], 7), (axes[1, j], 4)):  # mean and its 95% bootstrap CI
                yerr = [[r[c] - r[c + 1] for r in sel], [r[c + 2] - r[c] for r in sel]]
                ax.errorbar(Ms, [r[c] for r in sel], yerr, marker="o", label=k)
        axes[0, j].set(xscale="log", yscale="log", title=f"{env_id} (sigma^2=1)", ylabel="mean relative error")
        axes[1, j].set(xscale="log", xlabel="M (trajectories)", ylabel="mean angle to true gradient (deg)")
        axes[0, j].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args: Args):
    if args.smoke:
        args = dataclasses.replace(args, **SMOKE, out=SMOKE_OUT if args.out == OUT else args.out)
    out, Ms, noise_vars = args.out, list(args.Ms), list(args.noise_vars)
    theta = jnp.asarray(args.theta, jnp.float32)
    rows, grads = [], {}
    for env_id in args.envs:
        r, g = run(env_id, theta, args.gamma, Ms, args.reps, noise_vars, args.seed)
        rows += r
        grads[env_id] = g.round(4).tolist()
    meta = provenance(seeds=f"PRNGKey({args.seed}+M) split into {args.reps} repetitions", theta=list(args.theta),
                      gamma=args.gamma, exact_gradient=grads)
    header = ["env", "M", "estimator", "noise_var", "angle_deg", "angle_ci95_lo", "angle_ci95_hi", "rel_err",
              "rel_err_ci95_lo", "rel_err_ci95_hi"]
    write_csv(f"{out}/gradient_accuracy.csv", header, rows, meta)
    rat = ratios(rows, Ms, noise_vars)
    write_csv(f"{out}/gradient_accuracy_ratio.csv", ["env", "M", "estimator", "noise_var", "rel_err_ratio_vs_mc_2M", "angle_ratio_vs_mc_2M"], rat, meta)
    plot(rows, f"{out}/gradient_accuracy.png")
    body = ("Mean over repetitions with its 95% percentile-bootstrap CI (`rlsuite.core.stats`). `bpg1`/`bpg2` use the per-step Fisher estimate (rlsuite default), "
            "`bpg2_trajG` the trajectory form (collapses to MC scaled by M/(M+sigma^2)), `*_exactG` the exact Fisher "
            "(oracle, for insight only).\n\n")
    body += markdown_table(header, rows)
    body += "\n\n## Target: error of BPG at M / error of MC at 2M (<= 1 meets it)\n\n"
    body += markdown_table(["env", "M", "estimator", "noise_var", "rel. error ratio", "angle ratio"], rat)
    write_markdown(f"{out}/gradient_accuracy.md", "BPG gradient-estimate accuracy (1-D LQR, exact gradient)", body, meta)
    for r in rat:
        if r[2] == "bpg2" and r[3] == 1.0:
            print(f"{r[0]} M={r[1]}: Model2(M)/MC(2M) rel-error ratio {r[4]:.3f}, angle ratio {r[5]:.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
