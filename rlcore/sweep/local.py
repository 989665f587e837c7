"""Running one training of a sweep: in this process, or as a supervised ``python -m rlcore`` subprocess."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import subprocess
import sys
import threading
import time

from rlcore.stop import exit_code
from rlcore.sweep.plan import RunSpec, argv_for_attempt


def last_line(text: str) -> str:
    """The last non-empty line of a training's output (its error, for the sweep's status)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run_in_process(run: RunSpec) -> tuple[bool, str]:
    """Run one training in this process through the CLI entry point; (ok, error line)."""
    from rlcore.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv_for_attempt(run))
        except Exception as e:  # a bug in a run must not end the sweep
            return False, f"{type(e).__name__}: {e}"
    if code in (exit_code(signal.SIGINT), exit_code(signal.SIGTERM)):  # the training caught the sweep's stop signal
        raise KeyboardInterrupt
    return code == 0, last_line(err.getvalue()) if code else ""


def _die_with_parent() -> None:
    """Run in the child before exec (Linux): SIGKILL it when the process that started it dies, so that a training
    never outlives its sweep or Ray worker (e.g. on a lost node) and writes on behind its resubmitted successor."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def end_processes(processes: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    """SIGTERM ``processes``, then SIGKILL those still alive after ``grace_s``."""
    for proc in processes:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in processes:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


class Supervisor:
    """The trainings one sweep started as subprocesses, so that stopping the sweep stops them all.

    One object per sweep (or per Ray task), shared by the threads that start trainings; nothing is global.
    """

    def __init__(self) -> None:
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: no new training starts and no killed one is retried."""
        return self._stopping.is_set()

    def run(self, run: RunSpec, threads: int) -> tuple[bool, str]:
        """Run one training as ``python -m rlcore ...``; one killed by a signal is retried once from its checkpoint.

        Returns (ok, error line).
        """
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        for attempt in range(2):
            if self.stopping:
                return False, "the sweep was stopped"
            with subprocess.Popen([sys.executable, "-m", "rlcore", *argv_for_attempt(run)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env,
                                  preexec_fn=_die_with_parent if sys.platform == "linux" else None) as proc:
                with self._lock:
                    self._children.add(proc)
                if self.stopping:  # started while stop() ran
                    proc.terminate()
                try:
                    stderr = _stderr_when_done(proc)
                except BaseException:  # e.g. the KeyboardInterrupt of a cancelled Ray task: end the training too
                    end_processes([proc])
                    raise
                finally:
                    with self._lock:
                        self._children.discard(proc)
            if proc.returncode == 0:
                return True, ""
            if proc.returncode >= 0 or attempt == 1:
                how = f"exit code {proc.returncode}" if proc.returncode >= 0 else f"killed by signal {-proc.returncode}"
                return False, f"{how}: {last_line(stderr)}"
        return False, "unreachable"

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM every training still running, SIGKILL those alive after ``grace_s``: a stopped sweep leaves no
        run writing behind it (they resume from their checkpoints next time)."""
        self._stopping.set()
        with self._lock:
            children = list(self._children)
        end_processes(children, grace_s)


def _stderr_when_done(proc: subprocess.Popen) -> str:
    """Wait for ``proc`` and return its stderr, waking once a second: an interrupt raised in this thread from
    outside (Ray's cancel of a running task) only lands while Python code runs, never inside a blocking wait."""
    while True:
        try:
            return proc.communicate(timeout=1.0)[1]
        except subprocess.TimeoutExpired:
            continue


def run_subprocess(run: RunSpec, threads: int, supervisor: Supervisor | None = None) -> tuple[bool, str]:
    """:meth:`Supervisor.run` under ``supervisor`` (a Ray task, which has none to share, gets its own)."""
    return (supervisor or Supervisor()).run(run, threads)
