"""``report.md``, ``report.csv`` and the figures for a folder of runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rlcore.errors import UserError
from rlcore.io import atomic_write_text
from rlcore.report.collect import CellResult, collect, no_metric_error, pick_metric
from rlcore.report.plots import plot_curves, plot_final, plot_geometry
from rlcore.report.tables import BC_ALGO, is_score, table_rows

_LEGEND = ("\"last\" is the value at the final evaluation, \"best\" (scores only) the maximum over evaluations; "
           "mean ± standard error over seeds. \"step\" is the step of the last value; a cell marked unfinished is "
           "still running or was stopped before its max_steps, and its \"last\" is the latest value so far.")
_BC_LEGEND = ("\"relative to BC (last)\" is the cell's last mean minus the last mean of the BC cell trained on the "
              "same data (task, dataset, env), in the metric's units (normalised points for normalized_score); "
              "positive means better than BC; its error is sqrt(se² + se_BC²).")


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _cells_with(root: Path, metric: str) -> list[CellResult]:
    """Cells of ``root`` (those with a series of ``metric``, or geometry diagnostics); an error when the table
    of ``metric`` would be empty."""
    cells = collect(root, metric)
    if not any(c.series for c in cells):
        raise no_metric_error(root, metric)
    return cells


def write_report(root: str | Path, metric: str | None = None) -> Path:
    """Write report.md, report.csv and the PNGs into ``root``; returns the path of report.md.

    ``metric`` may list several metrics separated by commas (e.g. ``eval/pass@1,eval/pass@8,geom/mean_cos``):
    each gets its own table (and rows in the CSV, with a ``metric`` column); the plots show the first. None picks
    the first of eval/normalized_score, eval/return_mean, eval/pass@1 that the runs logged. A metric no run
    logged is a UserError (one line, with the metrics that were logged).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"'{root}' is not a folder; point rlcore report at a run or sweep directory")
    names = [m.strip() for m in (metric or "").split(",") if m.strip()] or [pick_metric(root)]
    tables = {name: _cells_with(root, name) for name in names}
    first, cells = names[0], tables[names[0]]
    plot_curves(cells, first, root / "learning_curves.png")
    plot_final(cells, first, root / "final_scores.png")
    has_geometry = plot_geometry(cells, root / "geometry.png")

    lines = [f"# Report: {root.name}", "", f"Metric `{first}`: {_LEGEND}", ""]
    raw: list[dict[str, Any]] = []
    for name, found in tables.items():
        header, rows, more_raw = table_rows(found, name)
        if name != first:
            lines += ["", f"Metric `{name}`:", ""]
        lines += _markdown_table(header, rows)
        raw += [{"metric": name, **r} for r in more_raw]
    if any(is_score(name) for name in names) and any(c.algos == {BC_ALGO} for c in cells):
        lines += ["", _BC_LEGEND]
    lines += ["", "![learning curves](learning_curves.png)", "", "![last and best](final_scores.png)"]
    if has_geometry:
        lines += ["", "![gradient geometry diagnostics](geometry.png)"]
    atomic_write_text(root / "report.md", "\n".join(lines) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in raw for k in r)) or ["cell"])
    writer.writeheader()
    writer.writerows(raw)
    atomic_write_text(root / "report.csv", buf.getvalue())
    return root / "report.md"
