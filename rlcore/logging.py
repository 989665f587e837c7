"""Metrics to JSONL, TensorBoard and (when asked and installed) Weights & Biases; a console progress bar and
one-line announcements of what a run is doing.

Metric names are namespaced (``train/v_loss``, ``eval/normalized_score``, ``geom/mean_cosine``). Values may be
0-dim tensors: they are converted to floats together at log time (one host sync per log event, not per step).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from rlcore.errors import ConfigError
from rlcore.io import atomic_write_text

METRICS_FILE = "metrics.jsonl"


def to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Convert a mapping of scalars / 0-dim tensors to floats with a single device->host transfer."""
    keys = list(metrics)
    tensor_keys = [k for k in keys if isinstance(metrics[k], torch.Tensor)]
    out = {k: float(metrics[k]) for k in keys if k not in tensor_keys}
    if tensor_keys:
        stacked = torch.stack([metrics[k].detach().reshape(()).to(torch.float64) for k in tensor_keys])
        out.update(zip(tensor_keys, stacked.cpu().tolist()))
    return {k: out[k] for k in keys}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON records of a JSON-lines file, one per line ([] when it does not exist); skips a torn last line."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file (a run directory or the file itself); skips a torn last line."""
    p = Path(path)
    return read_jsonl(p / METRICS_FILE if p.is_dir() else p)


SWEEP_FILE = "sweep.json"
"""What ``rlcore ablate`` writes in its output folder; a run directory below one belongs to that sweep."""

def _format(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4g}"


def _sweep_root(run_dir: Path) -> Path | None:
    """The nearest folder above ``run_dir`` that holds a sweep's ``sweep.json`` (None outside a sweep)."""
    return next((p for p in run_dir.resolve().parents if (p / SWEEP_FILE).is_file()), None)


def wandb_init_kwargs(run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments of ``wandb.init`` for a run: project, entity and group from ``config``, and a run id.

    A run of a sweep (a run directory ``<sweep>/<cell>/seed_<s>`` under a folder with ``sweep.json``) gets the id
    ``<sweep>-<cell>-seed_<s>`` (characters W&B refuses become ``_``; at most 55 of them) followed by 8 hex digits
    of a hash of (sweep, cell, seed folder), so cells and seeds never share an id; its group defaults to the
    sweep's name. Any other run keeps its folder's name as id. The id depends only on where the run lives, so a
    resumed run continues its W&B run (``resume="allow"``).
    """
    sweep = _sweep_root(run_dir)
    group = config.get("wandb_group")
    if sweep is None:
        run_id = name = run_dir.name
    else:
        parts = [sweep.name, *run_dir.resolve().relative_to(sweep).parts]
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))[:55]
        run_id = f"{readable}-{hashlib.sha1(chr(0).join(parts).encode()).hexdigest()[:8]}"
        name = "/".join(parts[1:])
        group = group or sweep.name
    return {"project": config.get("wandb_project") or "rlcore", "entity": config.get("wandb_entity"),
            "group": group, "id": run_id, "name": name, "dir": str(run_dir), "config": dict(config),
            "resume": "allow"}


class MetricsLogger:
    """Writes each log event to ``metrics.jsonl`` (one JSON object with ``step``), TensorBoard and W&B.

    ``resume_step``: records after that step (logged after the checkpoint a run resumes from, so logged again
    by the resumed run) are dropped, so that the file reads as one uninterrupted run, and ``dropped`` counts them;
    TensorBoard discards its events after that step the same way. None keeps every record. ``write=False`` (the
    non-main processes of a distributed run) converts and returns metrics but writes nothing.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, wandb: bool = False,
                 config: Mapping[str, Any] | None = None, resume_step: int | None = None, write: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.last: dict[str, float] = {}
        self._file = self._tb = self._wandb = None
        self.dropped = 0
        if not write:
            return
        if resume_step is not None and self.path.is_file():
            records = read_metrics(self.path)
            kept = [r for r in records if r.get("step", 0) <= resume_step]
            self.dropped = len(records) - len(kept)
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # TensorBoard hides the earlier events at and after purge_step: keep those of the resume step itself
            purge = resume_step + 1 if resume_step is not None else None
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as e:
                raise ConfigError("wandb=true but the wandb package is not installed; "
                                  "pip install wandb, or set wandb=false") from e
            # project, entity, group and run id from the config's wandb_* keys and where the run lives
            self._wandb = wandb_lib.init(**wandb_init_kwargs(self.run_dir, config or {}))

    def log(self, step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Record ``metrics`` at ``step``; returns them as floats."""
        values = to_floats(metrics)
        if self._file is not None:
            record = {"step": int(step), "time": round(time.time(), 3), **values}
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(values, step=step)
        self.last.update(values)
        return values

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


class Progress:
    """A tqdm bar over training steps (rate and ETA) with a compact line of chosen metrics.

    On a terminal it refreshes every second; when output is redirected it prints a line every 30 s.
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "train",
                 keys: Sequence[str] = (), enabled: bool = True):
        interactive = sys.stderr.isatty()
        self.keys = list(keys)
        self.bar = tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True,
                        mininterval=1.0 if interactive else 30.0, unit="step", file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def show(self, values: Mapping[str, float]) -> None:
        chosen = [k for k in self.keys if k in values] or list(values)[:4]
        self.bar.set_postfix_str(" ".join(f"{k.split('/')[-1]}={_format(values[k])}" for k in chosen),
                                 refresh=False)

    def write(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def announce(text: str) -> None:
    """Say on the console what the run is doing now (a step that may take a while, where the run lives); printed
    by the first process of a distributed run only."""
    if os.environ.get("RANK", "0") == "0":
        print(text, flush=True)
