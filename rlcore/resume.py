"""What ``--resume`` accepts: a run directory with a checkpoint, and changes to how the run goes on (its length,
evaluation and logging schedule, checkpoints, logging switches), never silently to the experiment itself."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlcore.checkpoint import CheckpointManager
from rlcore.errors import ConfigError, UserError
from rlcore.run import CHECKPOINT_DIR, CONFIG_FILE

RUN_KEYS = frozenset({"max_steps", "eval_every", "eval_episodes", "log_every", "keep_checkpoints", "tensorboard",
                      "progress"})
"""Keys a resume may change without ``--force-config`` (besides ``ckpt_*`` and ``wandb*``)."""
RUN_PREFIXES = ("ckpt_", "wandb")


def resumable_config(run_dir: str | Path | None, algo: str) -> Path:
    """The saved ``config.yaml`` of a run that ``--resume`` can continue; a one-line error otherwise."""
    if not run_dir:
        raise UserError("--resume needs --run-dir pointing at the run to continue")
    path = Path(run_dir)
    if not (path / CONFIG_FILE).is_file():
        raise UserError(f"'{path}' is not a run directory (no {CONFIG_FILE}); pass the folder of a run started by "
                        f"`rlcore train`, or drop --resume to start a new run there")
    if CheckpointManager(path / CHECKPOINT_DIR).latest_step() is None:
        fresh = shlex.join(["rlcore", "train", algo, "--config", str(path / CONFIG_FILE), "--run-dir", str(path)])
        raise UserError(f"'{path}' has no checkpoint to resume from (it ended before its first one); start it "
                        f"afresh with: {fresh}")
    return path / CONFIG_FILE


def flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(saved: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Keys whose value differs between two plain configs: ``{key: [saved, new]}``."""
    a, b = flat(saved), flat(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def changes_the_experiment(key: str) -> bool:
    return key not in RUN_KEYS and not key.startswith(RUN_PREFIXES)


def check_changes(changes: Mapping[str, list[Any]], run_dir: str | Path, algo: str, force: bool) -> None:
    """Refuse (ConfigError) changes that make a resumed run a different experiment, unless ``force``."""
    refused = [k for k in changes if changes_the_experiment(k)]
    if not refused or force:
        return
    shown = ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in refused)
    config = Path(run_dir) / CONFIG_FILE
    new = shlex.join(["rlcore", "train", algo, "--config", str(config), "--run-dir", "NEW_DIR"])
    raise ConfigError(f"--resume would change the experiment ({shown}); a resume may only change max_steps, "
                      f"eval_every, eval_episodes, log_every, ckpt_*, keep_checkpoints and logging switches. Start a "
                      f"new run from this one's config ({new} --set ...) or pass --force-config")
