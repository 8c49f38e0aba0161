"""N-HARPG vs N-PG-IGT: how the Hessian batch is budgeted, and which HVP estimator (issue 15).

Fatkhullin et al. (ICML 2023), sheet ``shared/papers/pg_estimators.md`` §3.3-3.4.  For every
environment of ``run.py``'s CPU scale, N-PG-IGT (``N`` gradient episodes per iteration) against
four N-HARPG variants:

- **equal**: the Hessian batch carved out of the same per-iteration budget (``N - N_B`` gradient
  + ``N_B`` Hessian episodes, so every method samples ``N`` episodes per iteration);
- **sheet**: the sheet's split (``N`` gradient + ``N_B`` Hessian episodes: ``N + N_B`` per
  iteration, i.e. more samples than IGT for the same number of iterations);

each with ``hvp_estimator="per_trajectory"`` (unbiased, the default) and ``"batch_mean"`` (the
reference code's product of batch means).  ``gamma0`` is picked per variant from a small grid by
AUC (mean evaluation return over the run) on the same seeds; differences to N-PG-IGT are paired
over seeds (same ``theta_0``) with percentile-bootstrap CIs from :mod:`rlsuite.core.stats`.

Second table: the variance of the correction ``v_t`` of both estimators **at the same Delta**.
An equal-budget N-HARPG run (per-trajectory estimator, its selected ``gamma0``) is stopped after
``--probe-iteration`` iterations; at its ``(theta_{t-1}, theta_t)`` the script draws
``--probe-draws`` independent ``(u, batch B)`` pairs and evaluates both estimators on the *same*
draws: mean ``||v||``, the total variance ``E||v - E v||^2`` (trace of the covariance) and the
distance between the two estimators' means (the batch-mean estimator's bias, up to MC error),
next to the total variance of the gradient batch ``g_A`` at ``theta_t``.  With ``N_B = 1`` the two
estimators are the same number (a mean over one trajectory is that trajectory).

    python experiments/pg_estimators/harpg_budget.py                 # CartPole, Acrobot, hopper; 10 seeds
    python experiments/pg_estimators/harpg_budget.py --envs cartpole
    python experiments/pg_estimators/harpg_budget.py --smoke         # tiny (compile-bound, 1-3 min), /tmp

Writes, per environment as soon as it is done, ``results/pg_estimators/harpg_budget_<env>.{md,csv}``
and ``hvp_variance_<env>.csv``.  ``--hopper-iterations`` shortens the hopper runs (CPU budget).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Literal, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tyro
from jax.flatten_util import ravel_pytree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import CPU, SMOKE, EnvSpec, make_env  # noqa: E402  (the comparison's env settings)

from rlsuite import agents  # noqa: E402
from rlsuite.agents import npg  # noqa: E402
from rlsuite.agents import pg_common as pg  # noqa: E402
from rlsuite.core import stats, sweep  # noqa: E402
from rlsuite.core.agent import make_train  # noqa: E402
from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown  # noqa: E402

# name -> (registry agent, budget, hvp_estimator)
VARIANTS = {
    "N-PG-IGT": ("npg-igt", None, None),
    "N-HARPG equal, per-traj": ("nharpg", "equal", "per_trajectory"),
    "N-HARPG equal, batch-mean": ("nharpg", "equal", "batch_mean"),
    "N-HARPG sheet, per-traj": ("nharpg", "sheet", "per_trajectory"),
    "N-HARPG sheet, batch-mean": ("nharpg", "sheet", "batch_mean"),
}
GRID = (0.1, 0.3)  # run.py's best N-PG-IGT / N-HARPG gamma0 is 0.1 or 0.3 on every task


@dataclasses.dataclass(frozen=True)
class Args:
    """N-HARPG (two budgets x two HVP estimators) vs N-PG-IGT, and the variance of v_t."""

    envs: Optional[tuple[Literal["cartpole", "acrobot", "hopper"], ...]] = None
    """Environments (default: all three; with --smoke: cartpole)."""
    seeds: int = 10
    """Seeds per (variant, gamma0): PRNGKey(s), s < seeds."""
    probe_iteration: int = 10
    """Iteration t at which the variance of v_t is measured (Delta = theta_t - theta_{t-1})."""
    probe_draws: int = 200
    """Independent (u, batch B) draws for the variance table."""
    hopper_iterations: Optional[int] = None
    """Iterations on hopper (default: run.py's CPU spec, 40); fewer to fit a loaded CPU."""
    out: Optional[str] = None
    """Output folder (default results/pg_estimators; with --smoke /tmp/rlsuite-smoke/pg_estimators)."""
    smoke: bool = False
    """Tiny sizes (seconds): checks the script end to end without touching results/."""


def make_variant(variant: str, spec: EnvSpec, env, env_params):
    """``(agent, config, default_hparams)`` of one variant with its batch sizes."""
    name, budget, estimator = VARIANTS[variant]
    entry = agents.get(name)
    kw = dict(horizon=spec.horizon, num_iterations=spec.iterations, eval_every=spec.eval_every,
              hidden=spec.hidden, batch_episodes=spec.episodes)
    if budget is not None:
        grad = spec.episodes - spec.hessian_episodes if budget == "equal" else spec.episodes
        kw.update(batch_episodes=grad, hessian_episodes=spec.hessian_episodes, hvp_estimator=estimator)
    cfg = entry.config(**kw)
    return entry.make(cfg, env, env_params), cfg, entry.default_hparams(cfg)


def run_variant(variant: str, spec: EnvSpec, env, env_params, seeds: int, grid) -> dict:
    agent, cfg, hp = make_variant(variant, spec, env, env_params)
    hps, _ = sweep.grid(hp, gamma0=list(grid))
    t0 = time.perf_counter()
    _, m = sweep.run_sweep(make_train(agent, eval_every=cfg.eval_every), sweep.seed_keys(range(seeds)), hps)
    ev = np.asarray(m["eval_return"])  # [G, S, E]
    auc = ev.mean(-1)
    best = int(np.argmax(np.where(np.isfinite(auc), auc, -np.inf).mean(1)))
    return {"auc": auc[best], "final": ev[best, :, -1], "gamma0": grid[best],
            "per_iteration": agent.steps_per_update // spec.horizon,
            "trajectories": int(np.asarray(m["trajectories"])[0, 0, -1]),
            "seconds": time.perf_counter() - t0}


def probe_variance(spec: EnvSpec, env, env_params, gamma0: float, args: Args) -> list:
    """Both HVP estimators on the same ``probe_draws`` (u, batch B) draws at one (theta_{t-1}, theta_t)."""
    agent, cfg, hp = make_variant("N-HARPG equal, per-traj", spec, env, env_params)
    hp = hp.replace(gamma0=jnp.float32(gamma0))
    state = jax.jit(lambda k: agent.segment(agent.init(k, hp), hp, args.probe_iteration)[0])(
        jax.random.PRNGKey(0))
    policy = pg.make_policy(cfg, env, env_params)
    delta = jax.tree.map(jnp.subtract, state.params, state.prev_params)
    flat = lambda t: ravel_pytree(t)[0]  # noqa: E731

    def coefs(traj):
        return pg.gpomdp_coefficients(traj, hp.discount, cfg.discount_from, True, state.baseline)[0]

    def one(key):
        k_u, k_b, k_a = jax.random.split(key, 3)
        q = npg.harpg_point(state.params, state.prev_params, jax.random.uniform(k_u))
        tb = pg.sample(cfg, env, env_params, policy, q, k_b, cfg.hessian_episodes)
        ta = pg.sample(cfg, env, env_params, policy, state.params, k_a, cfg.batch_episodes)
        return (flat(pg.batch_hvp(policy.log_prob, q, delta, tb, coefs(tb))),
                flat(pg.batch_hvp_mean(policy.log_prob, q, delta, tb, coefs(tb))),
                flat(pg.batch_gradient(policy.log_prob, state.params, ta, coefs(ta))))

    keys = jax.random.split(jax.random.PRNGKey(1), args.probe_draws)
    v_pt, v_bm, g_a = map(np.asarray, jax.jit(jax.vmap(one))(keys))
    total_var = lambda x: float(((x - x.mean(0)) ** 2).sum(1).mean())  # noqa: E731
    bias = float(np.linalg.norm(v_bm.mean(0) - v_pt.mean(0)))
    se_bias = float(np.sqrt((total_var(v_bm) + total_var(v_pt)) / args.probe_draws))
    d_norm = float(optax.global_norm(delta))
    rows = []
    for label, v in (("per_trajectory", v_pt), ("batch_mean", v_bm)):
        rows.append([label, args.probe_iteration, cfg.hessian_episodes, round(d_norm, 4),
                     float(np.linalg.norm(v, axis=1).mean()), float(np.linalg.norm(v.mean(0))),
                     total_var(v), bias if label == "batch_mean" else 0.0,
                     se_bias if label == "batch_mean" else 0.0, total_var(g_a), cfg.batch_episodes])
    return rows


def main(args: Args) -> None:
    if args.smoke:
        args = dataclasses.replace(args, envs=args.envs or ("cartpole",), seeds=min(args.seeds, 3),
                                   probe_iteration=2, probe_draws=8,
                                   out=args.out or "/tmp/rlsuite-smoke/pg_estimators")
    args = dataclasses.replace(args, envs=args.envs or tuple(CPU), out=args.out or "results/pg_estimators")
    if args.seeds < 2:
        raise ValueError(f"--seeds must be >= 2 for confidence intervals, got {args.seeds}")
    if args.probe_draws < 2 or args.probe_iteration < 1:
        raise ValueError(f"--probe-draws must be >= 2 and --probe-iteration >= 1, got "
                         f"{args.probe_draws} and {args.probe_iteration}")
    specs = dict(SMOKE if args.smoke else CPU)
    if args.hopper_iterations is not None and not args.smoke:
        if args.hopper_iterations % specs["hopper"].eval_every:
            raise ValueError(f"--hopper-iterations={args.hopper_iterations} must be a multiple of "
                             f"eval_every={specs['hopper'].eval_every}")
        specs["hopper"] = dataclasses.replace(specs["hopper"], iterations=args.hopper_iterations)
    if not args.smoke:
        bad = [n for n in args.envs if args.probe_iteration >= specs[n].iterations]
        if bad:
            raise ValueError(f"--probe-iteration={args.probe_iteration} must be below the iterations of {bad}")

    for name in args.envs:  # one set of files per env, written as soon as the env is done
        run_env(args, specs, name)


def run_env(args: Args, specs: dict, name: str) -> None:
    """Run every variant and the variance probe on env ``name``; write its files."""
    rows, var_rows, order = [], [], []
    spec = specs[name]
    env, env_params = make_env(spec)
    res = {}
    for variant in VARIANTS:
        r = res[variant] = run_variant(variant, spec, env, env_params, args.seeds, GRID)
        auc, final = stats.mean_ci(r["auc"]), stats.mean_ci(r["final"])
        rows.append([name, variant, r["per_iteration"], r["trajectories"], r["gamma0"],
                     stats.fmt_ci(*auc), stats.fmt_ci(*final), f"{r['seconds']:.0f}"])
        print(f"{name:9s} {variant:27s} gamma0={r['gamma0']} AUC {stats.fmt_ci(*auc)} "
              f"({r['seconds']:.0f} s)", flush=True)
    for variant in list(VARIANTS)[1:]:
        d = stats.mean_ci(res[variant]["auc"] - res["N-PG-IGT"]["auc"])
        p = stats.prob_improvement(res[variant]["auc"], res["N-PG-IGT"]["auc"])
        verdict = ("N-HARPG ahead (significant)" if d[1] > 0 else
                   "N-PG-IGT ahead (significant)" if d[2] < 0 else "no significant difference")
        order.append([name, variant, stats.fmt_ci(*d), stats.fmt_ci(*p), verdict])
    var_rows += [[name] + r for r in probe_variance(spec, env, env_params,
                                                      res["N-HARPG equal, per-traj"]["gamma0"], args)]
    print(markdown_table(VAR_HEADER, var_rows[-2:]), flush=True)

    meta = provenance(seeds=f"{args.seeds} (PRNGKey(s), s < {args.seeds}); variance probe: seed 0",
                      scale="smoke" if args.smoke else f"cpu (run.py's CPU sizes; {spec.iterations} iterations)",
                      machine="2 CPU cores shared with other jobs (wall times are inflated)")
    header = ["env", "variant", "episodes / iteration", "trajectories", "gamma0",
              "AUC mean [95% CI]", "final mean [95% CI]", "wall s"]
    write_csv(os.path.join(args.out, f"harpg_budget_{name}.csv"), header, rows, meta)
    write_csv(os.path.join(args.out, f"hvp_variance_{name}.csv"), VAR_HEADER, var_rows, meta)
    body = _summary(args, specs, [name], rows, header, order, var_rows)
    write_markdown(os.path.join(args.out, f"harpg_budget_{name}.md"),
                   f"N-HARPG vs N-PG-IGT on {name}: Hessian-batch budget and HVP estimator", body, meta)
    print(body, flush=True)


VAR_HEADER = ["env", "estimator", "t", "N_B", "‖Delta‖", "mean ‖v‖", "‖mean v‖",
              "total variance E‖v - Ev‖^2", "‖mean v_bm - mean v_pt‖", "its MC s.e.",
              "total variance of g_A", "N (g_A)"]


def _summary(args, specs, envs, rows, header, order, var_rows) -> str:
    setup = markdown_table(
        ["env", "id", "H", "N", "N_B", "iterations", "policy"],
        [[n, specs[n].env_id, specs[n].horizon, specs[n].episodes, specs[n].hessian_episodes,
          specs[n].iterations, f"MLP {list(specs[n].hidden)}"] for n in envs])
    fmt_var = [[r[0], r[1], r[2], r[3], r[4]] + [f"{x:.4g}" for x in r[5:10]] + [f"{r[10]:.4g}", r[11]]
               for r in var_rows]
    return (
        "N-PG-IGT samples N gradient episodes per iteration. N-HARPG *equal*: N - N_B gradient + "
        "N_B Hessian episodes (same samples per iteration as IGT); *sheet*: N gradient + N_B Hessian "
        "(N + N_B per iteration: more samples than IGT at the same iteration count). per-traj: the "
        "unbiased per-trajectory HVP (default); batch-mean: the reference code's product of batch "
        "means. gamma0 best of {0.1, 0.3} by AUC (mean evaluation return over the run, 10 evaluation "
        "episodes at theta_t every eval_every iterations) on the same seeds. CIs: percentile "
        "bootstrap (rlsuite.core.stats, 2000 resamples) over seeds.\n\n"
        f"{setup}\n\n{markdown_table(header, rows)}\n\n"
        "## Paired over seeds: AUC(variant) - AUC(N-PG-IGT)\n\n"
        + markdown_table(["env", "variant", "AUC difference [95% CI]", "P(variant > IGT) [95% CI]",
                          "verdict"], order)
        + f"\n\n## Variance of the correction v_t at the same Delta (iteration {args.probe_iteration} "
        f"of the equal-budget per-trajectory run, seed 0, {args.probe_draws} draws of (u, batch B), "
        "both estimators on the same draws)\n\n"
        + markdown_table(VAR_HEADER, fmt_var) + "\n"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
