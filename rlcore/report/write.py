"""``report.md``, ``report.csv`` and the figures for a folder of runs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from rlcore.errors import UserError
from rlcore.io import atomic_write_text
from rlcore.report.collect import UNKNOWN_SOURCE, CellResult, collect, no_metric_error, pick_metric
from rlcore.report.plots import plot_curves, plot_final, plot_geometry, plot_training, training_panels
from rlcore.report.tables import BEST_HEADER, D4RL_SOURCE, REFERENCE_METRIC, has_baseline, is_score, table_rows
from rlcore.sweep.spec import SWEEP_FILE

_LEGEND = (f"\"last\" is the value at the final evaluation; \"{BEST_HEADER}\" (scores only) is the best mean: the "
           "highest mean over seeds at one evaluation step, with that step (the same \"best\" as a run's closing "
           "line and the best_mean of its summary.json; the mean of each seed's own maximum is in report.csv as "
           "mean_of_per_seed_best). Mean ± standard error over seeds. \"step\" is the step of the last value; a "
           "cell marked unfinished is still running or was stopped before its max_steps, and its \"last\" is the "
           "latest value so far.")
_DATA_LEGEND = ("\"data\" is where a cell's data came from (the runs' data.json). Published D4RL numbers appear only "
                "beside cells on D4RL's own files; generated data, Minari's datasets (regenerated on newer "
                "simulators with other agents) and user data are scored on D4RL's scale but are not comparable with "
                "the published tables. \"unknown\": runs that recorded no data.json (older runs).")


def _baseline_legend(baseline: str) -> str:
    return (f"\"relative to {baseline} (last)\" is the cell's last mean minus the last mean of the {baseline} cell "
            "trained on the same data (task, dataset, env), in the metric's units (normalised points for "
            f"normalized_score); positive means better than {baseline}; its error is sqrt(se² + se_{baseline}²).")


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _cells_with(root: Path, metric: str) -> list[CellResult]:
    """Cells of ``root`` (those with a series of ``metric``, or geometry diagnostics); an error when the table
    of ``metric`` would be empty."""
    cells = collect(root, metric)
    if not any(c.series for c in cells):
        raise no_metric_error(root, metric)
    return cells


def sweep_spec(root: Path) -> dict[str, Any]:
    """The spec recorded in ``root/sweep.json`` by ``rlcore ablate`` ({} for a folder that is not a sweep)."""
    path = root / SWEEP_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("spec") or {} if path.is_file() else {}


def write_report(root: str | Path, metric: str | None = None, *, baseline: str | None = None,
                 curves: list[str] | None = None, smooth: int | None = None) -> Path:
    """Write report.md, report.csv and the PNGs into ``root``; returns the path of report.md.

    ``metric`` may list several metrics separated by commas (e.g. ``eval/pass@1,eval/pass@8,geom/mean_cos``):
    each gets its own table (and rows in the CSV, with a ``metric`` column); the plots show the first. None takes
    the sweep spec's ``metric``, else the first of eval/normalized_score, eval/return_mean, eval/pass@1 that the
    runs logged. A metric no run logged is a UserError (one line, with the metrics that were logged).
    ``baseline`` (default: the sweep spec's): an algorithm (config ``algo``) whose cells the scores are compared
    with. ``curves``: the panels of training_curves.png (default: every ``train/*`` signal and the mean novelty);
    ``smooth``: their moving-average window in logged points (default: about a tenth of the points).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"'{root}' is not a folder; point rlcore report at a run or sweep directory")
    spec = sweep_spec(root)
    metric = metric or spec.get("metric")
    baseline = baseline or spec.get("baseline")
    names = [m.strip() for m in (metric or "").split(",") if m.strip()] or [pick_metric(root)]
    tables = {name: _cells_with(root, name) for name in names}
    first, cells = names[0], tables[names[0]]
    panels = training_panels(cells, curves)
    plot_curves(cells, first, root / "learning_curves.png")
    plot_final(cells, first, root / "final_scores.png")
    has_training = plot_training(cells, panels, root / "training_curves.png", smooth)
    has_geometry = plot_geometry(cells, root / "geometry.png")

    lines = [f"# Report: {root.name}", "", f"Metric `{first}`: {_LEGEND}", ""]
    raw: list[dict[str, Any]] = []
    for name, found in tables.items():
        header, rows, more_raw = table_rows(found, name, baseline)
        if name != first:
            lines += ["", f"Metric `{name}`:", ""]
        lines += _markdown_table(header, rows)
        raw += [{"metric": name, **r} for r in more_raw]
    scores = any(is_score(name) for name in names)
    sources = {s for c in cells if c.series for s in c.sources}
    if scores and sources - {UNKNOWN_SOURCE}:
        lines += ["", _DATA_LEGEND]
        if REFERENCE_METRIC in names and sources != {D4RL_SOURCE}:
            lines += ["", "Not D4RL data: no published D4RL numbers beside "
                      + ", ".join(f"`{c.name}`" for c in cells if c.series and c.sources != {D4RL_SOURCE}) + "."]
    if scores and baseline is not None and has_baseline(cells, baseline):
        lines += ["", _baseline_legend(baseline)]
    lines += ["", "![learning curves](learning_curves.png)", "", "![last and best mean](final_scores.png)"]
    if has_training:
        lines += ["", f"Training signals ([training_curves.png](training_curves.png)): {', '.join(panels)}.", "",
                  "![training curves](training_curves.png)"]
    if has_geometry:
        lines += ["", "![gradient geometry diagnostics](geometry.png)"]
    atomic_write_text(root / "report.md", "\n".join(lines) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in raw for k in r)) or ["cell"])
    writer.writeheader()
    writer.writerows(raw)
    atomic_write_text(root / "report.csv", buf.getvalue())
    return root / "report.md"
