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

from rlsuite.data.collect import (
    KINDS,
    Builder,
    BuildSpec,
    build,
    collect,
    random_network_policy,
    stream_to_dataset,
    train_ppo,
)
from rlsuite.data.dataset import Dataset
from rlsuite.data.io import check_env, load, load_d4rl, load_minari, save, save_minari
from rlsuite.data.offline import (
    OfflineData,
    action_bounds,
    prepare_data,
    return_range,
    sample_batch,
)
from rlsuite.data.references import (
    D4RL_REFERENCES,
    dataset_normalized_score,
    normalized_score,
    policy_reference,
    random_reference,
    uniform_random_policy,
)

__all__ = [
    "Dataset", "load", "load_d4rl", "load_minari", "save", "save_minari", "check_env",
    "D4RL_REFERENCES", "normalized_score", "dataset_normalized_score", "policy_reference",
    "random_reference", "uniform_random_policy", "KINDS", "BuildSpec", "Builder", "build",
    "collect", "random_network_policy", "train_ppo", "stream_to_dataset",
    "OfflineData", "prepare_data", "sample_batch", "return_range", "action_bounds",
]
