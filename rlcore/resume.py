"""Everything about resuming a run, in one place: what ``--resume`` (``rlcore.train(..., resume=True)``) accepts, which
config keys it may change, and the commands that continue a run. The launcher calls :func:`begin` once per run.

A resume continues a run directory that holds ``config.yaml`` and a checkpoint. It may change how the run goes on
(:data:`RESUMABLE_KEYS`: its length, evaluation and logging schedule, checkpoints, logging switches), never silently
the experiment itself: other changes are refused unless forced, and then recorded in config.yaml and meta.json.
"""

from __future__ import annotations

import os
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlcore.checkpoint import CheckpointManager
from rlcore.config import load_config, to_dict
from rlcore.errors import ConfigError, UserError
from rlcore.run import CHECKPOINT_DIR, CONFIG_FILE

RESUMABLE_KEYS = ("max_steps", "eval_every", "eval_episodes", "log_every", "keep_checkpoints", "tensorboard",
                  "progress", "ckpt_*", "wandb*")
"""The config keys a resume may change without forcing (``*``: every key with that prefix)."""


def resumable_keys_text() -> str:
    """:data:`RESUMABLE_KEYS` as prose, for help texts and messages."""
    return ", ".join(RESUMABLE_KEYS)


def may_change(key: str) -> bool:
    """Whether a resume may change config key ``key`` without forcing."""
    return any(key.startswith(k[:-1]) if k.endswith("*") else key == k for k in RESUMABLE_KEYS)


def saved_config(run_dir: str | Path | None, algo: str) -> Path:
    """The ``config.yaml`` of a run that can be resumed; a one-line UserError otherwise."""
    if not run_dir:
        raise UserError("--resume needs --run-dir (in Python: run_dir=) pointing at the run to continue")
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


def begin(algo: str, cfg: Any, run_dir: Path, resume: bool, force: bool = False) -> dict[str, list[Any]] | None:
    """None for a new run; for a resume, the config changes ``{key: [saved, new]}`` it makes, once checked.

    Raises a one-line UserError when ``run_dir`` cannot be resumed, and ConfigError when a change alters the
    experiment (a key outside :data:`RESUMABLE_KEYS`) and ``force`` is false.
    """
    if not resume:
        return None
    path = saved_config(run_dir, algo)
    changes = config_changes(to_dict(load_config(type(cfg), path, algo=algo)), to_dict(cfg))
    refused = [k for k in changes if not may_change(k)]
    if refused and not force:
        shown = ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in refused)
        new = shlex.join(["rlcore", "train", algo, "--config", str(path), "--run-dir", "NEW_DIR"])
        raise ConfigError(f"--resume would change the experiment ({shown}); a resume may only change "
                          f"{resumable_keys_text()}. Start a new run from this one's config ({new} --set ...) or "
                          "pass --force-config (in Python: force_config=True)")
    return changes


def resume_command(algo: str, run_dir: Path) -> str:
    """The shell command that continues the run in ``run_dir`` (absolute path, quoted)."""
    return shlex.join(["rlcore", "train", algo, "--run-dir", os.path.abspath(run_dir), "--resume"])


def resume_call(run_dir: Path) -> str:
    """The Python call that continues the run in ``run_dir``."""
    return f"rlcore.train(..., run_dir={os.path.abspath(run_dir)!r}, resume=True)"


def stopped_message(summary: Mapping[str, Any], signum: int, how: str) -> str:
    """What a run stopped by ``signum`` says: where it stopped, and ``how`` to resume it (a command or a call)."""
    return (f"stopped at step {summary['step']} of {summary['steps']} by {signal.Signals(signum).name}; "
            f"checkpoint and summary written; resume with: {how}")
