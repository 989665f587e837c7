"""A training run's directory: resolved config, provenance, metrics, TensorBoard events and checkpoints.

Layout of ``<run_dir>``::

    config.yaml        the resolved config (loads back with ``--config``)
    meta.json          command line, git revision, package versions, host, start time, and every resume
    metrics.jsonl      one JSON object per log event, with ``step``
    tb/                TensorBoard events
    checkpoints/       step_<N>/ (safetensors + JSON), latest.json, best.json and best/ (the best evaluation's policy)
    summary.json       "last" and "best" results and the status (finished, stopped or failed with its error),
                       written when the run ends
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rlcore.checkpoint import CheckpointManager
from rlcore.config import check_range, save_yaml, to_dict
from rlcore.errors import ConfigError, UserError
from rlcore.io import atomic_write_text
from rlcore.logging import METRICS_FILE, MetricsLogger

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
NODE_ENV = "RLCORE_RAY_NODE"
"""Set by the sweep's Ray backend to the Ray node id a training runs on (meta.json's ``node``)."""

_VERSIONED = ("rlcore", "torch", "numpy", "gymnasium", "mujoco", "h5py", "safetensors", "transformers",
              "accelerate", "trl", "peft", "math-verify", "vllm", "minari")


@dataclasses.dataclass
class TrainConfig:
    """Run-level settings shared by every algorithm's config (which inherits them)."""

    seed: int = 0
    """Random seed for parameters, sampling and evaluation."""
    max_steps: int = 1000
    """Number of update steps."""
    log_every: int = 1000
    """Log training metrics (averaged over the interval) every this many steps."""
    eval_every: int = 5000
    """Evaluate every this many steps (and at the last step); 0 disables periodic evaluation."""
    ckpt_every: int = 5000
    """Write a checkpoint every this many steps (and at the last step, and when the run is stopped by a signal)."""
    ckpt_minutes: float = 10.0
    """Also write a checkpoint once this many minutes have passed since the last one (0: off), so that a kill -9
    loses at most about this much work."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep (the best policy is kept apart, in checkpoints/best)."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    threads: int = 0
    """torch intra-op threads; 0 keeps torch's default."""
    deterministic: bool = False
    """Use deterministic torch kernels (slower on GPU; CPU runs are deterministic anyway)."""
    tensorboard: bool = True
    """Write TensorBoard events under <run_dir>/tb."""
    wandb: bool = False
    """Also log to Weights & Biases (needs the wandb package)."""
    wandb_project: str = "rlcore"
    """W&B project the run logs to."""
    wandb_entity: str | None = None
    """W&B entity (user or team); None uses the logged-in user's default."""
    wandb_group: str | None = None
    """W&B group of the run; runs of a sweep default to the sweep's name (its output folder)."""
    progress: bool = True
    """Show a progress bar on the console."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "log_every", "ckpt_every", "keep_checkpoints"):
            check_range(name, getattr(self, name), low=1)
        check_range("eval_every", self.eval_every, low=0)
        check_range("ckpt_minutes", self.ckpt_minutes, low=0)
        check_range("threads", self.threads, low=0)


def git_revision() -> str | None:
    """Commit of the rlcore source tree (with ``-dirty`` when modified), or None outside a checkout."""
    src = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def default_run_dir(algo: str, task: str | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{algo}-{task}-{stamp}" if task else f"{algo}-{stamp}"
    return Path("runs") / name.replace("/", "_")


class Run:
    """Owns a run directory. ``Run.open(...)`` creates it (or reopens it to resume)."""

    def __init__(self, run_dir: Path, algo: str, config: TrainConfig, resume_step: int | None, is_main: bool = True,
                 created: tuple[Path, ...] = ()):
        self.dir = run_dir
        self.algo = algo
        self.config = config
        self.is_main = is_main
        self.resume_step = resume_step
        """The checkpoint step this run was resumed from (None for a new run)."""
        self._created = created
        self.checkpoints = CheckpointManager(run_dir / CHECKPOINT_DIR, keep_last=config.keep_checkpoints)
        # a new run drops the metrics of an earlier attempt in this folder that ended before its first checkpoint
        self.logger = MetricsLogger(run_dir, tensorboard=config.tensorboard, wandb=config.wandb,
                                    config=to_dict(config), resume_step=resume_step or 0, write=is_main)

    @classmethod
    def open(cls, algo: str, config: TrainConfig, run_dir: str | Path | None = None, task: str | None = None,
             resume: bool = False, is_main: bool = True, changes: dict[str, list[Any]] | None = None) -> Run:
        """Create ``run_dir`` (default ``runs/<algo>-<task>-<time>``) with config.yaml and meta.json, or reopen it
        when ``resume``: then ``changes`` (``{key: [old, new]}``, the config keys this resume changes) are written
        to config.yaml and, with the command line, appended to meta.json's ``resumes``.

        Refuses to overwrite a directory that already holds checkpoints unless ``resume`` is set (whether a resume
        is possible is :func:`rlcore.resume.begin`'s to check). In a
        multi-process run every process opens the run with ``is_main`` true on exactly one: the others read
        checkpoints (to resume) but write nothing. Pass the same ``run_dir`` to all of them.
        """
        path = Path(run_dir) if run_dir is not None else default_run_dir(algo, task)
        latest = CheckpointManager(path / CHECKPOINT_DIR).latest_step()
        if latest is not None and not resume:
            raise UserError(f"run directory '{path}' already has checkpoints (up to step {latest}); "
                            "pass --resume to continue it, or choose another --run-dir")
        if path.exists() and not path.is_dir():
            raise UserError(f"--run-dir '{path}' is a file; choose a directory path")
        if not is_main:
            return cls(path, algo, config, resume_step=latest if resume else None, is_main=False)
        if resume:
            if changes:
                save_yaml(config, path / CONFIG_FILE, algo=algo)
            _append_resume(path / META_FILE, latest, changes or {})
            return cls(path, algo, config, resume_step=latest)
        created = (path,) if not path.exists() else tuple(path / n for n in (CONFIG_FILE, META_FILE, METRICS_FILE,
                                                                               "tb"))
        for stale in (path / CHECKPOINT_DIR, path / SUMMARY_FILE):  # an earlier attempt's, ended before a checkpoint
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink(missing_ok=True)
        path.mkdir(parents=True, exist_ok=True)
        save_yaml(config, path / CONFIG_FILE, algo=algo)
        meta = {
            "algo": algo,
            "task": task,
            "argv": sys.argv,
            "git_revision": git_revision(),
            "versions": package_versions(),
            "host": platform.node(),
            "node": node_name(),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),  # processes (torchrun / accelerate launch)
            "started": _now(),
            "resumes": [],
        }
        atomic_write_text(path / META_FILE, json.dumps(meta, indent=1))
        return cls(path, algo, config, resume_step=None, created=created)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.is_main:
            atomic_write_text(self.dir / SUMMARY_FILE, json.dumps(summary, indent=1))

    def close(self) -> None:
        self.logger.close()

    def abandon(self) -> None:
        """Close a run whose setup failed before training, removing what a new run's start created (a resumed
        run keeps everything)."""
        self.close()
        for p in self._created:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def node_name() -> str:
    """The Ray node id when the sweep's Ray backend started this training, else the host name."""
    return os.environ.get(NODE_ENV) or platform.node()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _append_resume(meta_path: Path, step: int | None, changes: dict[str, list[Any]]) -> None:
    """Add ``{argv, step, time, changed}`` to meta.json's ``resumes``; the original command line stays."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {"note": "meta.json was missing or unreadable at a resume; the original command is lost"}
    meta.setdefault("resumes", []).append({"argv": sys.argv, "step": step, "time": _now(), "changed": changes,
                                           "node": node_name()})
    atomic_write_text(meta_path, json.dumps(meta, indent=1))


def run_finished(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run: a summary.json not written by a stop signal."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return summary.get("status", "finished") == "finished"


def saved_config_path(run_dir: str | Path) -> Path:
    """The resolved config of an existing run directory (for ``--resume`` and evaluation)."""
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise ConfigError(f"'{run_dir}' has no {CONFIG_FILE}; is it a run directory written by rlcore train?")
    return p
