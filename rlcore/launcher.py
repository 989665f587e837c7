"""The one launcher every algorithm's training goes through, so that a run behaves the same whatever it trains.

:func:`launch` does, in order:

1. torch threads and seeds (``threads``, ``seed``, ``deterministic``);
2. the run directory with ``config.yaml`` and ``meta.json``, before any slow setup, so a run can be found (and
   resumed) from its first second; on ``--resume`` the config changes are recorded in ``meta.json``;
3. the algorithm's own setup (data, models, environments), which gets the open :class:`rlcore.run.Run` and returns
   a :class:`Job`; a failed setup of a new run removes what step 2 created;
4. :func:`rlcore.loop.train_loop` under :class:`rlcore.stop.StopSignals`: SIGINT / SIGTERM end it after the
   current update with a checkpoint;
5. ``summary.json`` (written here and nowhere else), the job's final step when the run finished, closing; a
   stopped run then raises :class:`rlcore.errors.Stopped` with the exact command that resumes it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlcore.config import load_config, to_dict
from rlcore.errors import Stopped
from rlcore.logging import announce
from rlcore.loop import Algorithm, Sampler, train_loop
from rlcore.resume import config_changes
from rlcore.run import CONFIG_FILE, Run, TrainConfig, default_run_dir
from rlcore.runtime import seed_everything, set_threads
from rlcore.stop import StopSignals, exit_code


@dataclasses.dataclass
class Job:
    """What an algorithm's setup hands the launcher: the objects the loop drives and the hooks of its run."""

    algo: Algorithm
    sampler: Sampler
    evaluate: Callable[[Any], Mapping[str, Any]] | None = None
    """Metrics of the current policy (keys without a namespace go under ``eval/``)."""
    best_key: str | None = None
    """The evaluation metric that decides the best policy (higher is better)."""
    console_keys: tuple[str, ...] = ()
    """Metrics shown next to the progress bar."""
    extra_state: Callable[[], dict[str, Any]] | None = None
    """More state for every checkpoint (e.g. what acting needs: observation statistics, action bounds)."""
    save_best: Callable[[Path], None] | None = None
    """Writes the current policy and what acting with it needs into an empty directory (at every new best)."""
    best_dir: str | None = None
    """Where the best policy lives, relative to the run directory (default ``checkpoints/best``)."""
    agree: Callable[[list[bool]], list[bool]] | None = None
    """Distributed runs: per flag, whether any process raised it (stop and time-based checkpoint decisions)."""
    summary_extra: Callable[[], dict[str, Any]] | None = None
    """More entries for summary.json (e.g. the behaviour data's score)."""
    finish: Callable[[dict[str, Any]], None] | None = None
    """Runs once the last step is done (not after a stop), with the summary: e.g. exporting the final model."""
    close: Callable[[], None] | None = None
    """Releases what the setup started (rollout engines, worker processes)."""


def resume_command(algo: str, run_dir: Path) -> str:
    """The shell command that continues the run in ``run_dir`` (absolute path, quoted)."""
    return shlex.join(["rlcore", "train", algo, "--run-dir", os.path.abspath(run_dir), "--resume"])


def launch(name: str, cfg: TrainConfig, setup: Callable[[Run], Job], *, run_dir: str | Path | None = None,
           task: str | None = None, resume: bool = False, is_main: bool = True) -> tuple[dict[str, Any], Path]:
    """Train ``name`` (the ``rlcore train`` command) with ``cfg``: see the module docstring for the steps.

    ``setup(run)`` builds everything slow; ``task`` names the default run directory
    (``runs/<name>-<task>-<time>``); ``is_main`` is false on all but one process of a distributed run (they
    must pass the same ``run_dir``). Returns ``(summary, run directory)``; raises :class:`rlcore.errors.Stopped`
    after a stop signal, once the checkpoint and the summary are written.
    """
    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    path = Path(run_dir) if run_dir is not None else default_run_dir(name, task)
    changes = None
    if resume and (path / CONFIG_FILE).is_file():
        changes = config_changes(to_dict(load_config(type(cfg), path / CONFIG_FILE)), to_dict(cfg))
    run = Run.open(name, cfg, run_dir=path, task=task, resume=resume, is_main=is_main, changes=changes)
    if is_main:
        if run.logger.dropped:
            announce(f"dropped {run.logger.dropped} metric lines logged after step {run.resume_step} (the "
                     "checkpoint this run resumes from); the resumed run logs those steps again")
        if run.resume_step is None:
            announce(f"{name}: run directory {run.dir}")
    try:
        job = setup(run)
    except BaseException:
        run.abandon()
        raise
    with StopSignals() as stop:
        try:
            best_dir = run.dir / job.best_dir if job.best_dir else None
            summary = train_loop(run, job.algo, job.sampler, evaluate=job.evaluate, best_key=job.best_key,
                                 console_keys=job.console_keys, extra_state=job.extra_state,
                                 save_best=job.save_best, best_dir=best_dir, stop=stop, agree=job.agree)
            if job.summary_extra is not None:
                summary.update(job.summary_extra())
            run.write_summary(summary)
            if summary["status"] == "finished" and job.finish is not None:
                job.finish(summary)
        finally:
            run.close()
            if job.close is not None:
                job.close()
    if summary["status"] == "stopped":
        signum = stop.signum or signal.SIGINT
        message = (f"stopped at step {summary['step']} of {summary['steps']} by {signal.Signals(signum).name}; "
                   f"checkpoint and summary written; resume with: {resume_command(name, run.dir)}")
        raise Stopped(message if is_main else "", exit_code(signum))
    return summary, run.dir
