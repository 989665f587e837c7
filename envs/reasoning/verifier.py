"""A pool of verifier processes with a hard per-answer deadline.

math-verify guards itself with ``signal.alarm``, which works only in a main thread and cannot interrupt long C
calls (a huge integer power, a deep parse). Here each check runs in a separate worker process; a check that misses
its deadline gets its worker killed and replaced and counts as incorrect, and a worker that crashes costs only its
current answer. Workers talk JSON lines over pipes (no pickling) and are reused across calls.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

import rlcore
from rlcore.errors import UserError

_STARTUP_TIMEOUT_S = 120.0
_PACKAGE_ROOT = str(Path(rlcore.__file__).resolve().parents[1])  # the folder that holds the rlcore package


class _Worker:
    def __init__(self, memory_gb: float):
        env = {**os.environ, "RLCORE_VERIFY_MEMORY_GB": str(memory_gb),
               "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "rlcore.envs.reasoning.verify_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env)
        self.started = time.monotonic()
        self.ready = False
        self.task: int | None = None
        self.deadline = 0.0

    def send(self, index: int, pred: str, gold: str, timeout: float) -> None:
        self.task, self.deadline = index, time.monotonic() + timeout
        line = json.dumps({"i": index, "pred": pred, "gold": gold, "t": max(1, int(timeout))})
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class VerifierPool:
    """``workers`` verifier processes; :meth:`check` maps (predicted answer, gold answer) pairs to booleans."""

    def __init__(self, workers: int = 1, memory_gb: float = 4.0):
        if workers < 1:
            raise UserError(f"verifier workers must be >= 1, got {workers}")
        self.memory_gb = memory_gb
        self.workers = [_Worker(memory_gb) for _ in range(workers)]
        self.timeouts = 0
        """Answers that missed their deadline so far (their workers were replaced)."""

    def resize(self, workers: int) -> None:
        """Grow to at least ``workers`` processes."""
        self.workers += [_Worker(self.memory_gb) for _ in range(workers - len(self.workers))]

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers[self.workers.index(worker)] = _Worker(self.memory_gb)

    def check(self, pairs: Sequence[tuple[str, str]], timeout: float = 5.0, progress: bool = False,
              workers: int | None = None) -> list[bool]:
        """Whether each predicted answer equals its gold answer; each check has ``timeout`` seconds (wall clock).

        ``workers``: use only the first that many processes (default all).
        """
        used = len(self.workers) if workers is None else max(1, min(workers, len(self.workers)))
        results = [False] * len(pairs)
        pending = deque(range(len(pairs)))
        remaining = len(pairs)
        bar = tqdm(total=len(pairs), desc="verify", unit="ans", disable=not progress, file=sys.stderr)
        try:
            while remaining:
                active = self.workers[:used]
                for w in active:
                    if w.ready and w.task is None and pending:
                        i = pending.popleft()
                        try:
                            w.send(i, *pairs[i], timeout)
                        except OSError:  # it died while idle: retry the answer on a fresh worker
                            pending.appendleft(i)
                            w.task = None
                            self._replace(w)
                active = self.workers[:used]
                now = time.monotonic()
                waits = [w.deadline - now if w.ready else w.started + _STARTUP_TIMEOUT_S - now for w in active
                         if w.task is not None or not w.ready]
                streams = {w.proc.stdout: w for w in active if w.task is not None or not w.ready}
                readable, _, _ = select.select(list(streams), [], [], max(0.0, min(waits, default=0.0)))
                for stream in readable:
                    w = streams[stream]
                    line = stream.readline()
                    if not line:  # the worker died (crash, memory limit): its answer counts as wrong
                        if not w.ready:
                            raise UserError("the math-verify worker failed to start; check that math-verify is "
                                            "installed (pip install 'rlcore[llm]')")
                        if w.task is not None:
                            w.task = None
                            remaining -= 1
                            bar.update()
                        self._replace(w)
                        continue
                    msg = json.loads(line)
                    if not w.ready:
                        w.ready = True
                        continue
                    results[msg["i"]] = bool(msg["ok"])
                    w.task = None
                    remaining -= 1
                    bar.update()
                now = time.monotonic()
                for w in active:
                    if w.ready and w.task is not None and now > w.deadline:
                        w.task = None
                        self.timeouts += 1
                        remaining -= 1
                        bar.update()
                        self._replace(w)
                    elif not w.ready and now > w.started + _STARTUP_TIMEOUT_S:
                        raise UserError(f"the math-verify worker did not start within {_STARTUP_TIMEOUT_S:.0f} s; "
                                        "the machine may be overloaded, retry with fewer verifier workers")
        finally:
            bar.close()
        return results

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []


_shared: VerifierPool | None = None


def shared_pool(workers: int = 1) -> VerifierPool:
    """The process-wide pool (created on first use, grown on demand, closed at exit)."""
    global _shared
    if _shared is None:
        _shared = VerifierPool(workers)
        atexit.register(_shared.close)
    elif len(_shared.workers) < workers:
        _shared.resize(workers)
    return _shared
