"""``rlcore ablate <spec.yaml> --out <dir>``: run a sweep from a spec (see :mod:`rlcore.sweep`)."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rlcore.cli.commands import Command
from rlcore.config import check_range
from rlcore.errors import UserError
from rlcore.stop import exit_code
from rlcore.sweep.execute import execute
from rlcore.sweep.plan import RunSpec, argv_for_attempt, is_finished, plan
from rlcore.sweep.spec import load_spec


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="sweep spec YAML (see configs/ablations/)")
    parser.add_argument("--out", help="output folder (default runs/ablate-<spec name>)")
    parser.add_argument("--backend", choices=["sequential", "process", "ray"], help="override the spec's backend")
    parser.add_argument("--address", help="Ray cluster address for --backend ray (default: RAY_ADDRESS)")
    parser.add_argument("--workers", type=int, help="override the spec's number of parallel runs")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the command of every run still to do (each runs when pasted) and exit")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")


class _StopRequest:
    """SIGINT and SIGTERM both stop the sweep the same way, however it was started: a script's background job
    inherits SIGINT ignored, so the handler is installed explicitly for both."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():  # only there may handlers be set
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        raise KeyboardInterrupt


def continue_command(args: argparse.Namespace, out: Path) -> str:
    """The command that continues this sweep (finished runs are skipped, stopped ones resume)."""
    argv = ["rlcore", "ablate", args.spec, "--out", str(out)]
    if args.backend:
        argv += ["--backend", args.backend]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.no_report:
        argv.append("--no-report")
    return shlex.join(argv)


def _dry_run(runs: list[RunSpec]) -> None:
    """Commands of the runs still to do on stdout (``--resume`` where a checkpoint exists); finished ones on
    stderr, since their command would refuse to overwrite them."""
    done = [run for run in runs if is_finished(run)]
    for run in runs:
        if run not in done:
            print("rlcore " + shlex.join(argv_for_attempt(run)))
    for run in done:
        print(f"finished (skipped): {run.run_dir}", file=sys.stderr)
    print(f"{len(runs)} runs: {len(runs) - len(done)} to run, {len(done)} finished", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    spec, base, algo = load_spec(args.spec)
    if args.backend:
        spec.backend = args.backend
    if args.address:
        if spec.backend != "ray":
            raise UserError(f"--address is for --backend ray (this sweep's backend is {spec.backend})")
        spec.address = args.address
    if args.workers is not None:
        check_range("workers", args.workers, low=1)
        spec.workers = args.workers
    out = Path(args.out) if args.out else Path("runs") / f"ablate-{Path(args.spec).stem}"
    runs = plan(spec, base, algo, out)
    if args.dry_run:
        _dry_run(runs)
        return 0
    with _StopRequest() as request:
        try:
            status = execute(runs, spec, out, spec.backend)
        except KeyboardInterrupt:
            signum = request.signum or signal.SIGINT
            print(f"sweep {out} stopped by {signal.Signals(signum).name}; its runs keep their checkpoints; "
                  f"continue with: {continue_command(args, out)}", file=sys.stderr)
            return exit_code(signum)
    failed = [k for k, v in status.items() if v["status"] == "failed"]
    done = sum(v["status"] in ("done", "skipped") for v in status.values())
    print(f"sweep {out}: {done}/{len(runs)} runs finished, {len(failed)} failed")
    if not args.no_report and done:
        from rlcore.report import write_report

        try:
            print(f"report: {write_report(out, metric=spec.metric)}")
        except UserError as e:  # the runs are kept: say why there is no report and how to make one
            print(f"error: no report: {e} (rlcore report {shlex.quote(str(out))} --metric ...)", file=sys.stderr)
            return 2
    return 1 if failed else 0


COMMAND = Command(help="run a sweep of configs x seeds from a spec YAML (resumable)", configure=_configure, run=_run)
