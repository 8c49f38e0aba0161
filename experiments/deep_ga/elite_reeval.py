"""Elite re-evaluation vs picking the elite by its one-episode score (sheet §8): the gap between the
elite's training score and its 200-episode test score, on gymnax CartPole-v1 early in training.

Both arms run the same GA (N 64, T 10, sigma 0.05, MLP 32-32) for ``--generations`` generations:
``reeval`` picks the elite among the top 10 (+ previous elite) by the mean of 30 more episodes (the
paper); ``one-episode`` picks the best one-episode score (``elite_episodes = 0``).  Training score =
the score the elite was selected with; test = 200 fresh episodes.  Early generations are where
one-episode luck matters (CartPole's only noise is its initial state).

    python experiments/deep_ga/elite_reeval.py            # 5 seeds
    python experiments/deep_ga/elite_reeval.py --smoke    # < 60 s
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tyro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_dir, run_segment  # noqa: E402


@dataclasses.dataclass
class Args:
    """Options (``--help``); ``--smoke`` runs a tiny version that writes to /tmp."""

    seeds: int = 5
    """Seeds."""
    generations: int = 1
    """GA generations before the elite is compared."""
    smoke: bool = False
    """Tiny sizes (< 60 s), output under /tmp/rlsuite-smoke: checks the script end to end."""


def main(a: Args) -> None:
    from rlsuite.core.results import markdown_table, provenance, write_csv, write_markdown
    from rlsuite.meta import deep_ga as D

    seeds, N, hidden, test_eps = (1, 16, (8,), 20) if a.smoke else (a.seeds, 64, (32, 32), 200)
    rows = []
    for arm, eps in (("reeval", 30), ("one-episode", 0)):
        for seed in range(seeds):
            cfg = D.GAConfig(population=N, truncation=10, sigma=0.05, generations=a.generations, elite_candidates=10,
                             elite_episodes=eps, test_episodes=test_eps, hidden=hidden, seed=seed)
            ga = D.build("gymnax:CartPole-v1", cfg)
            state, m = run_segment(ga, a.generations)
            train = float(m["elite_fitness"][-1])
            test = D.test_elite(ga, state, test_eps)["mean_return"]
            rows.append([arm, seed, train, test, train - test, int(m["frames"].sum())])
            print(f"{arm} seed {seed}: train {train:.1f} test {test:.1f}", file=sys.stderr, flush=True)
    header = ["elite choice", "seed", "training score", f"test ({test_eps} episodes)", "gap", "frames"]
    agg = [[arm, float(np.mean([r[2] for r in rows if r[0] == arm])), float(np.mean([r[3] for r in rows if r[0] == arm])),
            float(np.mean([r[4] for r in rows if r[0] == arm])), float(np.mean([abs(r[4]) for r in rows if r[0] == arm]))]
           for arm in ("reeval", "one-episode")]
    meta = provenance(seeds=list(range(seeds)), generations=a.generations, population=N, smoke=a.smoke)
    out = out_dir(a.smoke)
    write_csv(os.path.join(out, "elite_reeval.csv"), header, rows, meta)
    body = (markdown_table(["elite choice", "mean training score", "mean test", "mean gap", "mean |gap|"], agg)
            + "\n\nPer seed:\n\n" + markdown_table(header, rows) + "\n")
    write_markdown(os.path.join(out, "elite_reeval.md"), "Elite re-evaluation vs one-episode elite (CartPole-v1)",
                   body, meta)
    print(open(os.path.join(out, "elite_reeval.md")).read())


if __name__ == "__main__":
    main(tyro.cli(Args))
