"""The peer side of benchmarks/gbrl_vs_peers.py: NVlabs gbrl 1.1.9 and LightGBM fitting boosted trees.

Runs INSIDE the separate peer venv that ``gbrl_vs_peers.py --setup`` creates (gbrl pulls torch
with CUDA wheels, several GB; neither gbrl nor LightGBM may enter rlsuite's own install), so it
imports nothing from rlsuite.  Reads the regression batch ``x`` ``[N, F]``, ``y`` ``[N]`` from the
``.npz`` file the driver wrote, prints one JSON line per peer: ``fit_s`` and the training
``relative_mse`` (MSE / var(y)).

Peers (all on CPU, squared loss, gradient ``F - y``, SGD / shrinkage ``lr``, no leaf regularisation):

- ``gbrl-fit``: ``GBTModel.fit(x, y, trees)``, gbrl's own C++ supervised loop; ``batch_size = N``
  (every tree on the full batch), split candidates generated ONCE from the whole batch;
- ``gbrl-step``: the way GBRL is used in RL (and what rlsuite does): per tree, predict on the
  batch, ``step(x, F - y)``, which regenerates the candidates from the batch for every tree;
- ``lightgbm``: ``lightgbm.train`` with ``num_leaves = 2^depth``, ``max_depth = depth``,
  ``max_bin = n_bins``, ``min_data_in_leaf = 1``, ``lambda_l2 = 0``, ``min_sum_hessian = 0``
  (non-oblivious, leaf-wise trees: a reference point, not an equivalent model).

gbrl: ``grow_policy='oblivious'``, ``max_depth``, ``n_bins``, ``min_data_in_leaf=0``,
``split_score_func='cosine'``, ``generator_type='Quantile'``, ``device='cpu'``, bias 0.
Thread counts: each library's default (OpenMP: the CPUs this process may use; the driver is run
under ``taskset -c 1`` on the shared 2-core machine, where two spin-waiting OpenMP threads made
LightGBM and gbrl several hundred times slower than normal).

    python _gbrl_peer.py --data batch.npz --trees 100 --depth 4 --n-bins 250 --lr 0.1 --peers gbrl-fit lightgbm
"""

import argparse
import json
import time

import numpy as np


def rel_mse(pred, y):
    return float(np.mean((np.asarray(pred, np.float64).reshape(-1) - y) ** 2) / np.var(y))


def gbrl_model(a, n, f):
    from gbrl.models.gbt import GBTModel

    tree_struct = {"max_depth": a.depth, "grow_policy": "oblivious", "n_bins": a.n_bins, "min_data_in_leaf": 0,
                   "batch_size": n}
    opt = {"algo": "SGD", "lr": a.lr, "start_idx": 0, "stop_idx": 1}
    return GBTModel(tree_struct, f, 1, opt, params={"split_score_func": "cosine", "generator_type": "Quantile"},
                    device="cpu")


def run_gbrl_fit(a, x, y):
    m = gbrl_model(a, *x.shape)
    t0 = time.perf_counter()
    m.fit(x, y, a.trees, shuffle=False)
    fit_s = time.perf_counter() - t0
    return fit_s, rel_mse(m(x, requires_grad=False, tensor=False), y)


def run_gbrl_step(a, x, y):
    m = gbrl_model(a, *x.shape)
    t0 = time.perf_counter()
    for _ in range(a.trees):
        pred = np.asarray(m(x, requires_grad=False, tensor=False), np.float32).reshape(-1, 1)
        m.step(x, pred - y[:, None])
    fit_s = time.perf_counter() - t0
    return fit_s, rel_mse(m(x, requires_grad=False, tensor=False), y)


def run_lightgbm(a, x, y):
    import lightgbm as lgb

    params = {"objective": "regression", "learning_rate": a.lr, "num_leaves": 2**a.depth, "max_depth": a.depth,
              "max_bin": a.n_bins, "min_data_in_leaf": 1, "min_sum_hessian_in_leaf": 0.0, "lambda_l2": 0.0,
              "boost_from_average": False, "verbose": -1, "deterministic": True, "seed": 0}
    t0 = time.perf_counter()
    ds = lgb.Dataset(x, y, params={"max_bin": a.n_bins, "verbose": -1}, free_raw_data=False)
    booster = lgb.train(params, ds, num_boost_round=a.trees)
    fit_s = time.perf_counter() - t0
    return fit_s, rel_mse(booster.predict(x), y)


PEERS = {"gbrl-fit": run_gbrl_fit, "gbrl-step": run_gbrl_step, "lightgbm": run_lightgbm}


def version(peer):
    if peer.startswith("gbrl"):
        import gbrl

        return f"gbrl {gbrl.__version__}"
    import lightgbm

    return f"lightgbm {lightgbm.__version__}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--trees", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--n-bins", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--peers", nargs="+", choices=sorted(PEERS), required=True)
    a = ap.parse_args()
    d = np.load(a.data)
    x, y = np.ascontiguousarray(d["x"], np.float32), np.asarray(d["y"], np.float32)
    for peer in a.peers:
        fit_s, q = PEERS[peer](a, x, y)
        print(json.dumps({"peer": peer, "version": version(peer), "fit_s": fit_s, "relative_mse": q}), flush=True)


if __name__ == "__main__":
    main()
