"""Reading and writing D4RL-layout HDF5 files (top-level arrays, metadata as file attributes).

Writes are atomic: the file is built under a temporary name in the target directory, flushed to disk and renamed,
so an interrupted or failed write never leaves a partial file at the destination.
"""

from __future__ import annotations

import codecs
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
    with open(path, "rb") as f:
        head = f.read(512)
    if not h5py.is_hdf5(source):
        raise DataError(f"'{source}' is not an HDF5 file; {sniff(head)}; pass a D4RL-layout HDF5 file (arrays "
                        "observations, actions, rewards, terminals, timeouts), e.g. from `rlcore data collect`")
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


_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (e.g. NumPy .npz, a zipped agent)",
    b"\x1f\x8b": "gzip-compressed data (decompress it first)",
    b"\x93NUMPY": "a NumPy .npy array",
    b"PAR1": "a Parquet table",
    b"BZh": "bzip2-compressed data (decompress it first)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data (decompress it first)",
    b"%PDF": "a PDF document",
}


def sniff(head: bytes) -> str:
    """What a file that is not HDF5 looks like, from its first bytes: "it looks like CSV text", ..."""
    if not head:
        return "it is empty (0 bytes)"
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {what}"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "it looks like a Python pickle (never loaded here: pickles can run code)"
    try:  # an incremental decoder accepts a character cut in two at the end of the sample
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "it looks like binary data of another format"
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    if first[:1] in ("{", "["):
        return "it looks like JSON text"
    if first[:1] == "<":
        return f"it looks like HTML or XML text (an error page? first line {first[:40]!r})"
    for sep, name in ((",", "CSV"), ("\t", "tab-separated"), (";", "semicolon-separated")):
        if first.count(sep) >= 1 and (len(lines) < 2 or lines[1].count(sep) == first.count(sep)):
            return f"it looks like {name} text (first line {first[:40]!r})"
    return f"it looks like plain text (first line {first[:40]!r})"


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
