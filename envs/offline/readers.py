"""``load_dataset``: D4RL HDF5 files, numpy arrays in D4RL layout, local Minari datasets, legacy ``d4rl`` names and
the embedded default, all turned into a validated :class:`OfflineDataset` with D4RL ``qlearning_dataset``
semantics.

``qlearning_dataset`` semantics (as D4RL's function of that name): a step flagged ``timeouts`` is not used as a
transition (its next observation belongs to the next episode in files without ``next_observations``), the
transition before it ends its episode by time limit, and ``terminals`` are true terminals. Without
``next_observations`` the next observation is the following row, so the file's last row is dropped too; with them,
the file's own next observations are used and the last row is kept. Files without ``timeouts`` (old D4RL v0) are
split every ``max_episode_steps`` of the task, as D4RL does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.envs.offline.dataset import OfflineDataset, concat_arrays
from rlcore.envs.offline.hdf5 import read_hdf5
from rlcore.envs.offline.registry import MINARI_PORTS, Task, get_task, is_task
from rlcore.envs.offline.validation import OPTIONAL, REQUIRED, check_arrays, check_keys, check_sizes
from rlcore.errors import DataError, UserError

DEFAULT_DATASET = "pendulum-scripted-v0"
"""Name of the embedded default dataset (generated in about a second; see ``rlcore.envs.offline.embedded``)."""


def qlearning_dataset(arrays: Mapping[str, np.ndarray], source: str = "dataset",
                      max_episode_steps: int | None = None, metadata: Mapping[str, Any] | None = None
                      ) -> OfflineDataset:
    """Transitions of validated raw D4RL arrays under D4RL ``qlearning_dataset`` semantics (see module doc)."""
    obs = arrays["observations"]
    n = len(obs)
    terminals = arrays["terminals"]
    if "timeouts" in arrays:
        timeouts = arrays["timeouts"]
    elif max_episode_steps:
        timeouts = _timeouts_every(terminals, max_episode_steps)
    else:
        raise DataError(f"'{source}' has no key 'timeouts'; add it, or name the task (task= / --task) so that "
                        "episodes are split every max_episode_steps as D4RL does for old files")
    has_next = "next_observations" in arrays
    next_obs = arrays["next_observations"] if has_next else np.concatenate([obs[1:], obs[-1:]])
    keep = ~timeouts
    if not has_next:
        keep[-1] = False
    if not keep.any():
        raise DataError(f"'{source}' has no usable transition (every step is a timeout); check its 'timeouts'")
    # An episode ends after row i without a terminal when the next row is a dropped timeout step or the data ends,
    # or when the next row does not start where row i ended (files with next_observations).
    ends = np.zeros(n, dtype=bool)
    ends[:-1] = timeouts[1:]
    ends[-1] = True
    if has_next:
        ends[:-1] |= np.linalg.norm(obs[1:] - next_obs[:-1], axis=1) > 1e-6
    last_kept = np.flatnonzero(keep)[-1]
    ends[last_kept] = True
    rows = np.flatnonzero(keep)
    kept_timeouts = ends[rows] & ~terminals[rows]
    meta = {**(metadata or {}), "source": source, "source_steps": int(n),
            "dropped_timeout_steps": int(timeouts.sum())}
    return OfflineDataset.from_arrays(observations=obs[rows], actions=arrays["actions"][rows],
                                      rewards=arrays["rewards"][rows], next_observations=next_obs[rows],
                                      terminals=terminals[rows], timeouts=kept_timeouts, metadata=meta)


def _timeouts_every(terminals: np.ndarray, max_episode_steps: int) -> np.ndarray:
    """D4RL's rule for files without timeouts, step for step: a counter of steps in the episode makes a step a
    timeout when it reaches ``max_episode_steps - 1``; it restarts at 0 after a timeout and at 1 after a terminal
    (D4RL resets it to 0 and then counts the terminal step itself)."""
    timeouts = np.zeros(len(terminals), dtype=bool)
    step = 0
    for i, terminal in enumerate(terminals.tolist()):
        if step == max_episode_steps - 1:
            timeouts[i] = True
            step = 0
        else:
            step = 1 if terminal else step + 1
    return timeouts


def load_dataset(path_or_name: str | os.PathLike | Mapping[str, np.ndarray] | OfflineDataset, *,
                 task: str | Task | None = None, obs_keys: Sequence[str] | None = None) -> OfflineDataset:
    """Load and validate an offline dataset.

    ``path_or_name``: an :class:`OfflineDataset` (used as it is); a dict of numpy arrays in D4RL layout
    (``observations``, ``actions``, ``rewards``, ``terminals``, optional ``timeouts`` and ``next_observations``:
    read exactly as the same arrays in an HDF5 file would be); a D4RL-layout HDF5 file; a Minari dataset
    (``minari:<id>``, a local dataset id, a registered port such as ``mujoco/hopper/medium-v0``, or its directory;
    downloaded by Minari when missing); a D4RL name
    such as ``hopper-medium-v2`` (through the ``d4rl`` package when it imports, else its file in
    ``$D4RL_DATASET_DIR`` or ``~/.d4rl/datasets``, downloaded first when missing: see
    :mod:`rlcore.envs.offline.download`); or ``pendulum-scripted-v0``, the embedded default. ``task`` (defaults
    to ``path_or_name`` when that is a task name) checks observation and action sizes against the task's simulator
    and splits files without timeouts. ``obs_keys`` flattens dict observations of Minari datasets in the given key
    order.

    Example::

        >>> ds = load_dataset("pendulum-scripted-v0")
        >>> ds.obs_dim, ds.act_dim, len(ds)
        (3, 1, 9950)
    """
    if isinstance(path_or_name, (OfflineDataset, Mapping)):
        task = get_task(task) if isinstance(task, str) else task
        max_steps = task.max_episode_steps if task is not None else None
        if isinstance(path_or_name, OfflineDataset):  # a copy of the metadata: the caller's object is not touched
            dataset = dataclasses.replace(path_or_name, metadata={"source": "dataset", "format": "dataset",
                                                                  **path_or_name.metadata})
        else:
            dataset = _from_arrays(path_or_name, max_steps)
        return _checked(dataset, task)
    name = os.fspath(path_or_name)
    if task is None and is_task(name):
        task = name
    task = get_task(task) if isinstance(task, str) else task
    max_steps = task.max_episode_steps if task is not None else None
    path = Path(name)
    if name == DEFAULT_DATASET and not path.exists():
        from rlcore.envs.offline.embedded import default_dataset

        dataset = default_dataset()
    elif path.is_file():
        arrays, attrs = read_hdf5(path, need_timeouts=max_steps is None)
        if "source" in attrs:  # "source" names where the data was loaded from; keep the file's own note apart
            attrs["file_source"] = attrs.pop("source")
        dataset = qlearning_dataset(arrays, str(path), max_steps, metadata={"format": "d4rl-hdf5", **attrs})
    elif path.is_dir() or name.startswith("minari:") or name in MINARI_PORTS or _is_local_minari(name):
        dataset = _from_minari(name.removeprefix("minari:"), obs_keys)
    elif is_task(name):
        dataset = _from_d4rl_name(name, max_steps)
    else:
        raise DataError(f"dataset '{name}' not found: not a file, a local Minari dataset or a D4RL name; "
                        "check the path (D4RL files are HDF5, e.g. hopper_medium-v2.hdf5)")
    return _checked(dataset, task)


def _checked(dataset: OfflineDataset, task: Task | None) -> OfflineDataset:
    """``dataset`` after checking its sizes against ``task``'s simulator (and noting the task)."""
    if task is not None:
        check_sizes(dataset.obs_dim, dataset.act_dim, dataset.metadata["source"], task.name, task.env_id,
                    task.obs_dim, task.act_dim)
        dataset.metadata["task"] = task.name
    return dataset


def _from_arrays(arrays: Mapping[str, Any], max_steps: int | None) -> OfflineDataset:
    """Raw D4RL-layout arrays, validated and read as :func:`rlcore.envs.offline.hdf5.read_hdf5` reads a file."""
    source = "arrays"
    keys = [str(k) for k in arrays]
    check_keys(keys, source, need_timeouts=max_steps is None)
    raw = {k: np.asarray(arrays[k]) for k in (*REQUIRED, *OPTIONAL) if k in arrays}
    return qlearning_dataset(check_arrays(raw, source), source, max_steps, metadata={"format": "arrays"})


# ---------------------------------------------------------------------------------------------------------------
# D4RL names


def _from_d4rl_name(name: str, max_steps: int | None) -> OfflineDataset:
    try:
        import d4rl  # noqa: F401  (registers the D4RL envs in gym)
        import gym
    except Exception:  # d4rl needs mujoco-py and the MuJoCo 2.1 binary; any import failure means "not available"
        return _from_d4rl_cache(name)
    data = gym.make(name).get_dataset()
    check_keys(list(data), f"d4rl:{name}", need_timeouts=max_steps is None)
    arrays = check_arrays(data, f"d4rl:{name}")
    return qlearning_dataset(arrays, f"d4rl:{name}", max_steps, metadata={"format": "d4rl"})


def _from_d4rl_cache(name: str) -> OfflineDataset:
    from rlcore.envs.offline.download import fetch_d4rl

    return load_dataset(fetch_d4rl(name), task=name)


# ---------------------------------------------------------------------------------------------------------------
# Minari


def _minari():
    try:
        import minari
    except ImportError as e:
        raise UserError("reading Minari datasets needs the minari package; pip install 'rlcore[minari]'") from e
    return minari


def _is_local_minari(name: str) -> bool:
    if "/" not in name:
        return False
    try:
        import minari
    except ImportError:
        return False
    return name in minari.list_local_datasets()


def _from_minari(name: str, obs_keys: Sequence[str] | None) -> OfflineDataset:
    minari = _minari()
    path = Path(name)
    try:
        if path.is_dir():
            data_dir = path / "data" if (path / "data").is_dir() else path
            ds = minari.MinariDataset(data_dir)
        else:
            from rlcore.envs.offline.download import fetch_minari

            fetch_minari(name)
            ds = minari.load_dataset(name)
    except FileNotFoundError as e:
        raise DataError(f"Minari dataset '{name}' has missing files ({e}); delete its folder and fetch it again "
                        f"(`rlcore data download minari:{name}`), or pass the dataset's directory") from e
    source = f"minari:{name}"
    parts = []
    for episode in ds.iterate_episodes():
        observations = _flat_observations(episode.observations, obs_keys, source)
        parts.append({"observations": observations[:-1], "next_observations": observations[1:],
                      "actions": np.asarray(episode.actions), "rewards": np.asarray(episode.rewards),
                      "terminals": np.asarray(episode.terminations, dtype=bool),
                      "timeouts": np.asarray(episode.truncations, dtype=bool)})
    if not parts:
        raise DataError(f"'{source}' has no episodes; re-create the dataset")
    arrays = check_arrays(concat_arrays(parts, source), source)
    env_spec = ds.spec.env_spec
    meta = {"format": "minari", "env_id": env_spec.id if env_spec is not None else None,
            "minari_id": ds.spec.dataset_id, "minari_version": getattr(ds.spec, "minari_version", None)}
    return qlearning_dataset(arrays, source, metadata=meta)


def _flat_observations(observations: Any, obs_keys: Sequence[str] | None, source: str) -> np.ndarray:
    if isinstance(observations, Mapping):
        if not obs_keys:
            raise DataError(f"'{source}' has dict observations (keys {', '.join(observations)}); pass obs_keys= "
                            "with the keys to concatenate, in order")
        missing = [k for k in obs_keys if k not in observations]
        if missing:
            raise DataError(f"'{source}' observations have no key {', '.join(missing)}; available: "
                            f"{', '.join(observations)}")
        return np.concatenate([np.asarray(observations[k]).reshape(len(observations[k]), -1) for k in obs_keys],
                              axis=1)
    return np.asarray(observations)
