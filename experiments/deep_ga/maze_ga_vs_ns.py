"""GA vs GA-NS on the deceptive maze (``maze:hard``): does novelty search escape the trap?

Same GA (N, T, sigma, generations, MLP) for both; GA selects on reward (``d_0 - d_final``), GA-NS on
the novelty of the final (x, y) position (k = 10 nearest neighbours over archive + population,
2 random individuals archived per generation).  A seed "reaches the goal" if any individual of any
generation ends within the goal radius.  Writes ``results/deep_ga/maze_ga_vs_ns.{md,csv}`` and
``maze_final_positions.png`` (the last generation's final positions, all seeds).

    python experiments/deep_ga/maze_ga_vs_ns.py            # 5 seeds x 2 methods (~2-4 min on 2 CPU cores)
    python experiments/deep_ga/maze_ga_vs_ns.py --smoke    # < 60 s, writes to /tmp/rlsuite-smoke/deep_ga
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, run_segment  # noqa: E402


@dataclasses.dataclass
class Args:
    """Options (``--help``); ``--smoke`` runs a tiny version that writes to /tmp."""

    seeds: int = 5
    """Seeds per method."""
    generations: int = 60
    """Generations per run."""
    population: int = 100
    """Population size N."""
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.meta import deep_ga as D

    seeds = 1 if a.smoke else a.seeds
    gens, pop = (3, 16) if a.smoke else (a.generations, a.population)
    out = out_dir(a.smoke)
    rows, finals = [], {}
    for method in ("GA", "GA-NS"):
        for seed in range(seeds):
            cfg = D.GAConfig(population=pop, truncation=min(10, pop // 2), sigma=0.1, generations=gens,
                             elite_candidates=2, elite_episodes=1, test_episodes=1, hidden=(16, 16),
                             novelty=method == "GA-NS", novelty_k=10, archive_add=2, seed=seed, segments=1)
            ga = D.build("maze:hard", cfg)
            from rlsuite.envs import make

            _, params = make("maze:hard")
            t0 = time.perf_counter()
            state, m = run_segment(ga, gens)
            wall = time.perf_counter() - t0
            goal, r = np.asarray(params.goal), float(params.goal_radius)
            d = np.linalg.norm(m["bc"] - goal, axis=-1)  # [G, N] final distances
            solved = d.min(1) < r
            first = int(np.argmax(solved)) + 1 if solved.any() else None
            elite = D.test_elite(ga, state, 1)
            rows.append([method, seed, bool(solved.any()), first if first else "-", float(d.min()),
                         float(np.linalg.norm(elite["bc"] - goal)), int(m["frames"].sum()), round(wall, 1)])
            finals.setdefault(method, []).append(m["bc"][-1])
            print(f"{method} seed {seed}: reached goal {bool(solved.any())} (gen {first}), min distance "
                  f"{d.min():.2f}, {wall:.1f} s", file=sys.stderr, flush=True)
    header = ["method", "seed", "reached goal", "first generation", "min final distance", "elite final distance",
              "frames", "wall s"]
    meta = provenance(seeds=list(range(seeds)), population=pop, generations=gens, truncation=min(10, pop // 2),
                      sigma=0.1, env="maze:hard (150 steps)", smoke=a.smoke)
    write_csv(os.path.join(out, "maze_ga_vs_ns.csv"), header, rows, meta)
    summary = [[mth, f"{sum(r[2] for r in rows if r[0] == mth)}/{seeds}",
                float(np.mean([r[4] for r in rows if r[0] == mth]))] for mth in ("GA", "GA-NS")]
    body = ("Seeds reaching the goal (any individual, any generation):\n\n"
            + markdown_table(["method", "seeds reaching the goal", "mean min distance"], summary)
            + "\n\nPer seed:\n\n" + markdown_table(header, rows)
            + "\n\nFinal positions of the last generation: maze_final_positions.png\n")
    write_markdown(os.path.join(out, "maze_ga_vs_ns.md"), "GA vs GA-NS on the deceptive maze", body, meta)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for ax, mth in zip(axes, ("GA", "GA-NS")):
        for w in np.asarray(params.walls):
            ax.plot([w[0], w[2]], [w[1], w[3]], "k-", lw=2)
        for i, bc in enumerate(finals[mth]):
            ax.scatter(bc[:, 0], bc[:, 1], s=8, alpha=0.6, label=f"seed {i}")
        ax.add_patch(plt.Circle(tuple(np.asarray(params.goal)), r, color="g", alpha=0.4))
        ax.plot(*np.asarray(params.start), "r^", ms=9)
        ax.set_title(f"{mth}: final positions, generation {gens}", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlim(-0.2, 10.2)
        ax.set_ylim(-0.2, 10.2)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "maze_final_positions.png"), dpi=100)
    print(open(os.path.join(out, "maze_ga_vs_ns.md")).read())


if __name__ == "__main__":
    main(tyro.cli(Args))
