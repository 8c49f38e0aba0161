"""The drift surfaces D(r, A): PPO's clip, DPO's closed form and the meta-trained LPO / TA-LPO ones.

Heatmaps over r in [0.5, 2] and A in [-2, 2] (the normalised advantage): PPO (eps 0.2), DPO
(alpha 2, beta 0.6), LPO meta-trained on CartPole and on SpaceInvaders, and TA-LPO at training
progress n/N = 0, 0.5, 1.  The learned drifts are PPO's plus a small network output (PPO
initialisation), so the second figure shows D - D_PPO.

    python experiments/lpo/plot_drift.py             # reads results/meta_discovery/lpo/objectives
    python experiments/lpo/plot_drift.py --smoke     # stand-in objectives, writes to /tmp

Writes ``drift_surfaces.png``, ``drift_minus_ppo.png`` and ``drift_summary.md`` into
``results/meta_discovery/lpo``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from rlsuite.core.results import markdown_table, provenance, write_markdown  # noqa: E402

R = np.linspace(0.5, 2.0, 121)
A = np.linspace(-2.0, 2.0, 121)
PROGRESS = (0.0, 0.5, 1.0)
PROBES = ((1.5, 1.0), (0.7, 1.0), (1.5, -1.0), (0.7, -1.0), (2.0, 2.0), (0.5, -2.0))


@dataclasses.dataclass(frozen=True)
class Args:
    """Drift surfaces of PPO, DPO, LPO and TA-LPO."""

    objectives: Optional[str] = None
    """Folder of the meta-trained objectives (default OUT/objectives)."""
    out: Optional[str] = None
    """Results folder (default results/meta_discovery/lpo; --smoke: /tmp/rlsuite-smoke/...)."""
    smoke: bool = False
    """Use stand-in objectives (random hidden layer, zero output) where none exist; writes to /tmp."""


def surfaces(objectives: str, smoke: bool) -> list[list[tuple[str, np.ndarray | None]]]:
    """Rows of panels ``(title, D[len(A), len(R)] or None)``."""
    import jax.numpy as jnp

    from rlsuite.agents import lpo

    r, a = jnp.meshgrid(jnp.asarray(R, jnp.float32), jnp.asarray(A, jnp.float32))

    def learned(task, method, progress=0.0):
        path, _ = C.objective_paths(objectives, task, method)
        cfg = lpo.LPOConfig.preset(C.ENVS["cpu"][task].preset, method=method)
        if not os.path.isfile(path):
            if not smoke:
                return None
            C.symmetry_breaking_init(cfg, path)
        cfg = dataclasses.replace(cfg, objective=path)
        return np.asarray(lpo.drift(cfg, lpo.default_hparams(cfg), r, a, progress))

    base = lpo.default_hparams(lpo.LPOConfig(method="dpo"))
    ppo = np.asarray(lpo.ppo_clip_drift(r, a, 0.2))
    dpo = np.asarray(lpo.dpo_drift(r, a, base.dpo_alpha, base.dpo_beta))
    rows = [[("PPO (clip 0.2)", ppo), ("DPO (alpha 2, beta 0.6)", dpo),
             ("LPO, meta-trained on CartPole", learned("cartpole", "lpo")),
             ("LPO, meta-trained on SpaceInvaders", learned("spaceinvaders", "lpo"))]]
    for task, name in (("cartpole", "CartPole"), ("spaceinvaders", "SpaceInvaders")):
        rows.append([(f"TA-LPO ({name}), n/N = {p:g}", learned(task, "ta-lpo", p)) for p in PROGRESS])
    return rows, ppo


def _figure(rows, path, meta, minus=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = max(len(r) for r in rows)
    fig, axs = plt.subplots(len(rows), ncol, figsize=(3.6 * ncol, 3.0 * len(rows)), squeeze=False)
    vals = [d if minus is None else d - minus for row in rows for _, d in row if d is not None]
    if minus is None:
        vmin, vmax, cmap = 0.0, float(np.quantile(np.concatenate([v.ravel() for v in vals]), 0.99)), "viridis"
    else:
        vmax = max(float(np.abs(v).max()) for v in vals) or 1e-6
        vmin, cmap = -vmax, "RdBu_r"
    for i, row in enumerate(rows):
        for j in range(ncol):
            ax = axs[i][j]
            if j >= len(row):
                ax.axis("off")
                continue
            title, d = row[j]
            if d is None:
                ax.text(0.5, 0.5, "objective not trained", ha="center", va="center", transform=ax.transAxes)
                ax.set_title(title, fontsize=8)
                continue
            v = d if minus is None else d - minus
            im = ax.imshow(v, origin="lower", aspect="auto", extent=(R[0], R[-1], A[0], A[-1]), cmap=cmap,
                           vmin=vmin, vmax=vmax)
            ax.axvline(1.0, color="w", lw=0.5, ls=":")
            ax.axhline(0.0, color="w", lw=0.5, ls=":")
            ax.set_title(title + ("" if minus is None else "  (minus PPO)"), fontsize=8)
            ax.set_xlabel("ratio r")
            ax.set_ylabel("advantage A")
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(("D(r, A)" if minus is None else "D(r, A) - D_PPO(r, A)") + f"; {meta['date']}", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: Args) -> None:
    out = args.out or (C.SMOKE_OUT if args.smoke else C.RESULTS)
    objectives = args.objectives or os.path.join(out, "objectives")
    rows, ppo = surfaces(objectives, args.smoke)
    meta = provenance(seeds="none (deterministic functions of the saved objectives)",
                      grid=f"r in [0.5, 2] x A in [-2, 2], {len(R)} x {len(A)} points")
    _figure(rows, os.path.join(out, "drift_surfaces.png"), meta)
    _figure(rows, os.path.join(out, "drift_minus_ppo.png"), meta, minus=ppo)
    ri = lambda x: int(np.argmin(np.abs(R - x)))  # noqa: E731
    ai = lambda x: int(np.argmin(np.abs(A - x)))  # noqa: E731
    table = []
    for row in rows:
        for title, d in row:
            if d is None:
                continue
            table.append([title, f"{np.abs(d - ppo).max():.3g}", f"{d.max():.3g}",
                          *(f"{d[ai(y), ri(x)]:.3g}" for x, y in PROBES)])
    body = ("Values of the drift on the plotted grid. `max |D - D_PPO|`: how far the objective is from PPO's "
            "clip drift anywhere on the grid (the learned ones start exactly at PPO's).\n\n"
            + markdown_table(["drift", "max abs(D - D_PPO)", "max D", *(f"D(r={x:g}, A={y:g})" for x, y in PROBES)],
                             table) + "\n")
    write_markdown(os.path.join(out, "drift_summary.md"), "Drift surfaces", body, meta)
    print(body)


if __name__ == "__main__":
    main(tyro.cli(Args))
