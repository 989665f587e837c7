"""``rlcore report <dir>``: print the results table of a folder of runs and write the report files."""

from __future__ import annotations

import argparse

from rlcore.cli.commands import Command
from rlcore.errors import UserError
from rlcore.report.write import write_report


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="a sweep folder (rlcore ablate --out) or any folder of run directories")
    parser.add_argument("--metric", help="metric(s) to tabulate, comma-separated (default: the sweep spec's, else "
                        "the first the runs logged of eval/normalized_score, eval/return_mean, eval/pass@1)")
    parser.add_argument("--curves", metavar="KEY,...", help="panels of training_curves.png, comma-separated "
                        "(default: every train/* signal the runs logged and the mean novelty geom/mean_nu)")
    parser.add_argument("--smooth", type=int, metavar="N", help="moving-average window of training_curves.png in "
                        "logged points (default: about a tenth of the points; 1: none)")
    parser.add_argument("--baseline", metavar="ALGO", help="add 'relative to ALGO (last)': each score minus that "
                        "of the cell running ALGO (config 'algo') on the same data (default: the sweep spec's)")
    parser.add_argument("--completions", metavar="STEP", help="instead of tables: the responses of STEP (a number or "
                        "'last') from the run's completions.jsonl, grouped per prompt with counts and scores")
    parser.add_argument("--top", type=int, default=5, help="with --completions: distinct responses shown per prompt")


def _run(args: argparse.Namespace) -> int:
    if args.completions is not None:
        from rlcore.report.completions import format_completions

        print(format_completions(args.dir, args.completions, args.top))
        return 0
    if args.smooth is not None and args.smooth < 1:
        raise UserError(f"--smooth must be at least 1 (1: no smoothing), got {args.smooth}")
    curves = [k.strip() for k in args.curves.split(",") if k.strip()] if args.curves else None
    path = write_report(args.dir, args.metric, baseline=args.baseline, curves=curves, smooth=args.smooth)
    print(path.read_text(encoding="utf-8").split("\n![")[0].rstrip())
    print(f"\nwritten: {path} (+ report.csv, PNG plots)")
    return 0


COMMAND = Command(help="tables (markdown, CSV) and plots (PNG) from a folder of runs", configure=_configure, run=_run)
