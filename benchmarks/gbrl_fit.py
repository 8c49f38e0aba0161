"""Tree-fitting throughput of rlsuite's jitted oblivious trees (rlsuite.agents.trees).

Fits ``--trees`` depth-``--depth`` oblivious trees by gradient boosting on squared loss
(``g = F - y``, lr ``--lr``, 250 quantile bins, cosine score) on an ``N x F`` regression batch,
the whole boosting loop being one jitted ``lax.scan``.  Compile time is measured separately
(AOT ``lower().compile()``); the run is timed as the best of ``--repeats``.  Fit quality:
training MSE relative to the target variance.

    python benchmarks/gbrl_fit.py            # 100 depth-4 trees on 10000 x 8 (the issue's target)
    python benchmarks/gbrl_fit.py --smoke    # 10 trees on 2000 x 8 (< 60 s)

Peer comparison NOT run here: the NVlabs ``gbrl`` wheel pulls torch with CUDA wheels (several GB),
so it is not installed.  The reference figure below is quoted from the project's STACK.md
(NVlabs gbrl 1.1.9, CPU, 100 depth-4 trees on 10000 x 8: ~8 s), NOT measured on this machine;
the printed ratio against it is therefore indicative only.  LightGBM is not measured either.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite.agents import trees as T

REFERENCE_GBRL_S = 8.0  # STACK.md, NVlabs gbrl 1.1.9 CPU, 100 depth-4 trees on 10000 x 8 (not measured here)


def make_boost(n_trees: int, depth: int, n_bins: int, lr: float, score: str):
    def boost(x, y):
        def step(carry, _):
            ens, f = carry
            tree = T.fit_tree(x, (f - y)[:, None], depth, n_bins, score)
            ens = T.add_tree(ens, tree, lr)
            f = f - lr * T.tree_predict(tree, x)[:, 0]
            return (ens, f), jnp.mean((y - f) ** 2)

        (ens, f), mse = jax.lax.scan(step, (T.init_ensemble(n_trees, depth, 1), jnp.zeros_like(y)), None,
                                     length=n_trees)
        return ens, mse

    return boost


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--n-bins", type=int, default=250)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--score", default="cosine", choices=T.SCORES)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="10 trees on 2000 x 8, one repeat")
    a = ap.parse_args(argv)
    if a.smoke:
        a.trees, a.n, a.repeats = 10, 2000, 1
    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.n, a.features)).astype(np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1] * (x[:, 2] > 0) + 0.5 * np.abs(x[:, 3]) + 0.1 * rng.normal(size=a.n))
    xj, yj = jnp.asarray(x), jnp.asarray(y, jnp.float32)
    fn = jax.jit(make_boost(a.trees, a.depth, a.n_bins, a.lr, a.score))
    t0 = time.perf_counter()
    compiled = fn.lower(xj, yj).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        ens, mse = compiled(xj, yj)
        jax.block_until_ready(mse)
        times.append(time.perf_counter() - t0)
    run_s = min(times)
    var = float(np.var(y))
    out = {
        "trees": a.trees, "depth": a.depth, "n": a.n, "features": a.features, "n_bins": a.n_bins,
        "device": str(jax.devices()[0]), "compile_s": round(compile_s, 3), "fit_s": round(run_s, 4),
        "trees_per_s": round(a.trees / run_s, 1), "train_mse": float(mse[-1]), "target_var": var,
        "relative_mse": float(mse[-1]) / var,
        "reference_gbrl_s_not_measured": REFERENCE_GBRL_S if (a.trees, a.depth, a.n, a.features) == (100, 4, 10000, 8)
        else None,
    }
    print(json.dumps(out))
    print(f"rlsuite trees: {a.trees} depth-{a.depth} trees on {a.n}x{a.features}: fit {run_s:.3f} s "
          f"(compile {compile_s:.1f} s), train MSE / var(y) = {out['relative_mse']:.3f}")
    if out["reference_gbrl_s_not_measured"]:
        print(f"NVlabs gbrl (quoted from STACK.md, NOT measured here): ~{REFERENCE_GBRL_S:.0f} s -> indicative "
              f"ratio {REFERENCE_GBRL_S / run_s:.1f}x; peer and LightGBM comparisons not run (torch+CUDA wheel)")
    return out


if __name__ == "__main__":
    main()
