"""The one launcher every training goes through (:func:`rlcore.train` calls it), so that a run behaves the same
whatever it trains.

:func:`launch` does, in order:

1. torch threads and seeds (``threads``, ``seed``, ``deterministic``); the spec's processes handle, if it has one;
2. the run directory (agreed by every process) with ``config.yaml`` and ``meta.json``, before any slow setup, so a
   run can be found (and resumed) from its first second; a resume is checked by :func:`rlcore.resume.begin` and its
   config changes recorded in ``meta.json``;
3. the algorithm's own setup (``spec.build``: data, models, environments), which gets the open
   :class:`rlcore.run.Run` and returns a :class:`Job`; bad input there (a UserError) removes what a new run's step 2
   created;
4. :func:`rlcore.loop.train_loop` under :class:`rlcore.stop.StopSignals`: SIGINT / SIGTERM end it after the
   current update with a checkpoint;
5. ``summary.json`` (written here and nowhere else): ``finished`` or ``stopped`` with the results, or ``failed``
   with the error when any exception ended setup or training; the job's final step when the run finished; closing.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlcore import resume as resuming
from rlcore.errors import UserError
from rlcore.logging import announce
from rlcore.loop import Algorithm, Sampler, train_loop
from rlcore.run import Run, TrainConfig, default_run_dir
from rlcore.runtime import seed_everything, set_threads
from rlcore.stop import StopSignals

if TYPE_CHECKING:
    from rlcore.algorithm import AlgorithmSpec, Inputs


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


@dataclasses.dataclass(frozen=True)
class Launched:
    """How a launch ended: the summary (as in summary.json), the run directory, whether this is the main process,
    and the stop signal when a signal stopped it."""

    summary: dict[str, Any]
    run_dir: Path
    is_main: bool = True
    signum: int | None = None


def failure(error: BaseException) -> dict[str, Any]:
    """The summary of a run that an exception ended."""
    return {"status": "failed", "error": f"{type(error).__name__}: {error}"}


def launch(spec: AlgorithmSpec, cfg: TrainConfig, inputs: Inputs, *, run_dir: str | Path | None = None,
           resume: bool = False, force_config: bool = False) -> Launched:
    """Train ``spec`` with ``cfg`` (see the module docstring for the steps); exceptions propagate unchanged, after
    ``summary.json`` recorded them."""
    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    processes = spec.processes(cfg) if spec.processes is not None else None
    is_main = processes.is_main if processes is not None else True
    task = spec.task(cfg)
    path = Path(run_dir) if run_dir is not None else default_run_dir(spec.name, task)
    if processes is not None:
        path = Path(processes.share(str(path)))  # the main process's choice
        inputs = dataclasses.replace(inputs, processes=processes)
    changes = resuming.begin(spec.name, cfg, path, resume, force_config)
    run = Run.open(spec.name, cfg, run_dir=path, task=task, resume=resume, is_main=is_main, changes=changes)
    if is_main:
        if run.logger.dropped:
            announce(f"dropped {run.logger.dropped} metric lines logged after step {run.resume_step} (the "
                     "checkpoint this run resumes from); the resumed run logs those steps again")
        if run.resume_step is None:
            announce(f"{spec.name}: run directory {run.dir}")
    try:
        job = spec.build(cfg, run, inputs)
    except (UserError, KeyboardInterrupt):  # bad input or an early Ctrl-C: nothing ran, a new run leaves nothing
        run.abandon()
        raise
    except BaseException as e:
        run.write_summary(failure(e))
        run.close()
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
        except Exception as e:
            run.write_summary(failure(e))
            raise
        finally:
            run.close()
            if job.close is not None:
                job.close()
    signum = (stop.signum or signal.SIGINT) if summary["status"] == "stopped" else None
    return Launched(summary, run.dir, is_main, signum)
