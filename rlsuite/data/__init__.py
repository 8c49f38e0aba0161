"""Offline RL datasets: the :class:`Dataset` type, collection through the rollout engine
(D4RL kinds), Minari save / load, D4RL-layout HDF5 load, reference returns and normalised
scores.  See ``experiments/odice/DATA.md``.

Quick use::

    from rlsuite import data
    ds = data.load("/work/datasets/brax-hopper-medium-v0")       # Minari dir or D4RL .hdf5
    ds = ds.qlearning()                                          # D4RL qlearning_dataset semantics
    batch = ds.to_jax().sample(key, 256)                         # jittable
    prep = data.prepare_data(ds, env, env_params, reward_scale="locomotion")  # OfflineData for O-DICE / BC / IQL
    data.dataset_normalized_score(ds, returns)                   # with the stored references
"""

import importlib as _importlib

# Loaded on first use (PEP 562), so `rlsuite data --help` answers without importing JAX.
_WHERE = {
    "collect": ("KINDS", "Builder", "BuildSpec", "build", "collect", "random_network_policy",
                "stream_to_dataset", "train_ppo"),
    "dataset": ("Dataset",),
    "io": ("check_env", "load", "load_d4rl", "load_minari", "save", "save_minari"),
    "offline": ("OfflineData", "action_bounds", "prepare_data", "return_range", "sample_batch"),
    "references": ("D4RL_REFERENCES", "dataset_normalized_score", "normalized_score", "policy_reference",
                   "random_reference", "uniform_random_policy"),
}
_MODULE_OF = {name: mod for mod, names in _WHERE.items() for name in names}


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(_importlib.import_module(f"rlsuite.data.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'rlsuite.data' has no attribute {name!r}")


__all__ = [
    "Dataset", "load", "load_d4rl", "load_minari", "save", "save_minari", "check_env",
    "D4RL_REFERENCES", "normalized_score", "dataset_normalized_score", "policy_reference",
    "random_reference", "uniform_random_policy", "KINDS", "BuildSpec", "Builder", "build",
    "collect", "random_network_policy", "train_ppo", "stream_to_dataset",
    "OfflineData", "prepare_data", "sample_batch", "return_range", "action_bounds",
]
