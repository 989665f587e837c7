"""Running a planned sweep on a backend, with a progress bar and ``<out>/sweep.json`` kept up to date."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlcore.io import atomic_write_text
from rlcore.sweep.local import Supervisor, run_in_process
from rlcore.sweep.plan import RunSpec, is_finished
from rlcore.sweep.spec import SWEEP_FILE, Backend, SweepSpec

Status = dict[str, dict[str, Any]]
"""``{run_dir: {"cell", "seeds", "status": done|failed|skipped, "seconds", "error"}}``."""


def write_status(out: Path, spec: SweepSpec, status: Status) -> None:
    """Write ``<out>/sweep.json``: the spec and every run's status (atomically: a kill never leaves half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SWEEP_FILE, json.dumps({"spec": dataclasses.asdict(spec), "runs": status}, indent=1))


class _Recorder:
    """Counts, progress bar and sweep.json of one sweep as its runs end."""

    def __init__(self, runs: list[RunSpec], todo: list[RunSpec], spec: SweepSpec, out: Path, progress: bool):
        self.spec, self.out = spec, out
        pending = {r.run_dir for r in todo}
        self.status: Status = {str(r.run_dir): {"cell": r.cell, "seeds": r.seeds, "status": "skipped"}
                               for r in runs if r.run_dir not in pending}
        self.counts = {"done": 0, "running": 0, "failed": 0}
        self.bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="sweep", unit="run",
                        disable=not progress, file=sys.stderr, dynamic_ncols=True)
        write_status(out, spec, self.status)

    def running(self, n: int) -> None:
        self.counts["running"] = n
        self.bar.set_postfix(self.counts)

    def record(self, run: RunSpec, ok: bool, error: str, seconds: float) -> None:
        self.counts["done" if ok else "failed"] += 1
        entry = {"cell": run.cell, "seeds": run.seeds, "status": "done" if ok else "failed",
                 "seconds": round(seconds, 2)}
        if not ok:
            entry["error"] = error
            self.bar.write(f"failed: {run.run_dir}: {error}", file=sys.stderr)
        self.status[str(run.run_dir)] = entry
        self.bar.update()
        self.bar.set_postfix(self.counts, refresh=False)
        write_status(self.out, self.spec, self.status)


def _run_pool(todo: list[RunSpec], submit: Callable[[RunSpec], Future], workers: int, rec: _Recorder) -> None:
    """Keep ``workers`` runs in flight until every run has ended."""
    pending: dict[Future, tuple[RunSpec, float]] = {}
    queue = list(todo)
    while queue or pending:
        while queue and len(pending) < workers:
            run = queue.pop(0)
            pending[submit(run)] = (run, time.perf_counter())
        rec.running(len(pending))
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in finished:
            run, t0 = pending.pop(fut)
            try:
                ok, error = fut.result()
            except Exception as e:  # e.g. a ray worker lost
                ok, error = False, f"{type(e).__name__}: {e}"
            rec.record(run, ok, error, time.perf_counter() - t0)


def execute(runs: list[RunSpec], spec: SweepSpec, out: Path, backend: Backend, progress: bool = True) -> Status:
    """Run every unfinished run on ``backend``; returns every run's status (also written to sweep.json).

    Whatever ends the sweep (the last run, an exception, KeyboardInterrupt), no training it started outlives it.
    """
    todo = [r for r in runs if not is_finished(r)]
    rec = _Recorder(runs, todo, spec, out, progress)
    supervisor = Supervisor()
    ray_runner = None
    try:
        if backend == "sequential":
            for run in todo:
                rec.running(1)
                t0 = time.perf_counter()
                ok, error = run_in_process(run)
                rec.running(0)
                rec.record(run, ok, error, time.perf_counter() - t0)
        elif backend == "ray":
            from rlcore.sweep.ray_backend import RayRunner

            ray_runner = RayRunner(spec, out)
            _run_pool(todo, ray_runner, spec.workers, rec)
        else:
            # no `with`: on an interrupt its exit would wait for the running trainings before `finally` stops them
            pool = ThreadPoolExecutor(max_workers=spec.workers)
            _run_pool(todo, lambda run: pool.submit(supervisor.run, run, spec.threads_per_worker), spec.workers, rec)
            pool.shutdown()
    finally:
        if ray_runner is not None:
            ray_runner.cancel()
        supervisor.stop()
        rec.bar.close()
    return rec.status
