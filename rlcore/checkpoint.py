"""Checkpoints as safetensors (tensors) + JSON (everything else), written atomically.

A checkpoint is a directory ``<root>/step_<N>/`` with ``tensors.safetensors`` and ``state.json``. It is built in a
temporary sibling directory, every file is fsync'ed, and the directory is renamed into place, so a kill at any
moment leaves the previous checkpoints intact and loadable. ``latest.json`` and ``best.json`` are small JSON files
replaced atomically; the best evaluation's policy is its own directory (``best/``), written the same way. Nothing
is pickled: the JSON skeleton records containers, scalars and where each tensor goes.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from rlcore.errors import UserError
from rlcore.io import atomic_write_text, fsync_dir

TENSORS = "tensors.safetensors"
STATE = "state.json"
BEST_RECORD = "rlcore_best.json"
"""The best evaluation's record, stored inside the best policy's directory as well."""
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


def write_state(state: Any, directory: str | Path) -> None:
    """Write ``state`` as ``tensors.safetensors`` + ``state.json`` into an existing (temporary) directory."""
    tensors, tree = flatten_state(state)
    save_file(tensors, str(Path(directory) / TENSORS))
    with open(Path(directory) / STATE, "w", encoding="utf-8") as f:
        json.dump(tree, f)


def write_directory(directory: str | Path, fill: Callable[[Path], None]) -> Path:
    """Atomically create or replace ``directory`` with what ``fill(tmp)`` writes into an empty temporary sibling:
    every file is fsync'ed, then the directory is renamed into place (an existing one is parked as
    ``.<name>.old`` for the instant of the swap), so a kill at any moment leaves the old or the new one whole."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        fill(tmp)
        for path in sorted(tmp.rglob("*"), reverse=True):  # files before the folders that hold them
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
            else:
                fsync_dir(path)
        fsync_dir(tmp)
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(directory.parent)
    return directory


def save_state(state: Any, directory: str | Path) -> Path:
    """Atomically write ``state`` as a checkpoint directory (see :func:`write_directory`)."""
    return write_directory(directory, lambda tmp: write_state(state, tmp))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tensor_names(tree: Any) -> list[str]:
    """The tensors a JSON skeleton of :func:`flatten_state` refers to."""
    if isinstance(tree, list):
        return [n for v in tree for n in _tensor_names(v)]
    if not isinstance(tree, dict):
        return []
    if "__tensor__" in tree or "__ndarray__" in tree:
        return [tree.get("__tensor__") or tree["__ndarray__"]]
    return [n for v in tree.values() for n in _tensor_names(v)]


def load_state(directory: str | Path, keys: Sequence[str] = ()) -> Any:
    """Read a checkpoint directory written by :func:`save_state`; with ``keys``, only ``state[k0][k1]...``, whose
    tensors alone are read (e.g. a model's weights without its optimiser state)."""
    directory = Path(directory)
    if not (directory / STATE).is_file() or not (directory / TENSORS).is_file():
        raise UserError(f"'{directory}' is not a checkpoint (expected {STATE} and {TENSORS}); "
                        "point to a step_<N> directory or a run directory with checkpoints/")
    try:
        tree = json.loads((directory / STATE).read_text(encoding="utf-8"))
        for depth, key in enumerate(keys):
            if key not in tree.get("__dict__", {}):
                raise UserError(f"checkpoint '{directory}' has no state {'.'.join(keys[:depth + 1])!r}")
            tree = tree["__dict__"][key]
        if not keys:
            tensors = load_file(str(directory / TENSORS))
        else:
            with safe_open(str(directory / TENSORS), framework="pt") as f:
                tensors = {name: f.get_tensor(name) for name in _tensor_names(tree)}
    except UserError:
        raise
    except Exception as e:  # corrupted or truncated files from outside the atomic writer
        raise UserError(f"checkpoint '{directory}' is damaged ({type(e).__name__}: {e}); "
                        "use an earlier step_<N> directory") from e
    return unflatten_state(tensors, tree)


# ----------------------------------------------------------------------------------------------------------------
# manager: keep the last N, and the best policy


class CheckpointManager:
    """Keeps the ``keep_last`` most recent checkpoints under ``root``, and the policy of the best evaluation.

    Example::

        ckpt = CheckpointManager(run_dir / "checkpoints", keep_last=2)
        ckpt.save(step, {"model": model.state_dict()})
        step, state = ckpt.load_latest()
        ckpt.save_best(step, "eval/score", {"eval/score": 0.9}, lambda d: write_state(policy_state, d))

    ``best.json`` names the best evaluation (``step``, ``key``, ``metric``: its score, ``metrics``: everything
    that evaluation logged, ``path``: where its policy lies, relative to ``root``).
    """

    def __init__(self, root: str | Path, keep_last: int = 2):
        if keep_last < 1:
            raise ValueError("keep_last must be >= 1")
        self.root = Path(root)
        self.keep_last = keep_last

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

    @property
    def best(self) -> dict[str, Any] | None:
        """The best evaluation's record (see the class docstring), or None before the first evaluation.

        The copy stored with the policy wins over ``best.json``: they differ only after a kill between the two
        writes, and the record must describe the policy on disk."""
        record = _read_json(self.root / "best.json")
        if record is not None and "path" in record:
            return _read_json(self.root / record["path"] / BEST_RECORD) or record
        return record

    def best_path(self) -> Path | None:
        """Directory of the best policy, or None (no evaluation yet, or a run that kept only checkpoints)."""
        best = self.best
        if best is None or "path" not in best:
            return None
        path = self.root / best["path"]
        return path if path.is_dir() else None

    def save(self, step: int, state: Any) -> Path:
        """Write checkpoint ``step``; update ``latest.json``; prune old ones. Returns its directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in [*self.root.glob(".*.tmp"), *self.root.glob(".step_*.del")]:  # left by a crash
            if stale.is_dir():  # a half-written checkpoint; a file is a half-written pointer (latest/best.json)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        target = save_state(state, self.path(step))
        atomic_write_text(self.root / "latest.json", json.dumps({"step": step}))
        self._prune()
        return target

    def save_best(self, step: int, key: str, metrics: Mapping[str, float], write: Callable[[Path], None] | None,
                  directory: str | Path | None = None) -> None:
        """Record the evaluation at ``step`` as the best: ``write(tmp_dir)`` stores its policy, which atomically
        replaces ``directory`` (default ``<root>/best``), then ``best.json`` is replaced."""
        record: dict[str, Any] = {"step": step, "key": key, "metric": metrics[key], "metrics": dict(metrics)}
        if write is not None:
            target = Path(directory) if directory is not None else self.root / "best"
            record["path"] = os.path.relpath(target, self.root)

            def fill(tmp: Path) -> None:
                write(tmp)
                (tmp / BEST_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")

            write_directory(target, fill)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "best.json", json.dumps(record, indent=1))

    def _prune(self) -> None:
        for step in self.steps()[:-self.keep_last]:  # rename first so that a kill mid-delete leaves no half one
            doomed = self.root / f".step_{step:09d}.del"
            os.rename(self.path(step), doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def load(self, step: int, keys: Sequence[str] = ()) -> Any:
        """Checkpoint ``step`` (only ``state[k0][k1]...`` with ``keys``, see :func:`load_state`)."""
        return load_state(self.path(step), keys)

    def load_latest(self) -> tuple[int, Any] | None:
        """(step, state) of the newest loadable checkpoint, or None when there is none."""
        for step in reversed(self.steps()):
            try:
                return step, self.load(step)
            except UserError:
                continue
        return None
