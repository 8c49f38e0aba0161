"""Saving and loading datasets: Minari (read / write) and D4RL-layout HDF5 (read).

**Minari** (``minari`` package, local only, never downloads).  :func:`save_minari` writes the
standard layout ``PATH/data/{metadata.json, main_data.hdf5}``, one HDF5 group per episode with
``observations [T+1]`` (the last entry is the final ``next_observation``), ``actions``,
``rewards``, ``terminations``, ``truncations`` ``[T]`` and ``infos/log_probs [T]``; rlsuite's
metadata is kept as JSON under the ``rlsuite_metadata`` key, the reference returns also as
Minari's ``ref_min_score`` / ``ref_max_score``.  The dataset id defaults to ``PATH``'s base
name (it must look like ``name-v0``), so ``MINARI_DATASETS_PATH=$(dirname PATH)`` plus
``minari.load_dataset(basename)`` also works.  :func:`load_minari` takes such a directory, a
``data/`` directory, or a dataset id under ``MINARI_DATASETS_PATH``.  Round trip is exact:
every array (dtype included), the episode boundaries and the ``timeouts`` flags.

**D4RL HDF5** (:func:`load_d4rl`): a flat file with ``observations``, ``actions``, ``rewards``,
``terminals``, ``timeouts`` and optionally ``next_observations`` and
``infos/action_log_probs``.  Without ``next_observations`` the successor of row ``i`` is row
``i + 1`` except at time-outs, whose successor is unknown: those rows keep a placeholder
(``next_observations = observations``; ``metadata["next_observations_reconstructed"]``) and
must be dropped, which :meth:`Dataset.qlearning` does by default.  The last row of a file is
treated as a cut trajectory (``timeouts`` set) if it is neither terminal nor a time-out.

Every problem (missing file, missing key, mismatched lengths, wrong observation shape for an
env, corrupt or truncated file, NaN values) raises one ``ValueError`` naming it
(``FileNotFoundError`` for a path that does not exist).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from rlsuite.data.dataset import Dataset

METADATA_KEY = "rlsuite_metadata"
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def _jsonable(md: dict) -> dict:
    def conv(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (set, tuple)):
            return list(o)
        return str(o)

    return json.loads(json.dumps(md, default=conv))


# ----------------------------------------------------------------------------- Minari


def _spaces(ds: Dataset):
    import gymnasium

    obs_space = gymnasium.spaces.Box(-np.inf, np.inf, tuple(ds.observations.shape[1:]), np.float32)
    if ds.discrete:
        act_space = gymnasium.spaces.Discrete(ds.act_dim)
    else:
        low = ds.metadata.get("action_low", -np.inf)
        high = ds.metadata.get("action_high", np.inf)
        shape = tuple(ds.actions.shape[1:])
        act_space = gymnasium.spaces.Box(
            np.broadcast_to(np.asarray(low, np.float32), shape).copy(),
            np.broadcast_to(np.asarray(high, np.float32), shape).copy(), shape, np.float32,
        )
    return obs_space, act_space


def _dataset_id(path: pathlib.Path, dataset_id: str | None) -> str:
    from minari.dataset.minari_dataset import parse_dataset_id

    did = dataset_id or path.name
    try:
        parse_dataset_id(did)
    except Exception:
        raise ValueError(
            f"Minari dataset id {did!r} is not valid: it must look like '[namespace/]name-v<version>', "
            f"e.g. 'hopper-medium-v0' (it defaults to the output directory's name)"
        ) from None
    return did


def save_minari(ds: Dataset, path: str, dataset_id: str | None = None, overwrite: bool = False) -> str:
    """Write ``ds`` as a Minari dataset in directory ``path`` (see the module docstring).

    Returns the dataset's ``data/`` directory.
    """
    from minari import __version__ as minari_version
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    ds = ds.to_numpy()
    ds.validate()
    path = pathlib.Path(os.path.abspath(path))  # minari mis-joins relative data paths
    did = _dataset_id(path, dataset_id)
    final = path / "data"
    if final.exists() and not overwrite:
        raise ValueError(f"a dataset already exists at {path}; pass overwrite=True (CLI: --overwrite) to replace it")
    path.mkdir(parents=True, exist_ok=True)
    # write next to the target, then swap it in: a crash never leaves a half-written dataset
    import shutil
    import tempfile

    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".tmp-", dir=path))
    data_path = tmp / "data"
    obs_space, act_space = _spaces(ds)
    storage = MinariStorage.new(data_path, observation_space=obs_space, action_space=act_space, jpeg_encoding=False)
    md = _jsonable(ds.metadata)
    minari_md: dict[str, Any] = {
        "dataset_id": did,
        "minari_version": minari_version,
        "algorithm_name": str(md.get("policy", "rlsuite")),
        "author": {"rlsuite"},
        "code_permalink": "https://github.com/rlsuite/rlsuite (rlsuite/data)",
        "description": f"rlsuite offline dataset: env {md.get('env_id')}, kind {md.get('kind')}",
        METADATA_KEY: json.dumps(md),
    }
    if md.get("ref_random_return") is not None and md.get("ref_expert_return") is not None:
        minari_md["ref_min_score"] = float(md["ref_random_return"])
        minari_md["ref_max_score"] = float(md["ref_expert_return"])
    storage.update_metadata(minari_md)

    starts, ends = ds.episode_boundaries()

    def buffers():
        for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
            obs = np.concatenate([ds.observations[s:e], ds.next_observations[e - 1 : e]], 0)
            infos = None if ds.log_probs is None else {"log_probs": ds.log_probs[s:e]}
            yield EpisodeBuffer(
                id=i, observations=obs, actions=ds.actions[s:e], rewards=ds.rewards[s:e],
                terminations=ds.terminals[s:e], truncations=ds.timeouts[s:e], infos=infos,
            )

    try:
        storage.update_episodes(buffers())
        if final.exists():
            shutil.rmtree(final)
        os.replace(data_path, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def _minari_data_path(path_or_id: str) -> pathlib.Path:
    p = pathlib.Path(path_or_id)
    if p.is_dir():
        if (p / "data" / "metadata.json").exists():
            return p / "data"
        if (p / "metadata.json").exists():
            return p
        raise ValueError(f"{p} is a directory but holds no Minari dataset (no data/metadata.json)")
    if p.exists():
        raise ValueError(f"{p} is a file; a Minari dataset is a directory with data/metadata.json")
    # A Minari dataset id: looked up under MINARI_DATASETS_PATH (Minari's default ~/.minari/datasets)
    # without minari's get_dataset_path, which creates that folder in the home directory as a side
    # effect of a mere look-up.
    root = pathlib.Path(os.environ.get("MINARI_DATASETS_PATH") or pathlib.Path.home() / ".minari" / "datasets")
    cand = root / path_or_id / "data"
    if (cand / "metadata.json").exists():
        return cand
    raise FileNotFoundError(
        f"no dataset at {path_or_id!r}: not a directory, and not a local Minari dataset id under "
        f"MINARI_DATASETS_PATH={os.environ.get('MINARI_DATASETS_PATH', '~/.minari/datasets')}"
    )


def load_minari(path_or_id: str, validate: bool = True) -> Dataset:
    """Load a Minari dataset (directory, ``data/`` directory, or local dataset id) as a
    :class:`Dataset`.  Works for any Minari dataset with flat Box observations (Box or Discrete
    actions); rlsuite's own metadata is restored when present."""
    import gymnasium
    from minari import MinariDataset

    data_path = _minari_data_path(path_or_id)
    try:
        mds = MinariDataset(data_path)
        obs_space, act_space = mds.observation_space, mds.action_space
        if not isinstance(obs_space, gymnasium.spaces.Box):
            raise ValueError(f"{path_or_id}: only Box observation spaces are supported, got {obs_space}")
        if not isinstance(act_space, (gymnasium.spaces.Box, gymnasium.spaces.Discrete)):
            raise ValueError(f"{path_or_id}: only Box or Discrete action spaces are supported, got {act_space}")
        raw_md = mds.storage.metadata
        cols: dict[str, list] = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts", "log_probs")}
        for ep in mds.iterate_episodes():
            T = len(ep.rewards)
            obs = np.asarray(ep.observations)
            if obs.shape[0] != T + 1:
                raise ValueError(
                    f"{path_or_id}: episode {ep.id} has {obs.shape[0]} observations for {T} steps (expected {T + 1})"
                )
            for k, v in (("actions", ep.actions), ("terminals", ep.terminations), ("timeouts", ep.truncations)):
                if len(v) != T:
                    raise ValueError(f"{path_or_id}: episode {ep.id} has {len(v)} {k} for {T} rewards")
            cols["observations"].append(obs[:-1].reshape(T, -1) if obs.ndim > 2 else obs[:-1])
            cols["next_observations"].append(obs[1:].reshape(T, -1) if obs.ndim > 2 else obs[1:])
            cols["actions"].append(np.asarray(ep.actions))
            cols["rewards"].append(np.asarray(ep.rewards))
            cols["terminals"].append(np.asarray(ep.terminations))
            cols["timeouts"].append(np.asarray(ep.truncations))
            infos = ep.infos or {}
            lp = infos.get("log_probs") if isinstance(infos, dict) else None
            cols["log_probs"].append(None if lp is None else np.asarray(lp))
    except ValueError:
        raise
    except (OSError, KeyError, AssertionError) as e:
        raise ValueError(f"Minari dataset at {data_path} is corrupt or incomplete: {type(e).__name__}: {e}") from None
    if not cols["rewards"]:
        raise ValueError(f"Minari dataset at {data_path} has no episodes")
    md: dict[str, Any] = {}
    if METADATA_KEY in raw_md:
        md = json.loads(raw_md[METADATA_KEY])
    else:
        md = {"source": "minari", "minari_dataset_id": raw_md.get("dataset_id")}
        if "ref_min_score" in raw_md and "ref_max_score" in raw_md:
            md.update(ref_random_return=float(raw_md["ref_min_score"]), ref_expert_return=float(raw_md["ref_max_score"]),
                      ref_source="minari")
        if isinstance(act_space, gymnasium.spaces.Discrete):
            md["num_actions"] = int(act_space.n)
    md["loaded_from"] = str(data_path.parent if data_path.name == "data" else data_path)
    arrays = {k: np.concatenate(v, 0) for k, v in cols.items() if k != "log_probs"}
    if all(x is not None for x in cols["log_probs"]):
        arrays["log_probs"] = np.concatenate(cols["log_probs"], 0)
    if isinstance(act_space, gymnasium.spaces.Discrete):
        arrays["actions"] = arrays["actions"].astype(np.int32).reshape(-1)
    return Dataset.from_arrays(metadata=md, validate=validate, **arrays)


# ----------------------------------------------------------------------------- D4RL HDF5


def load_d4rl(path: str, validate: bool = True, env_name: str | None = None) -> Dataset:
    """Load a D4RL-layout HDF5 file (see the module docstring).

    ``env_name`` (e.g. ``"hopper-medium-v2"``, default: the file name) selects D4RL's reference
    returns for the normalised score when they are known (gym MuJoCo tasks only).
    """
    import h5py

    from rlsuite.data.references import D4RL_REFERENCES

    if not os.path.exists(path):
        raise FileNotFoundError(f"no D4RL file at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file (corrupt or truncated?): {e}") from None
    try:
        with f:
            missing = [k for k in D4RL_KEYS if k not in f]
            if missing:
                raise ValueError(f"D4RL file {path} is missing key(s) {missing}; it has {sorted(f.keys())}")
            try:
                arrays = {k: np.asarray(f[k][()]) for k in D4RL_KEYS}
                if "next_observations" in f:
                    arrays["next_observations"] = np.asarray(f["next_observations"][()])
                if "infos" in f and "action_log_probs" in f["infos"]:
                    arrays["log_probs"] = np.asarray(f["infos"]["action_log_probs"][()])
                attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            except (OSError, KeyError) as e:
                raise ValueError(f"D4RL file {path} is corrupt or truncated: {e}") from None
    except OSError as e:
        raise ValueError(f"D4RL file {path} is corrupt or truncated: {e}") from None
    n = arrays["rewards"].shape[0] if arrays["rewards"].ndim else 0
    for k, v in arrays.items():
        if v.ndim == 0 or v.shape[0] != n:
            raise ValueError(
                f"D4RL file {path}: {k!r} has {v.shape[0] if v.ndim else 'scalar'} rows but 'rewards' has {n}"
            )
    arrays["rewards"] = arrays["rewards"].reshape(n)
    arrays["terminals"] = arrays["terminals"].reshape(n).astype(bool)
    arrays["timeouts"] = arrays["timeouts"].reshape(n).astype(bool)
    md: dict[str, Any] = {"source": "d4rl-hdf5", "loaded_from": os.path.abspath(path)}
    md.update({f"d4rl_attr_{k}": v for k, v in attrs.items() if isinstance(v, (int, float, str, bool))})
    if n and not (arrays["terminals"][-1] or arrays["timeouts"][-1]):
        arrays["timeouts"][-1] = True  # the file ends mid-trajectory: a cut
    if "next_observations" not in arrays:
        obs = arrays["observations"]
        nxt = np.empty_like(obs)
        nxt[:-1] = obs[1:]
        tout = arrays["timeouts"] & ~arrays["terminals"]
        nxt[-1] = obs[-1]
        nxt[tout] = obs[tout]  # successor unknown: placeholder, dropped by qlearning()
        arrays["next_observations"] = nxt
        md["next_observations_reconstructed"] = True
    name = env_name or os.path.splitext(os.path.basename(path))[0]
    base = name.split("-")[0].lower()
    if base in D4RL_REFERENCES:
        md.update(ref_random_return=D4RL_REFERENCES[base][0], ref_expert_return=D4RL_REFERENCES[base][1],
                  ref_source="d4rl", d4rl_name=name)
    if arrays["actions"].ndim == 2 and arrays["actions"].shape[1] == 1 and np.issubdtype(arrays["actions"].dtype, np.integer):
        arrays["actions"] = arrays["actions"].reshape(n)
    return Dataset.from_arrays(metadata=md, validate=validate, **arrays)


# ----------------------------------------------------------------------------- any format


def load(path: str, env=None, env_params=None, validate: bool = True) -> Dataset:
    """Load a dataset from a Minari directory / id or a D4RL-layout ``.hdf5`` / ``.h5`` file.

    With ``env`` (a gymnax-API env), the observation and action shapes are checked against its
    spaces (:func:`check_env`).
    """
    p = pathlib.Path(path)
    if p.is_file() and p.name != "main_data.hdf5":
        ds = load_d4rl(str(p), validate=validate)
    elif p.is_file():
        ds = load_minari(str(p.parent), validate=validate)
    else:
        ds = load_minari(str(path), validate=validate)
    if env is not None:
        check_env(ds, env, env_params)
    return ds


def check_env(ds: Dataset, env, env_params=None) -> Dataset:
    """Raise ``ValueError`` if the dataset's observation / action shapes do not fit ``env``."""
    from gymnax.environments import spaces

    params = env.default_params if env_params is None else env_params
    obs_shape = tuple(env.observation_space(params).shape)
    if tuple(ds.observations.shape[1:]) != obs_shape:
        raise ValueError(
            f"observation shape mismatch: dataset has {tuple(ds.observations.shape[1:])}, "
            f"env {getattr(env, 'name', type(env).__name__)} expects {obs_shape}"
        )
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        if not ds.discrete:
            raise ValueError(f"action mismatch: dataset has continuous actions {tuple(ds.actions.shape[1:])}, env has Discrete({space.n})")
        if int(np.max(np.asarray(ds.actions))) >= int(space.n) or int(np.min(np.asarray(ds.actions))) < 0:
            raise ValueError(f"action mismatch: dataset actions outside Discrete({space.n})")
    elif tuple(ds.actions.shape[1:]) != tuple(space.shape):
        raise ValueError(
            f"action shape mismatch: dataset has {tuple(ds.actions.shape[1:]) or 'discrete'}, env expects {tuple(space.shape)}"
        )
    return ds


save = save_minari
