"""Checkpoints as safetensors (tensors) + JSON (everything else), written atomically.

A checkpoint is a directory ``<root>/step_<N>/`` with ``tensors.safetensors`` and ``state.json``. It is built in a
temporary sibling directory, every file is fsync'ed, and the directory is renamed into place, so a kill at any
moment leaves the previous checkpoints intact and loadable. ``latest`` and ``best`` are small JSON pointer files
replaced atomically. Nothing is pickled: the JSON skeleton records containers, scalars and where each tensor goes.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rlcore.errors import UserError

TENSORS = "tensors.safetensors"
STATE = "state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


# ----------------------------------------------------------------------------------------------------------------
# nested state <-> (tensors, JSON skeleton)


def flatten_state(obj: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts, lists, tuples, tensors, numpy arrays, scalars) into tensors and a JSON tree."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            tensors[path] = x.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(x, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(x).copy())
            return {"__ndarray__": path}
        if isinstance(x, Mapping):
            if all(isinstance(k, str) for k in x):
                return {"__dict__": {k: walk(v, f"{path}.{k}") for k, v in x.items()}}
            return {"__items__": [[walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")]
                                  for i, (k, v) in enumerate(x.items())]}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, float) and not math.isfinite(x):
            return {"__float__": repr(x)}
        if isinstance(x, (np.integer, np.floating, np.bool_)):
            return walk(x.item(), path)
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot checkpoint a value of type {type(x).__name__} at '{path}'")

    return tensors, walk(obj, "state")


def unflatten_state(tensors: Mapping[str, torch.Tensor], tree: Any) -> Any:
    """Inverse of :func:`flatten_state`."""

    def build(x: Any) -> Any:
        if isinstance(x, list):
            return [build(v) for v in x]
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__ndarray__" in x:
                return tensors[x["__ndarray__"]].numpy()
            if "__dict__" in x:
                return {k: build(v) for k, v in x["__dict__"].items()}
            if "__items__" in x:
                return {build(k): build(v) for k, v in x["__items__"]}
            if "__tuple__" in x:
                return tuple(build(v) for v in x["__tuple__"])
            if "__float__" in x:
                return float(x["__float__"])
        return x

    return build(tree)


# ----------------------------------------------------------------------------------------------------------------
# atomic file operations


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory, fsync, and rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_state(state: Any, directory: str | Path) -> Path:
    """Atomically write ``state`` as a checkpoint directory; an existing one is replaced only once the new one
    is complete (it is parked as ``.<name>.old`` for the instant of the swap)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        tensors, tree = flatten_state(state)
        save_file(tensors, str(tmp / TENSORS))
        with open(tmp / STATE, "w", encoding="utf-8") as f:
            json.dump(tree, f)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / TENSORS, "rb") as f:
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(directory.parent)
    return directory


def load_state(directory: str | Path) -> Any:
    """Read a checkpoint directory written by :func:`save_state`."""
    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / TENSORS).is_file():
        raise UserError(f"'{directory}' is not a checkpoint (expected {STATE} and {TENSORS}); "
                        "point to a step_<N> directory or a run directory with checkpoints/")
    try:
        tree = json.loads((directory / STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / TENSORS))
    except Exception as e:  # corrupted or truncated files from outside the atomic writer
        raise UserError(f"checkpoint '{directory}' is damaged ({type(e).__name__}: {e}); "
                        "use an earlier step_<N> directory") from e
    return unflatten_state(tensors, tree)


# ----------------------------------------------------------------------------------------------------------------
# manager: keep the last N and the best


class CheckpointManager:
    """Keeps ``keep_last`` recent checkpoints plus the best by a metric under ``root``.

    Example::

        ckpt = CheckpointManager(run_dir / "checkpoints", keep_last=2)
        ckpt.save(step, {"model": model.state_dict()}, metric=score)
        step, state = ckpt.load_latest()
    """

    def __init__(self, root: str | Path, keep_last: int = 2, higher_is_better: bool = True):
        if keep_last < 1:
            raise ValueError("keep_last must be >= 1")
        self.root = Path(root)
        self.keep_last = keep_last
        self.higher_is_better = higher_is_better

    def path(self, step: int) -> Path:
        return self.root / f"step_{step:09d}"

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, ascending."""
        if not self.root.is_dir():
            return []
        for parked in self.root.glob(".step_*.old"):  # a crash in the middle of replacing a checkpoint
            original = parked.with_name(parked.name[1:-4])
            if not original.exists():
                os.rename(parked, original)
        found = (_STEP_DIR.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def _pointer(self, name: str) -> dict[str, Any] | None:
        p = self.root / f"{name}.json"
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @property
    def best(self) -> dict[str, Any] | None:
        """``{"step": int, "metric": float}`` of the best checkpoint so far, or None."""
        return self._pointer("best")

    def save(self, step: int, state: Any, metric: float | None = None) -> Path:
        """Write checkpoint ``step``; update ``latest``/``best``; prune old ones. Returns its directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in [*self.root.glob(".*.tmp"), *self.root.glob(".step_*.del")]:  # left by a crash
            if stale.is_dir():  # a half-written checkpoint; a file is a half-written pointer (latest/best.json)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        target = save_state(state, self.path(step))
        atomic_write_text(self.root / "latest.json", json.dumps({"step": step}))
        if metric is not None and math.isfinite(metric):
            best = self.best
            better = best is None or (metric > best["metric"] if self.higher_is_better else metric < best["metric"])
            if better:
                atomic_write_text(self.root / "best.json", json.dumps({"step": step, "metric": metric}))
        self._prune()
        return target

    def _prune(self) -> None:
        keep = set(self.steps()[-self.keep_last:])
        best = self.best
        if best is not None:
            keep.add(int(best["step"]))
        for step in self.steps():
            if step not in keep:  # rename first so that a kill mid-delete never leaves a half checkpoint
                doomed = self.root / f".step_{step:09d}.del"
                os.rename(self.path(step), doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def load(self, step: int) -> Any:
        return load_state(self.path(step))

    def load_latest(self) -> tuple[int, Any] | None:
        """(step, state) of the newest loadable checkpoint, or None when there is none."""
        for step in reversed(self.steps()):
            try:
                return step, self.load(step)
            except UserError:
                continue
        return None
