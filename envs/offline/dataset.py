"""The in-memory offline dataset: aligned transition arrays plus episode structure.

One row is one transition ``(s, a, r, s', terminal)``. ``terminals[i]`` marks a true terminal (no bootstrapping
from ``s'``); ``timeouts[i]`` marks an episode that ends after row ``i`` *without* a terminal (a time limit, or the
end of the recorded data). The two never overlap; episodes are the runs of rows up to and including each flagged
row (the last row closes the last episode in any case).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlcore.errors import DataError

ARRAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@dataclasses.dataclass(frozen=True, eq=False)
class OfflineDataset:
    """Transitions of an offline RL dataset (arrays are read-only numpy views; copy to modify).

    Shapes: ``observations``/``next_observations`` (N, obs_dim) float32, ``actions`` (N, act_dim) float32,
    ``rewards`` (N,) float32, ``terminals``/``timeouts`` (N,) bool. ``metadata`` holds provenance (source file,
    env id, policy, seed, ...).

    Example::

        >>> ds = OfflineDataset.from_arrays(observations=np.zeros((3, 2)), actions=np.zeros((3, 1)),
        ...     rewards=np.array([1.0, 2.0, 3.0]), next_observations=np.ones((3, 2)),
        ...     terminals=np.array([False, True, False]), timeouts=np.array([False, False, True]))
        >>> ds.episode_returns()
        array([3., 3.])
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_arrays(cls, *, metadata: Mapping[str, Any] | None = None, **arrays: np.ndarray) -> OfflineDataset:
        """Build from array-likes, converting to the canonical dtypes (float32 / bool) and checking shapes."""
        missing = [k for k in ARRAY_FIELDS if k not in arrays]
        if missing:
            raise TypeError(f"missing arrays: {', '.join(missing)}")
        converted = {}
        for key in ARRAY_FIELDS:
            dtype = bool if key in ("terminals", "timeouts") else np.float32
            a = np.array(arrays[key], dtype=dtype, copy=True)
            a.flags.writeable = False
            converted[key] = a
        return cls(**converted, metadata=dict(metadata or {}))

    def __post_init__(self) -> None:
        n = len(self.rewards)
        name = self.metadata.get("source", "dataset")
        for key in ARRAY_FIELDS:
            a = getattr(self, key)
            want_ndim = 2 if key in ("observations", "actions", "next_observations") else 1
            if a.ndim != want_ndim or len(a) != n:
                raise DataError(f"{name}: '{key}' has shape {a.shape}, expected ({n}{', dim' * (want_ndim - 1)}); "
                                "all arrays must have one row per transition")
        if self.observations.shape != self.next_observations.shape:
            raise DataError(f"{name}: next_observations shape {self.next_observations.shape} differs from "
                            f"observations {self.observations.shape}")
        if np.any(self.terminals & self.timeouts):
            i = int(np.argmax(self.terminals & self.timeouts))
            raise DataError(f"{name}: row {i} is both a terminal and a timeout; an episode ends in one or the other")

    # ------------------------------------------------------------------------------------------------------------
    # sizes

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    # ------------------------------------------------------------------------------------------------------------
    # episodes

    def episode_bounds(self) -> np.ndarray:
        """(E, 2) int array of [start, end) row indices, one per episode (the last row always ends one)."""
        if len(self) == 0:
            return np.zeros((0, 2), dtype=np.int64)
        ends = self.terminals | self.timeouts
        ends = ends.copy()
        ends[-1] = True
        stop = np.flatnonzero(ends) + 1
        start = np.concatenate([[0], stop[:-1]])
        return np.stack([start, stop], axis=1)

    def episodes(self) -> list[slice]:
        """Row slices of the episodes, in order."""
        return [slice(int(a), int(b)) for a, b in self.episode_bounds()]

    @property
    def num_episodes(self) -> int:
        return len(self.episode_bounds())

    def episode_returns(self) -> np.ndarray:
        """(E,) undiscounted return of each episode, summed in float64."""
        bounds = self.episode_bounds()
        if len(bounds) == 0:
            return np.zeros(0)
        cumulative = np.concatenate([[0.0], np.cumsum(self.rewards, dtype=np.float64)])
        return cumulative[bounds[:, 1]] - cumulative[bounds[:, 0]]

    def episode_lengths(self) -> np.ndarray:
        """(E,) number of transitions in each episode."""
        bounds = self.episode_bounds()
        return bounds[:, 1] - bounds[:, 0]

    def trajectory(self, index: int) -> OfflineDataset:
        """The ``index``-th episode (0-based; negative counts from the end) as its own dataset."""
        bounds = self.episode_bounds()
        if not -len(bounds) <= index < len(bounds):
            raise DataError(f"{self.metadata.get('source', 'dataset')} has {len(bounds)} episodes; trajectory index "
                            f"{index} is out of range (use 0..{len(bounds) - 1})")
        start, stop = bounds[index]
        return self.select(slice(int(start), int(stop)), trajectory=int(index % len(bounds)))

    def select(self, rows: slice | np.ndarray, **metadata: Any) -> OfflineDataset:
        """A new dataset of the given rows (a slice or an index/boolean array); ``metadata`` entries are added."""
        arrays = {key: a[rows] for key, a in self.arrays().items()}
        return OfflineDataset.from_arrays(**arrays, metadata={**self.metadata, **metadata})

    def replace(self, **changes: Any) -> OfflineDataset:
        """A copy with some arrays or the metadata replaced (arrays are converted and checked)."""
        arrays = {key: changes.pop(key, getattr(self, key)) for key in ARRAY_FIELDS}
        metadata = changes.pop("metadata", self.metadata)
        if changes:
            raise TypeError(f"unknown fields: {', '.join(changes)}")
        return OfflineDataset.from_arrays(**arrays, metadata=metadata)

    def arrays(self) -> dict[str, np.ndarray]:
        """The six arrays by name (D4RL layout, every row kept)."""
        return {key: getattr(self, key) for key in ARRAY_FIELDS}

    def summary(self) -> dict[str, Any]:
        """Sizes, episode counts and the return range, as plain Python values."""
        returns = self.episode_returns()
        lengths = self.episode_lengths()
        return {
            "transitions": len(self),
            "episodes": len(returns),
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "terminals": int(self.terminals.sum()),
            "timeouts": int(self.timeouts.sum()),
            "return_min": float(returns.min()) if len(returns) else None,
            "return_mean": float(returns.mean()) if len(returns) else None,
            "return_max": float(returns.max()) if len(returns) else None,
            "episode_length_min": int(lengths.min()) if len(lengths) else None,
            "episode_length_max": int(lengths.max()) if len(lengths) else None,
            "reward_min": float(self.rewards.min()) if len(self) else None,
            "reward_max": float(self.rewards.max()) if len(self) else None,
            "action_min": float(self.actions.min()) if len(self) else None,
            "action_max": float(self.actions.max()) if len(self) else None,
        }


def concat_arrays(parts: list[Mapping[str, np.ndarray]], source: str = "datasets") -> dict[str, np.ndarray]:
    """Stack D4RL-layout array dicts row-wise, keeping episodes intact.

    Each part's last row is closed as an episode end (a timeout unless it is a terminal), so no episode runs from
    one part into the next. Keys are those every part has; ``next_observations`` is kept only if all parts have
    it. Observation and action sizes must agree.
    """
    if not parts:
        raise ValueError("nothing to concatenate")
    dims = [(p["observations"].shape[1:], p["actions"].shape[1:]) for p in parts]
    if len(set(dims)) > 1:
        sizes = ", ".join(f"obs {o}, act {a}" for o, a in dims)
        raise DataError(f"cannot combine {source} of different sizes ({sizes}); combine datasets of the same task")
    keys = [k for k in parts[0] if all(k in p for p in parts)]
    out = {}
    for key in keys:
        chunks = []
        for p in parts:
            a = np.asarray(p[key])
            if key == "timeouts" and len(a) and not p["terminals"][-1]:
                a = a.astype(bool, copy=True)
                a[-1] = True
            chunks.append(a)
        out[key] = np.concatenate(chunks)
    return out


def concatenate(datasets: list[OfflineDataset], metadata: Mapping[str, Any] | None = None) -> OfflineDataset:
    """Stack datasets row-wise (e.g. medium-expert = medium + expert); see :func:`concat_arrays`."""
    return OfflineDataset.from_arrays(**concat_arrays([d.arrays() for d in datasets]), metadata=metadata)
