"""A training run's directory: resolved config, provenance, metrics, TensorBoard events and checkpoints.

Layout of ``<run_dir>``::

    config.yaml        the resolved config (loads back with ``--config``)
    meta.json          command line, git revision, package versions, host, start time
    metrics.jsonl      one JSON object per log event, with ``step``
    tb/                TensorBoard events
    checkpoints/       step_<N>/ (safetensors + JSON), latest.json, best.json
    summary.json       "last" and "best" results, written when the run ends
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rlcore.checkpoint import CheckpointManager, atomic_write_text
from rlcore.config import check_range, save_yaml, to_dict
from rlcore.errors import ConfigError, UserError
from rlcore.logging import MetricsLogger

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"

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
    """Write a checkpoint every this many steps (and at the last step)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep (the best one is kept as well)."""
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

    def __init__(self, run_dir: Path, algo: str, config: TrainConfig, resume_step: int, is_main: bool = True):
        self.dir = run_dir
        self.algo = algo
        self.config = config
        self.is_main = is_main
        self.checkpoints = CheckpointManager(run_dir / CHECKPOINT_DIR, keep_last=config.keep_checkpoints)
        self.logger = MetricsLogger(run_dir, tensorboard=config.tensorboard, wandb=config.wandb,
                                    config=to_dict(config), resume_step=resume_step, write=is_main)

    @classmethod
    def open(cls, algo: str, config: TrainConfig, run_dir: str | Path | None = None, task: str | None = None,
             resume: bool = False, is_main: bool = True) -> Run:
        """Create ``run_dir`` (default ``runs/<algo>-<task>-<time>``), or reopen it when ``resume``.

        Refuses to overwrite a directory that already holds checkpoints unless ``resume`` is set. In a
        multi-process run every process opens the run with ``is_main`` true on exactly one: the others read
        checkpoints (to resume) but write nothing. Pass the same ``run_dir`` to all of them.
        """
        path = Path(run_dir) if run_dir is not None else default_run_dir(algo, task)
        ckpt = CheckpointManager(path / CHECKPOINT_DIR)
        latest = ckpt.latest_step()
        if latest is not None and not resume:
            raise UserError(f"run directory '{path}' already has checkpoints (up to step {latest}); "
                            "pass --resume to continue it, or choose another --run-dir")
        if path.exists() and not path.is_dir():
            raise UserError(f"--run-dir '{path}' is a file; choose a directory path")
        if not is_main:
            return cls(path, algo, config, resume_step=latest or 0, is_main=False)
        path.mkdir(parents=True, exist_ok=True)
        save_yaml(config, path / CONFIG_FILE, algo=algo)
        meta = {
            "algo": algo,
            "task": task,
            "argv": sys.argv,
            "git_revision": git_revision(),
            "versions": package_versions(),
            "host": platform.node(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed_from_step": latest if resume else None,
        }
        atomic_write_text(path / META_FILE, json.dumps(meta, indent=1))
        # Metrics logged after the checkpoint we continue from (or all of them, on a fresh start) are dropped.
        return cls(path, algo, config, resume_step=latest or 0)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.is_main:
            atomic_write_text(self.dir / SUMMARY_FILE, json.dumps(summary, indent=1))

    def close(self) -> None:
        self.logger.close()


def saved_config_path(run_dir: str | Path) -> Path:
    """The resolved config of an existing run directory (for ``--resume`` and evaluation)."""
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise ConfigError(f"'{run_dir}' has no {CONFIG_FILE}; is it a run directory written by rlcore train?")
    return p
