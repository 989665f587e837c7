"""Checks on D4RL-layout arrays, each failing with one line that names the file, the key and the fix.

Nothing is coerced silently: integer (discrete) actions, wrong ranks, NaN/inf, non-0/1 flags and size mismatches
are errors. The only conversions are the documented ones (numbers to float32, 0/1 flags to bool).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import numpy as np

from rlcore.errors import DataError

REQUIRED = ("observations", "actions", "rewards", "terminals", "timeouts")
OPTIONAL = ("next_observations",)
NEEDS = "D4RL files need observations, actions, rewards, terminals, timeouts (next_observations optional)"

# names other tools use for the same arrays (Minari, SB3 buffers, imitation, older D4RL copies)
ALIASES = {
    "observation": "observations", "obs": "observations", "states": "observations", "state": "observations",
    "action": "actions", "acts": "actions",
    "reward": "rewards", "rews": "rewards",
    "terminal": "terminals", "dones": "terminals", "done": "terminals", "terminations": "terminals",
    "terminateds": "terminals",
    "timeout": "timeouts", "truncations": "timeouts", "truncated": "timeouts", "truncateds": "timeouts",
    "next_obs": "next_observations", "next_observation": "next_observations", "next_states": "next_observations",
}


def check_keys(keys: list[str], source: str, need_timeouts: bool = True) -> None:
    """Every required key is present (``timeouts`` only when ``need_timeouts``)."""
    if not keys:
        raise DataError(f"'{source}' is empty (no arrays); {NEEDS}")
    for key in REQUIRED:
        if key in keys or (key == "timeouts" and not need_timeouts):
            continue
        alias = next((k for k in keys if ALIASES.get(k.lower()) == key), None)
        if alias is not None:
            raise DataError(f"'{source}' has no key '{key}' but has '{alias}'; rename '{alias}' to '{key}' ({NEEDS})")
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f" (found '{close[0]}')" if close else ""
        if key == "timeouts":
            raise DataError(f"'{source}' has no key 'timeouts'{hint}; add it, or name the task (task= / --task) so "
                            "that episodes are split every max_episode_steps as D4RL does for old files")
        raise DataError(f"'{source}' has no key '{key}'{hint}; {NEEDS}")


def check_arrays(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Validate raw D4RL-layout arrays and return them as float32 / bool numpy arrays.

    ``arrays`` must hold the required keys (see :func:`check_keys`); ``timeouts`` may be absent.
    """
    n = len(arrays["observations"])
    if n == 0:
        raise DataError(f"'{source}' has 0 rows; the dataset is empty, re-create or re-download it")
    out: dict[str, np.ndarray] = {}
    for key in (*REQUIRED, *OPTIONAL):
        if key not in arrays:
            continue
        a = np.asarray(arrays[key])
        if len(a) != n:
            raise DataError(f"'{source}' key '{key}' has {len(a)} rows but 'observations' has {n}; "
                            "every key needs one row per step (the file may be truncated)")
        if key in ("terminals", "timeouts"):
            out[key] = _flags(a, key, source)
        elif key == "actions":
            out[key] = _actions(a, source)
        else:
            out[key] = _floats(a, key, source, ndim=1 if key == "rewards" else 2)
    if "next_observations" in out and out["next_observations"].shape != out["observations"].shape:
        raise DataError(f"'{source}' key 'next_observations' has shape {out['next_observations'].shape} but "
                        f"'observations' has {out['observations'].shape}; they must match")
    return out


def _floats(a: np.ndarray, key: str, source: str, ndim: int) -> np.ndarray:
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"'{source}' key '{key}' has dtype {a.dtype}; it must hold numbers")
    if a.ndim != ndim:
        want = "(N,)" if ndim == 1 else "(N, dim)"
        fix = "flatten it" if ndim == 1 else "reshape it to (N, 1) for a 1-D quantity"
        raise DataError(f"'{source}' key '{key}' has shape {a.shape}, expected {want}; {fix}")
    a = a.astype(np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        row, *col = np.unravel_index(int(np.argmax(bad)), a.shape)
        what = "NaN" if np.isnan(a[(row, *col)]) else "inf"
        where = f"row {row}" + (f", column {col[0]}" if col else "")
        raise DataError(f"'{source}' key '{key}' has {what} at {where} ({int(bad.sum())} non-finite values); "
                        "repair or drop those rows before training")
    return a


def _actions(a: np.ndarray, source: str) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        values = np.unique(a)
        raise DataError(f"'{source}' key 'actions' holds integers ({len(values)} distinct values, e.g. "
                        f"{values[:4].tolist()}): discrete actions, but continuous (float) actions are required; "
                        "use a continuous-control dataset")
    if a.ndim == 1:
        raise DataError(f"'{source}' key 'actions' has shape {a.shape}, expected (N, act_dim); "
                        "reshape it to (N, 1) for a 1-D action")
    return _floats(a, "actions", source, ndim=2)


def _flags(a: np.ndarray, key: str, source: str) -> np.ndarray:
    if a.ndim != 1:
        raise DataError(f"'{source}' key '{key}' has shape {a.shape}, expected (N,); flatten it")
    if a.dtype == bool:
        return a
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DataError(f"'{source}' key '{key}' has dtype {a.dtype}; it must hold booleans (0/1)")
    bad = (a != 0) & (a != 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"'{source}' key '{key}' has value {a[row].item()!r} at row {row}; "
                        "flags must be 0/1 or booleans")
    return a.astype(bool)


def check_sizes(obs_dim: int, act_dim: int, source: str, task_name: str, env_id: str | None,
                want_obs: int | None, want_act: int | None) -> None:
    """Observation and action sizes match the task's simulator (None = unknown, not checked)."""
    sim = f" ({env_id})" if env_id else ""
    if want_obs is not None and obs_dim != want_obs:
        raise DataError(f"'{source}' has observations of size {obs_dim} but task '{task_name}'{sim} expects "
                        f"{want_obs}; pick the task that matches the file (or the file for the task)")
    if want_act is not None and act_dim != want_act:
        raise DataError(f"'{source}' has actions of size {act_dim} but task '{task_name}'{sim} expects "
                        f"{want_act}; pick the task that matches the file (or the file for the task)")
