"""Moving run directories between the nodes of a Ray cluster that share no storage, and telling whether they do.

A run directory travels as an uncompressed tar archive in memory (``bytes``): checkpoints are safetensors files,
which do not compress. Archives are only ever made by rlcore itself and are unpacked with tarfile's ``data``
filter (no absolute paths, no links out of the folder, no device files).
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
from pathlib import Path

MARKER_FILE = ".rlcore-sweep-token"
"""Written by the sweep driver in its ``--out`` folder; a node that reads the same token there shares storage."""


def write_marker(out: Path) -> str:
    """Write a fresh random token to ``<out>/.rlcore-sweep-token``; returns it."""
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    (out / MARKER_FILE).write_text(token, encoding="utf-8")
    return token


def has_marker(out: Path, token: str) -> bool:
    """Whether this node sees the driver's ``out`` folder: the marker exists there and holds ``token``."""
    try:
        return (out / MARKER_FILE).read_text(encoding="utf-8").strip() == token
    except OSError:
        return False


def pack(run_dir: Path, attempts: int = 5) -> bytes:
    """A tar archive of ``run_dir``'s files (paths relative to it), taken while the training may still write.

    Hidden entries (half-written or parked checkpoints, ``.step_*.tmp``/``.del``) are left out; an entry that
    disappears under us (a pruned checkpoint) restarts the archive, at most ``attempts`` times."""
    for attempt in range(attempts):
        buffer = io.BytesIO()
        try:
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                for path in sorted(run_dir.rglob("*")):
                    rel = path.relative_to(run_dir)
                    if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                        continue
                    tar.add(path, arcname=str(rel), recursive=False)
            return buffer.getvalue()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def unpack(blob: bytes, run_dir: Path) -> None:
    """Replace ``run_dir`` by the archive's contents: extracted next to it first, then swapped in, so that a
    reader never sees half a run directory."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.with_name(f".{run_dir.name}.incoming")
    parked = run_dir.with_name(f".{run_dir.name}.old")
    for stale in (staging, parked):
        shutil.rmtree(stale, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(staging, filter="data")
    if run_dir.exists():
        os.rename(run_dir, parked)
    os.rename(staging, run_dir)
    shutil.rmtree(parked, ignore_errors=True)
