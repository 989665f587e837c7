"""Reading and writing D4RL-layout HDF5 files (top-level arrays, metadata as file attributes).

Writes are atomic: the file is built under a temporary name in the target directory, flushed to disk and renamed,
so an interrupted or failed write never leaves a partial file at the destination.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.envs.offline.validation import OPTIONAL, REQUIRED, check_arrays, check_keys
from rlcore.errors import DataError


def read_hdf5(path: str | Path, need_timeouts: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The validated arrays (float32 / bool, every step of the file) and the file attributes.

    Only the top-level D4RL arrays are read; groups such as ``infos/`` or ``metadata/`` are ignored.
    """
    import h5py

    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(f"dataset file '{source}' not found; check the path")
    try:
        with h5py.File(path, "r") as f:
            keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            check_keys(keys, source, need_timeouts=need_timeouts)
            arrays = {k: f[k][()] for k in (*REQUIRED, *OPTIONAL) if k in keys}
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"'{source}' is not a readable HDF5 file (truncated or damaged: {e}); "
                        "re-download or re-create it") from e
    return check_arrays(arrays, source), attrs


def write_hdf5(path: str | Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None) -> Path:
    """Atomically write ``arrays`` (D4RL keys) and ``attrs`` (str/number/bool, others as JSON) to ``path``."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for key, a in arrays.items():
                f.create_dataset(key, data=np.asarray(a), compression="gzip", compression_opts=4)
            for key, value in (attrs or {}).items():
                if value is not None:
                    f.attrs[key] = _encode(value)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _encode(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
