"""Small D4RL-layout data built in the tests (never copied from shared data)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def episodic_arrays(lengths: list[int], ends: list[str], obs_dim: int = 3, act_dim: int = 2, seed: int = 0,
                    next_observations: bool = True) -> dict[str, np.ndarray]:
    """Raw D4RL arrays of consecutive episodes; ``ends[i]`` is "terminal", "timeout" or "none" (cut data).

    Observations follow a continuous path inside each episode (row t+1 starts where row t ended), as real data do.
    """
    rng = np.random.default_rng(seed)
    parts = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    for length, end in zip(lengths, ends):
        path = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        parts["observations"].append(path[:-1])
        parts["next_observations"].append(path[1:])
        parts["actions"].append(rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32))
        parts["rewards"].append(rng.normal(size=length).astype(np.float32))
        flags = {name: np.zeros(length, dtype=bool) for name in ("terminals", "timeouts")}
        if end in ("terminal", "timeout"):
            flags[f"{end}s"][-1] = True
        parts["terminals"].append(flags["terminals"])
        parts["timeouts"].append(flags["timeouts"])
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    if not next_observations:
        del arrays["next_observations"]
    return arrays


def write_file(path: Path, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path
