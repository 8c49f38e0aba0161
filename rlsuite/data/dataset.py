"""The offline dataset type: a flat table of transitions with D4RL's field names.

A :class:`Dataset` holds ``N`` transitions ordered so that every *episode* (or trajectory piece)
is a contiguous block ending on a step with ``terminals`` (true termination: no bootstrap) or
``timeouts`` (time limit, or the last step of a trajectory cut short by the end of collection:
bootstrap from ``next_observations``).  A trailing block without either flag (a file that simply
stops) is treated as a cut trajectory as well.

Shapes::

    observations       [N, obs_dim] float32
    actions            [N, act_dim] float32   (discrete action spaces: [N] int32)
    rewards            [N]          float32
    next_observations  [N, obs_dim] float32   (true successor, also at time-outs)
    terminals          [N]          bool      (true termination only)
    timeouts           [N]          bool      (time limit / trajectory cut)
    log_probs          [N]          float32   optional: behaviour log-probability (diagnostics)
    metadata           dict                    static: env id, kind, command, seed, policy
                                               checkpoint, return statistics, reference returns

Arrays may be numpy (host; IO, statistics) or jax (device; :meth:`sample` inside ``jit``);
:meth:`to_jax` / :meth:`to_numpy` convert.  Host-side methods (episode structure, statistics,
:meth:`qlearning`, :meth:`concatenate`, :meth:`validate`) work on either and return numpy.

:meth:`qlearning` gives D4RL ``qlearning_dataset`` semantics: transitions flagged ``timeouts`` are
dropped (D4RL drops them because it rebuilt ``next_obs`` from the following row, which belongs
to the next episode); ``drop_timeouts=False`` keeps them as ordinary non-terminal (bootstrapped)
transitions, which is correct here because ``next_observations`` is the true successor.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ARRAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
OPTIONAL_FIELDS = ("log_probs",)


@struct.dataclass
class Dataset:
    """``N`` transitions with episode structure (see the module docstring for shapes)."""

    observations: Any
    actions: Any
    rewards: Any
    next_observations: Any
    terminals: Any
    timeouts: Any
    log_probs: Any = None
    metadata: dict = struct.field(pytree_node=False, default_factory=dict)

    # ------------------------------------------------------------------ construction / basics

    @classmethod
    def from_arrays(cls, metadata: dict | None = None, validate: bool = True, **arrays) -> "Dataset":
        """Build from numpy-compatible arrays, casting to the canonical dtypes.

        Missing ``next_observations`` are rebuilt as ``observations[i + 1]`` inside an episode;
        at a boundary there is no successor, so the row must be dropped (see
        :func:`rlsuite.data.io.load_d4rl`, which handles that case).
        """
        missing = [k for k in ARRAY_FIELDS if k not in arrays]
        if missing:
            raise ValueError(f"dataset is missing field(s) {missing}; required: {list(ARRAY_FIELDS)}")
        unknown = [k for k in arrays if k not in ARRAY_FIELDS + OPTIONAL_FIELDS]
        if unknown:
            raise ValueError(f"unknown dataset field(s) {unknown}")
        actions = np.asarray(arrays["actions"])
        actions = actions.astype(np.int32) if np.issubdtype(actions.dtype, np.integer) else actions.astype(np.float32)
        lp = arrays.get("log_probs")
        ds = cls(
            observations=np.asarray(arrays["observations"], np.float32),
            actions=actions,
            rewards=np.asarray(arrays["rewards"], np.float32),
            next_observations=np.asarray(arrays["next_observations"], np.float32),
            terminals=np.asarray(arrays["terminals"]).astype(bool),
            timeouts=np.asarray(arrays["timeouts"]).astype(bool),
            log_probs=None if lp is None else np.asarray(lp, np.float32),
            metadata=dict(metadata or {}),
        )
        if validate:
            ds.validate()
        return ds

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.observations.shape[1:]))

    @property
    def discrete(self) -> bool:
        return self.actions.ndim == 1

    @property
    def act_dim(self) -> int:
        """Vector size of continuous actions; for discrete actions the number of actions if the
        metadata records it (``metadata["num_actions"]``), else ``max(action) + 1``."""
        if not self.discrete:
            return int(self.actions.shape[1])
        return int(self.metadata.get("num_actions", int(np.max(np.asarray(self.actions))) + 1))

    def arrays(self) -> dict[str, Any]:
        """The array fields as a dict (``log_probs`` only if present)."""
        out = {k: getattr(self, k) for k in ARRAY_FIELDS}
        if self.log_probs is not None:
            out["log_probs"] = self.log_probs
        return out

    def to_numpy(self) -> "Dataset":
        return jax.tree.map(np.asarray, self)

    def to_jax(self) -> "Dataset":
        """Device copy (``jnp`` arrays), e.g. before passing the dataset into a jitted update loop."""
        return jax.tree.map(jnp.asarray, self)

    def with_metadata(self, **updates) -> "Dataset":
        return self.replace(metadata={**self.metadata, **updates})

    def take(self, idx) -> "Dataset":
        """Rows ``idx`` (indices or boolean mask) of every array field, host side."""
        idx = np.asarray(idx)
        return jax.tree.map(lambda x: np.asarray(x)[idx], self)

    # ------------------------------------------------------------------ sampling (jittable)

    def sample(self, key: jax.Array, batch_size: int) -> "Dataset":
        """``batch_size`` transitions drawn uniformly with replacement (jittable; the batch keeps
        the static metadata).  ``batch_size`` must be a Python int."""
        idx = jax.random.randint(key, (batch_size,), 0, self.rewards.shape[0])
        return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), self)

    # ------------------------------------------------------------------ episode structure

    def episode_boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ends)``: episode ``i`` is rows ``starts[i] : ends[i]`` (end exclusive).

        An episode ends after a row with ``terminals | timeouts``; trailing rows without either
        flag form a final (cut) episode.
        """
        n = len(self)
        done = np.asarray(self.terminals) | np.asarray(self.timeouts)
        ends = np.flatnonzero(done) + 1
        if n and (ends.size == 0 or ends[-1] != n):
            ends = np.append(ends, n)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        return starts, ends.astype(np.int64)

    @property
    def num_episodes(self) -> int:
        return int(self.episode_boundaries()[0].size)

    def episode(self, i: int) -> "Dataset":
        """Episode ``i`` as its own (numpy) dataset."""
        starts, ends = self.episode_boundaries()
        if not -starts.size <= i < starts.size:
            raise IndexError(f"episode index {i} out of range for {starts.size} episodes")
        return self.take(np.arange(starts[i], ends[i]))

    def episodes(self) -> Iterator["Dataset"]:
        """Iterate over episodes in order."""
        starts, ends = self.episode_boundaries()
        for s, e in zip(starts, ends, strict=True):
            yield self.take(np.arange(s, e))

    def episode_returns(self, complete_only: bool = False) -> np.ndarray:
        """Undiscounted return of every episode, ``[num_episodes]``.

        ``complete_only``: keep only episodes that ended by termination or the env's time limit,
        dropping trajectory pieces cut by the end of collection (they are recognised by the
        ``episode_lengths`` being shorter than ``metadata["max_episode_steps"]`` with no terminal;
        without that metadata every timeout counts as complete).
        """
        starts, ends = self.episode_boundaries()
        if starts.size == 0:
            return np.zeros((0,), np.float32)
        r = np.asarray(self.rewards, np.float64)
        rets = np.add.reduceat(r, starts) if r.size else np.zeros(starts.size)
        rets = rets.astype(np.float32)
        if complete_only:
            rets = rets[self.complete_episode_mask()]
        return rets

    def episode_lengths(self) -> np.ndarray:
        starts, ends = self.episode_boundaries()
        return (ends - starts).astype(np.int64)

    def complete_episode_mask(self) -> np.ndarray:
        """``[num_episodes]`` bool: the episode ended by termination or by the time limit."""
        starts, ends = self.episode_boundaries()
        if starts.size == 0:
            return np.zeros((0,), bool)
        last = ends - 1
        term = np.asarray(self.terminals)[last]
        tout = np.asarray(self.timeouts)[last]
        horizon = self.metadata.get("max_episode_steps")
        if horizon is None:
            return term | tout
        return term | (tout & ((ends - starts) >= int(horizon)))

    def return_stats(self) -> dict[str, float]:
        """Mean / std / min / max of complete-episode returns (all episodes if none is complete)."""
        rets = self.episode_returns(complete_only=True)
        n_complete = int(rets.size)
        if rets.size == 0:
            rets = self.episode_returns()
        if rets.size == 0:
            return {"episodes": 0, "complete_episodes": 0}
        return {
            "episodes": int(self.num_episodes),
            "complete_episodes": n_complete,
            **({"returns_of": "partial episodes (none is complete)"} if n_complete == 0 else {}),
            "return_mean": float(rets.mean()),
            "return_std": float(rets.std()),
            "return_min": float(rets.min()),
            "return_max": float(rets.max()),
        }

    # ------------------------------------------------------------------ transforms

    def qlearning(self, drop_timeouts: bool = True) -> "Dataset":
        """D4RL ``qlearning_dataset`` semantics.

        ``drop_timeouts=True`` (D4RL): rows flagged ``timeouts`` (and not ``terminals``) are
        removed.  ``False``: they are kept as non-terminal transitions (the learner bootstraps
        from ``next_observations``).  Either way the result has ``timeouts`` all False and
        ``metadata["qlearning"] = True``; its episode structure is no longer meaningful.
        """
        tout = np.asarray(self.timeouts) & ~np.asarray(self.terminals)
        if not drop_timeouts and self.metadata.get("next_observations_reconstructed") and tout.any():
            raise ValueError(
                "cannot keep time-out transitions: this dataset has no stored next_observations, so the "
                "successor of a time-out row is unknown (use drop_timeouts=True)"
            )
        ds = self.take(np.flatnonzero(~tout)) if drop_timeouts else self.to_numpy()
        return ds.replace(
            timeouts=np.zeros(len(ds), bool),
            metadata={**self.metadata, "qlearning": True, "qlearning_drop_timeouts": bool(drop_timeouts)},
        )

    def cut_to_last_complete(self) -> "Dataset":
        """Drop the trailing rows after the last ``terminals | timeouts`` (D4RL's medium part of
        medium-expert is 'cut at the end of its last complete trajectory')."""
        done = np.flatnonzero(np.asarray(self.terminals) | np.asarray(self.timeouts))
        return self.take(np.arange(0 if done.size == 0 else done[-1] + 1))

    @staticmethod
    def concatenate(parts: Sequence["Dataset"], metadata: dict | None = None) -> "Dataset":
        """Rows of ``parts`` one after the other (e.g. medium-expert = medium + expert).

        Each part's trailing rows are closed as a cut trajectory (``timeouts`` set on its last
        row) so no episode runs across the seam.  ``log_probs`` is kept only if every part has
        it.  The result's metadata is ``metadata`` (default: the first part's, with the parts'
        kinds and sizes recorded under ``"parts"``).
        """
        if not parts:
            raise ValueError("concatenate needs at least one dataset")
        ref = parts[0]
        for i, p in enumerate(parts[1:], 1):
            if p.observations.shape[1:] != ref.observations.shape[1:]:
                raise ValueError(
                    f"cannot concatenate: part {i} has observation shape {p.observations.shape[1:]}, "
                    f"part 0 has {ref.observations.shape[1:]}"
                )
            if p.actions.shape[1:] != ref.actions.shape[1:] or p.discrete != ref.discrete:
                raise ValueError(
                    f"cannot concatenate: part {i} has action shape {p.actions.shape[1:]}, "
                    f"part 0 has {ref.actions.shape[1:]}"
                )
        closed = []
        for p in parts:
            p = p.to_numpy()
            if len(p) and not (p.terminals[-1] or p.timeouts[-1]):
                t = p.timeouts.copy()
                t[-1] = True
                p = p.replace(timeouts=t)
            closed.append(p)
        fields = list(ARRAY_FIELDS)
        if all(p.log_probs is not None for p in closed):
            fields.append("log_probs")
        arrays = {k: np.concatenate([getattr(p, k) for p in closed], 0) for k in fields}
        if metadata is None:
            metadata = {
                **ref.metadata,
                "parts": [{"kind": p.metadata.get("kind"), "size": len(p)} for p in closed],
            }
        return Dataset.from_arrays(metadata=metadata, validate=False, **arrays)

    # ------------------------------------------------------------------ checks

    def validate(self, obs_shape: Sequence[int] | None = None, act_shape: Sequence[int] | None = None) -> "Dataset":
        """Check shapes, dtypes and finiteness; raise one ``ValueError`` naming the problem.

        ``obs_shape`` / ``act_shape`` (per-row shapes, e.g. from an env's spaces) are checked when
        given.  Returns ``self`` so it chains.
        """
        n = len(self)
        if n == 0:
            raise ValueError("dataset is empty (0 transitions)")
        obs = self.observations
        if obs.ndim < 2:
            raise ValueError(f"observations must be [N, obs_dim], got shape {tuple(obs.shape)}")
        for name in ARRAY_FIELDS + OPTIONAL_FIELDS:
            x = getattr(self, name)
            if x is None:
                continue
            if x.shape[0] != n:
                raise ValueError(f"field {name!r} has {x.shape[0]} rows but rewards has {n}")
        if self.next_observations.shape != obs.shape:
            raise ValueError(
                f"next_observations shape {tuple(self.next_observations.shape)} != observations shape {tuple(obs.shape)}"
            )
        for name in ("rewards", "terminals", "timeouts", "log_probs"):
            x = getattr(self, name)
            if x is not None and x.ndim != 1:
                raise ValueError(f"field {name!r} must be 1-D [N], got shape {tuple(x.shape)}")
        if self.actions.ndim not in (1, 2):
            raise ValueError(f"actions must be [N, act_dim] (continuous) or [N] (discrete), got {tuple(self.actions.shape)}")
        for name in ("terminals", "timeouts"):
            if np.asarray(getattr(self, name)).dtype != bool:
                raise ValueError(f"field {name!r} must be bool, got {np.asarray(getattr(self, name)).dtype}")
        if obs_shape is not None and tuple(obs.shape[1:]) != tuple(obs_shape):
            raise ValueError(
                f"observation shape mismatch: dataset has {tuple(obs.shape[1:])}, env expects {tuple(obs_shape)}"
            )
        if act_shape is not None and tuple(self.actions.shape[1:]) != tuple(act_shape):
            raise ValueError(
                f"action shape mismatch: dataset has {tuple(self.actions.shape[1:])}, env expects {tuple(act_shape)}"
            )
        for name in ("observations", "actions", "rewards", "next_observations", "log_probs"):
            x = getattr(self, name)
            if x is None:
                continue
            x = np.asarray(x)
            if np.issubdtype(x.dtype, np.floating):
                bad = ~np.isfinite(x)
                if bad.any():
                    row = int(np.flatnonzero(bad.reshape(n, -1).any(1))[0])
                    kind = "NaN" if np.isnan(x).any() else "infinite"
                    raise ValueError(
                        f"field {name!r} has {int(bad.sum())} non-finite ({kind}) value(s); first at row {row}"
                    )
        return self

    def summary(self) -> dict[str, Any]:
        """Size, episode and return statistics (what ``rlsuite data info`` prints)."""
        out: dict[str, Any] = {
            "transitions": len(self),
            "obs_shape": tuple(int(s) for s in self.observations.shape[1:]),
            "action_shape": tuple(int(s) for s in self.actions.shape[1:]) or ("discrete",),
            "terminals": int(np.asarray(self.terminals).sum()),
            "timeouts": int(np.asarray(self.timeouts).sum()),
        }
        out.update(self.return_stats())
        return out

    def __repr__(self) -> str:  # short: the arrays can be millions of rows
        md = {k: self.metadata[k] for k in ("env_id", "kind") if k in self.metadata}
        return (
            f"Dataset(N={len(self)}, obs={tuple(self.observations.shape[1:])}, "
            f"act={tuple(self.actions.shape[1:]) or 'discrete'}, episodes={self.num_episodes}, {md})"
        )
