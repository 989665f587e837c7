"""``rlcore ablate <spec.yaml> --out <dir>``: a sweep of configs x seeds, resumable, on one of three backends.

A spec names a base preset and the cells to run::

    base: configs/toy/demo.yaml     # preset; its `algo:` key names the algorithm (or give `algo:`)
    set: {max_steps: 200}           # overrides for every run
    grid: {lr: [1e-3, 3e-4]}        # cells = cartesian product of these overrides ...
    cells:                          # ... and/or named cells with their own overrides (and, optionally, preset)
      - {name: small, set: {hidden: 16}}
      - {name: bc, base: configs/bc/demo.yaml}
    seeds: [0, 1]
    metric: eval/score              # what `rlcore report` tabulates
    backend: process                # sequential (in this process) | process (local pool) | ray
    workers: 2
    threads_per_worker: 1

Each run is ``rlcore train <algo> --config <base> --set ... --run-dir <out>/<cell>/seed_<s>``; a finished run
(its ``summary.json`` not from a stop) is skipped when the sweep is started again, a run with checkpoints is resumed,
and a failed run is reported with its error without stopping the others (a run killed by a signal is retried
once from its checkpoint). ``<out>/sweep.json`` records the spec and every run's status.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

import yaml
from tqdm.auto import tqdm

from rlcore.checkpoint import CheckpointManager, atomic_write_text
from rlcore.cli.commands import Command
from rlcore.config import ALGO_KEY, check_range, from_dict, read_yaml
from rlcore.errors import ConfigError, UserError
from rlcore.run import CHECKPOINT_DIR, run_finished
from rlcore.stop import exit_code

SWEEP_FILE = "sweep.json"
Backend = Literal["sequential", "process", "ray"]


@dataclasses.dataclass
class Cell:
    """One named set of overrides."""

    name: str
    """Folder name of the cell under the sweep's output directory."""
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Config overrides of this cell (key: value, nested keys with dots)."""
    base: str | None = None
    """This cell's own preset (e.g. a baseline's), instead of the sweep's `base`; its `algo:` names the algorithm."""


@dataclasses.dataclass
class SweepSpec:
    """A sweep: a base preset, cells of overrides, and seeds."""

    base: str
    """Preset YAML every run starts from (relative paths: to the spec file, then to the working directory)."""
    algo: str | None = None
    """Algorithm (`rlcore train <algo>`); default: the base preset's `algo:` key."""
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Overrides applied to every run."""
    grid: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    """Cells as the cartesian product of these override lists."""
    cells: list[Cell] = dataclasses.field(default_factory=list)
    """Explicit named cells (added to the grid's)."""
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    """Seeds run for every cell."""
    metric: str = "eval/normalized_score"
    """Metric `rlcore report` tabulates (last and best per seed); several, comma-separated, give one table each."""
    vectorize_seeds: bool = False
    """Run all seeds of a cell in ONE run with `seeds=[...]` (for algorithms that train seeds vectorised)."""
    backend: Backend = "sequential"
    """sequential (in this process), process (a pool of `workers` subprocesses) or ray."""
    workers: int = 2
    """Parallel runs for the process and ray backends."""
    threads_per_worker: int = 1
    """torch threads of each run (config key `threads`)."""

    def __post_init__(self) -> None:
        check_range("workers", self.workers, low=1)
        check_range("threads_per_worker", self.threads_per_worker, low=1)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sweep seeds must be a non-empty list of distinct integers, got {self.seeds}")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"sweep grid '{key}' is empty; give at least one value or remove the key")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ConfigError(f"sweep cell names must be unique, got {names}")


@dataclasses.dataclass
class RunSpec:
    cell: str
    seeds: list[int]
    run_dir: Path
    argv: list[str]


def _value_text(value: Any) -> str:
    """An override value as command-line text that the config parser reads back with its type."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _cell_name(overrides: dict[str, Any]) -> str:
    text = ",".join(f"{k}={_value_text(v)}" for k, v in overrides.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def _preset(spec_path: Path, name: str) -> tuple[Path, str | None]:
    """A preset named in a spec (relative to the spec, then to the working directory) and its `algo:`."""
    for candidate in (spec_path.parent / name, Path(name)):
        if candidate.is_file():
            return candidate, read_yaml(candidate).get(ALGO_KEY)
    raise ConfigError(f"sweep preset '{name}' not found (looked next to '{spec_path}' and in the working directory)")


def load_spec(path: str | Path) -> tuple[SweepSpec, Path, str]:
    """Read and check a spec; returns (spec, resolved base preset path, algorithm name).

    Cells with their own ``base`` get it resolved in place (``cell.base`` becomes the found path).
    """
    path = Path(path)
    data = read_yaml(path)
    if not data:
        raise ConfigError(f"sweep spec '{path}' is empty; it needs at least `base:` (see `rlcore ablate --help`)")
    if "base" not in data:
        raise ConfigError(f"sweep spec '{path}' has no `base:` preset; add e.g. `base: configs/toy/demo.yaml`")
    spec = from_dict(SweepSpec, data)
    base, base_algo = _preset(path, spec.base)
    algo = spec.algo or base_algo
    if not algo:
        raise ConfigError(f"sweep spec '{path}' names no algorithm: add `algo:` to it or to '{base}'")
    for cell in spec.cells:
        if cell.base is not None:
            cell_base, cell_algo = _preset(path, cell.base)
            if not cell_algo:
                raise ConfigError(f"cell '{cell.name}': preset '{cell_base}' has no `algo:` key")
            cell.base = str(cell_base)
    return spec, base, str(algo)


def plan(spec: SweepSpec, base: Path, algo: str, out: Path) -> list[RunSpec]:
    """Every run of the sweep, in a stable order (cell by cell, seed by seed)."""
    cells: list[tuple[str, dict[str, Any], Path, str]] = []  # name, overrides, preset, algorithm
    keys = list(spec.grid)
    if keys:
        for combo in itertools.product(*(spec.grid[k] for k in keys)):
            overrides = dict(zip(keys, combo))
            cells.append((_cell_name(overrides), overrides, base, algo))
    for c in spec.cells:
        preset = Path(c.base) if c.base else base
        cells.append((c.name, dict(c.set), preset, str(read_yaml(preset).get(ALGO_KEY) or algo) if c.base else algo))
    if not cells:
        cells = [("base", {}, base, algo)]
    seed_groups = [list(spec.seeds)] if spec.vectorize_seeds else [[s] for s in spec.seeds]
    runs = []
    for name, overrides, preset, cell_algo in cells:
        for seeds in seed_groups:
            folder = ("seeds_" + "-".join(map(str, seeds))) if spec.vectorize_seeds else f"seed_{seeds[0]}"
            run_dir = out / name / folder
            settings = {**spec.set, **overrides, "threads": spec.threads_per_worker}
            settings.update({"seeds": seeds} if spec.vectorize_seeds else {"seed": seeds[0]})
            argv = ["train", cell_algo, "--config", str(preset), "--run-dir", str(run_dir),
                    "--set", "progress=false"]
            for key, value in settings.items():
                argv += ["--set", f"{key}={_value_text(value)}"]
            runs.append(RunSpec(name, seeds, run_dir, argv))
    return runs


def is_finished(run: RunSpec) -> bool:
    return run_finished(run.run_dir)  # a run stopped by a signal has a summary too, and is resumed


def _argv_for_attempt(run: RunSpec) -> list[str]:
    has_checkpoint = CheckpointManager(run.run_dir / CHECKPOINT_DIR).latest_step() is not None
    return run.argv + (["--resume"] if has_checkpoint else [])


def run_in_process(run: RunSpec) -> tuple[bool, str]:
    """Run one training in this process through the CLI entry point; (ok, error line)."""
    import contextlib
    import io

    from rlcore.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(_argv_for_attempt(run))
        except Exception as e:  # a bug in a run must not end the sweep
            return False, f"{type(e).__name__}: {e}"
    if code in (exit_code(signal.SIGINT), exit_code(signal.SIGTERM)):  # the training caught the sweep's stop signal
        raise KeyboardInterrupt
    return code == 0, _last_line(err.getvalue()) if code else ""


_CHILDREN: set[subprocess.Popen] = set()
"""Training processes started by :func:`run_subprocess` and still running (stopped when the sweep stops)."""
_STOPPING = threading.Event()
"""Set while a sweep stops: no new training starts and no killed one is retried."""


def run_subprocess(run: RunSpec, threads: int) -> tuple[bool, str]:
    """Run one training as ``python -m rlcore ...``; a run killed by a signal is retried once from its checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    for attempt in range(2):
        if _STOPPING.is_set():
            return False, "the sweep was stopped"
        with subprocess.Popen([sys.executable, "-m", "rlcore", *_argv_for_attempt(run)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) as proc:
            _CHILDREN.add(proc)
            if _STOPPING.is_set():  # started while stop_children ran
                proc.terminate()
            try:
                stderr = _stderr_when_done(proc)
            except BaseException:  # e.g. the KeyboardInterrupt of a cancelled Ray task: end the training too
                _end([proc])
                raise
            finally:
                _CHILDREN.discard(proc)
        if proc.returncode == 0:
            return True, ""
        if proc.returncode >= 0 or attempt == 1:
            how = f"exit code {proc.returncode}" if proc.returncode >= 0 else f"killed by signal {-proc.returncode}"
            return False, f"{how}: {_last_line(stderr)}"
    return False, "unreachable"


def _stderr_when_done(proc: subprocess.Popen) -> str:
    """Wait for ``proc`` and return its stderr, waking once a second: an interrupt raised in this thread from
    outside (Ray's cancel of a running task) only lands while Python code runs, never inside a blocking wait."""
    while True:
        try:
            return proc.communicate(timeout=1.0)[1]
        except subprocess.TimeoutExpired:
            continue


def stop_children(grace_s: float = 10.0) -> None:
    """SIGTERM every training this process started, SIGKILL those still alive after ``grace_s``: a stopped sweep
    leaves no run writing behind it (they resume from their checkpoints next time)."""
    _STOPPING.set()
    _end(list(_CHILDREN), grace_s)


def _end(processes: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    """SIGTERM ``processes``, then SIGKILL those still alive after ``grace_s``."""
    for proc in processes:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in processes:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class _RayRunner:
    """Submits runs as Ray tasks (``run_subprocess`` on a worker); ``cancel`` ends the unfinished ones."""

    def __init__(self, threads: int):
        try:
            import ray
        except ImportError as e:
            raise UserError("backend ray needs the ray package: pip install 'ray[default]', or use "
                            "--backend process") from e
        if not ray.is_initialized():
            on_sigterm = signal.getsignal(signal.SIGTERM)
            # RAY_ADDRESS points at a cluster; without it a local instance is started
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
            if threading.current_thread() is threading.main_thread():
                # ray.init replaces the SIGTERM handler (at the C level too, where it aborts the driver); put ours
                # back, so that a stopped sweep cancels its tasks and their trainings like the process backend
                signal.signal(signal.SIGTERM, on_sigterm)
        self._ray, self._threads = ray, threads
        self._remote = ray.remote(num_cpus=threads)(run_subprocess)
        self._refs: list[Any] = []

    def __call__(self, run: RunSpec) -> Future:
        ref = self._remote.remote(run, self._threads)
        self._refs.append(ref)
        return ref.future()

    def cancel(self, grace_s: float = 15.0) -> None:
        """Cancel every unfinished task (a running one gets KeyboardInterrupt and ends its training), then wait up
        to ``grace_s`` for them, so that no training outlives the sweep."""
        if not self._refs:
            return
        _, unfinished = self._ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        for ref in unfinished:
            self._ray.cancel(ref)
        if unfinished:
            self._ray.wait(unfinished, num_returns=len(unfinished), timeout=grace_s)


def execute(runs: list[RunSpec], spec: SweepSpec, out: Path, backend: Backend,
            progress: bool = True) -> dict[str, dict[str, Any]]:
    """Run every unfinished run; returns ``{run_dir: {"status": done|failed|skipped, "error": ...}}``."""
    status: dict[str, dict[str, Any]] = {}
    _STOPPING.clear()
    todo = []
    for run in runs:
        if is_finished(run):
            status[str(run.run_dir)] = {"cell": run.cell, "seeds": run.seeds, "status": "skipped"}
        else:
            todo.append(run)
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="sweep", unit="run", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    counts = {"done": 0, "running": 0, "failed": 0}

    def record(run: RunSpec, ok: bool, error: str, seconds: float) -> None:
        counts["done" if ok else "failed"] += 1
        entry = {"cell": run.cell, "seeds": run.seeds, "status": "done" if ok else "failed",
                 "seconds": round(seconds, 2)}
        if not ok:
            entry["error"] = error
            bar.write(f"failed: {run.run_dir}: {error}", file=sys.stderr)
        status[str(run.run_dir)] = entry
        bar.update()
        bar.set_postfix(counts, refresh=False)
        write_status(out, spec, status)

    write_status(out, spec, status)
    ray_runner = None
    try:
        if backend == "sequential":
            for run in todo:
                counts["running"] = 1
                t0 = time.perf_counter()
                ok, error = run_in_process(run)
                counts["running"] = 0
                record(run, ok, error, time.perf_counter() - t0)
        else:
            submit: Callable[[RunSpec], Future]
            pool = None
            if backend == "ray":
                submit = ray_runner = _RayRunner(spec.threads_per_worker)
            else:
                pool = ThreadPoolExecutor(max_workers=spec.workers)
                submit = lambda run: pool.submit(run_subprocess, run, spec.threads_per_worker)  # noqa: E731
            pending: dict[Future, tuple[RunSpec, float]] = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < spec.workers:
                    run = queue.pop(0)
                    pending[submit(run)] = (run, time.perf_counter())
                counts["running"] = len(pending)
                bar.set_postfix(counts)
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    run, t0 = pending.pop(fut)
                    try:
                        ok, error = fut.result()
                    except Exception as e:  # e.g. a ray worker lost
                        ok, error = False, f"{type(e).__name__}: {e}"
                    record(run, ok, error, time.perf_counter() - t0)
            if pool is not None:
                pool.shutdown()
    finally:
        if ray_runner is not None:
            ray_runner.cancel()
        stop_children()
        bar.close()
    return status


def write_status(out: Path, spec: SweepSpec, status: dict[str, dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SWEEP_FILE, json.dumps({"spec": dataclasses.asdict(spec), "runs": status}, indent=1))


# ----------------------------------------------------------------------------------------------------------------
# CLI


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="sweep spec YAML (see configs/ablations/)")
    parser.add_argument("--out", help="output folder (default runs/ablate-<spec name>)")
    parser.add_argument("--backend", choices=["sequential", "process", "ray"], help="override the spec's backend")
    parser.add_argument("--workers", type=int, help="override the spec's number of parallel runs")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    spec, base, algo = load_spec(args.spec)
    if args.backend:
        spec.backend = args.backend
    if args.workers is not None:
        check_range("workers", args.workers, low=1)
        spec.workers = args.workers
    out = Path(args.out) if args.out else Path("runs") / f"ablate-{Path(args.spec).stem}"
    runs = plan(spec, base, algo, out)
    if args.dry_run:
        for run in runs:
            print(f"{'done   ' if is_finished(run) else 'pending'} rlcore {' '.join(run.argv)}")
        return 0
    main_thread = threading.current_thread() is threading.main_thread()  # only there may handlers be set
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None  # e.g. a scheduler's stop
    try:
        status = execute(runs, spec, out, spec.backend)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    failed = [k for k, v in status.items() if v["status"] == "failed"]
    done = sum(v["status"] in ("done", "skipped") for v in status.values())
    print(f"sweep {out}: {done}/{len(runs)} runs finished, {len(failed)} failed")
    if not args.no_report and done:
        from rlcore.report import write_report

        report = write_report(out, metric=spec.metric)
        print(f"report: {report}")
    return 1 if failed else 0


COMMAND = Command(help="run a sweep of configs x seeds from a spec YAML (resumable)", configure=_configure, run=_run)
