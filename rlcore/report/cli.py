"""``rlcore report <dir>``: print the results table of a folder of runs and write the report files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlcore.cli.commands import Command
from rlcore.report.write import write_report
from rlcore.sweep.spec import SWEEP_FILE


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="a sweep folder (rlcore ablate --out) or any folder of run directories")
    parser.add_argument("--metric", help="metric(s) to tabulate, comma-separated (default: the sweep spec's, else "
                        "the first the runs logged of eval/normalized_score, eval/return_mean, eval/pass@1)")
    parser.add_argument("--completions", metavar="STEP", help="instead of tables: the most and least novel "
                        "correct responses of STEP (a number or 'last') from the run's completions.jsonl")
    parser.add_argument("--top", type=int, default=3, help="with --completions: responses shown per list")


def _run(args: argparse.Namespace) -> int:
    if args.completions is not None:
        from rlcore.completions import format_novel

        print(format_novel(args.dir, args.completions, args.top))
        return 0
    metric = args.metric
    sweep = Path(args.dir) / SWEEP_FILE
    if metric is None and sweep.is_file():
        metric = json.loads(sweep.read_text())["spec"].get("metric")
    path = write_report(args.dir, metric)
    print(path.read_text(encoding="utf-8").split("\n![")[0].rstrip())
    print(f"\nwritten: {path} (+ report.csv, PNG plots)")
    return 0


COMMAND = Command(help="tables (markdown, CSV) and plots (PNG) from a folder of runs", configure=_configure, run=_run)
