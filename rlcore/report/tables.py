"""The results table of one metric: a list of columns, each turning a cell's statistics into text and CSV fields.

"best" has one meaning here, as in a run's closing line and its ``summary.json`` (``best_mean``): the best MEAN
over seeds at one evaluation step, reported with that step. The mean of each seed's own maximum is a different,
optimistic number; the CSV keeps it as ``mean_of_per_seed_best``, named as such.

A new column is one :class:`Column` added in :func:`columns` (with the condition under which it appears).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlcore.plugins import Registry
from rlcore.report.collect import UNKNOWN_SOURCE, CellResult, Series

REFERENCE_METRIC = "eval/normalized_score"
"""The metric the ``rlcore.reference_scores`` plugins' published numbers are in (D4RL normalised scores)."""
D4RL_SOURCE = "d4rl"
"""The data.json source of runs on D4RL's own files: the only runs shown beside published D4RL numbers."""
SOURCE_LABELS = {D4RL_SOURCE: "D4RL", "minari": "Minari (not D4RL)", "generated": "generated (not D4RL)",
                 "user": "user data (not D4RL)", UNKNOWN_SOURCE: "unknown"}
"""The data column's text per data.json source."""
BEST_HEADER = "best mean ± se (step)"


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n)); the error is nan for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def mean_curve(series: list[Series], common: bool = False) -> tuple[list[int], list[float], list[float]]:
    """(steps, mean over seeds, standard error: 0 for one seed) at every logged step; ``common``: only at the
    steps every seed logged (when there are any)."""
    by_step: dict[int, list[float]] = {}
    for s in series:
        for step, v in s.points:
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    if common and any(len(by_step[t]) == len(series) for t in steps):
        steps = [t for t in steps if len(by_step[t]) == len(series)]
    stats = [mean_stderr(by_step[t]) for t in steps]
    return steps, [m for m, _ in stats], [0.0 if math.isnan(e) else e for _, e in stats]


def best_mean(series: list[Series]) -> tuple[float, float, int]:
    """(mean, standard error, step) at the evaluation step whose mean over seeds is highest (among the steps every
    seed logged); the earliest such step on a tie. One seed: its best value and step."""
    steps, means, _ = mean_curve(series, common=True)
    i = max(range(len(steps)), key=lambda j: (means[j], -steps[j]))
    mean, err = mean_stderr([v for s in series for t, v in s.points if t == steps[i]])
    return mean, err, steps[i]


@dataclass
class Row:
    """One cell's statistics over seeds: "last" (final evaluation) and "best" (best mean, at its step)."""

    cell: CellResult
    last: tuple[float, float]
    """(mean, standard error) over seeds of the last value."""
    best: tuple[float, float]
    """(mean, standard error) over seeds at :attr:`best_step`, the step of the best mean."""
    best_step: int
    last_step: int
    """The step of the last value (the earliest over seeds)."""
    per_seed_best: tuple[float, float]
    """(mean, standard error) of each seed's own maximum, whatever its step (not the report's "best")."""

    @classmethod
    def of(cls, cell: CellResult) -> Row:
        mean, err, step = best_mean(cell.series)
        return cls(cell, mean_stderr([s.last for s in cell.series]), (mean, err), step,
                   min(s.points[-1][0] for s in cell.series), mean_stderr([s.best for s in cell.series]))


@dataclass(frozen=True)
class Column:
    """A column: its markdown header, its text for a row, and the CSV fields it adds for a row."""

    header: str
    text: Callable[[Row], str]
    fields: Callable[[Row], dict[str, Any]]


def fmt(mean: float, err: float, sign: str = "") -> str:
    """``mean ± err`` with two decimals (the mean alone when the error is nan); ``sign="+"`` shows the sign."""
    return f"{mean:{sign}.2f}" if math.isnan(err) else f"{mean:{sign}.2f} ± {err:.2f}"


def _step_text(row: Row) -> str:
    c = row.cell
    return str(row.last_step) if c.finished else \
        f"{row.last_step} (unfinished: {max(c.logged_steps)} of {c.max_steps})"


BASE_COLUMNS = (
    Column("cell", lambda r: r.cell.name, lambda r: {"cell": r.cell.name}),
    Column("seeds", lambda r: str(len(r.cell.series)), lambda r: {"seeds": len(r.cell.series)}),
    Column("step", _step_text, lambda r: {"last_step": r.last_step, "finished": r.cell.finished}),
    Column("last (mean ± se)", lambda r: fmt(*r.last), lambda r: {"last_mean": r.last[0], "last_stderr": r.last[1]}),
)
BEST_COLUMN = Column(BEST_HEADER, lambda r: f"{fmt(*r.best)} (step {r.best_step})",
                     lambda r: {"best_mean": r.best[0], "best_stderr": r.best[1], "best_step": r.best_step,
                                "mean_of_per_seed_best": r.per_seed_best[0],
                                "mean_of_per_seed_best_stderr": r.per_seed_best[1]})


def source_label(cell: CellResult) -> str:
    """What the cell's data is, for the data column (several sources joined with ``+``)."""
    return " + ".join(SOURCE_LABELS.get(s, s) for s in sorted(cell.sources)) or SOURCE_LABELS[UNKNOWN_SOURCE]


def on_d4rl(cell: CellResult) -> bool:
    """Whether every run of the cell recorded D4RL's own files as its data (data.json ``"source": "d4rl"``)."""
    return cell.sources == {D4RL_SOURCE}


DATA_COLUMN = Column("data", lambda r: source_label(r.cell), lambda r: {"data": source_label(r.cell)})


REFERENCE_SCORES: Registry[Callable[[str], dict[str, float]]] = Registry("rlcore.reference_scores",
                                                                         "reference-score source")
"""Published numbers by source: ``scores(task) -> {label: value}`` (e.g. the paper's and CORL's D4RL tables)."""


def reference_scores(tasks: set[str]) -> dict[str, float]:
    """Published numbers for the cell's task from the ``rlcore.reference_scores`` plugins (label -> value)."""
    if len(tasks) != 1:
        return {}
    (task,) = tasks
    out: dict[str, float] = {}
    for _, scores in REFERENCE_SCORES.items():
        out.update(scores(task))
    return out


def _reference_columns(rows: list[Row]) -> list[Column]:
    """Published D4RL numbers, beside cells on D4RL's own files only (blank beside any other data)."""
    refs = {r.cell.name: reference_scores(r.cell.tasks) if on_d4rl(r.cell) else {} for r in rows}
    labels = sorted({label for found in refs.values() for label in found})
    return [Column(label, lambda r, k=label: f"{refs[r.cell.name][k]:.1f}" if k in refs[r.cell.name] else "",
                   lambda r, k=label: {k: refs[r.cell.name].get(k, "")}) for label in labels]


def relative_to(row: Row, rows: list[Row], baseline: str) -> tuple[float, float] | None:
    """This cell's last mean minus the last mean of the ``baseline`` algorithm's cell on the same data (task,
    dataset, env), in the metric's units, with the standard error of the difference (independent seeds:
    sqrt(se^2 + se_baseline^2)).

    None for a baseline cell itself, a cell on several datasets, or one with no baseline cell on its data (when
    several baseline cells share it, the first in the table is the reference).
    """
    if row.cell.algos == {baseline} or len(row.cell.data) != 1:
        return None
    ref = next((r for r in rows if r.cell.algos == {baseline} and r.cell.data == row.cell.data), None)
    if ref is None:
        return None
    return row.last[0] - ref.last[0], math.sqrt(row.last[1] ** 2 + ref.last[1] ** 2)


def has_baseline(cells: list[CellResult], baseline: str | None) -> bool:
    """Whether a cell ran the ``baseline`` algorithm (its config's ``algo``)."""
    return baseline is not None and any(c.algos == {baseline} for c in cells)


def _baseline_columns(rows: list[Row], baseline: str | None) -> list[Column]:
    if baseline is None or not has_baseline([r.cell for r in rows], baseline):
        return []
    deltas = {r.cell.name: relative_to(r, rows, baseline) for r in rows}

    def text(r: Row) -> str:
        d = deltas[r.cell.name]
        return "" if d is None else fmt(*d, sign="+")

    def fields(r: Row) -> dict[str, Any]:
        d = deltas[r.cell.name]
        return {"relative_to_baseline": "" if d is None else d[0],
                "relative_to_baseline_stderr": "" if d is None else d[1]}

    return [Column(f"relative to {baseline} (last)", text, fields)]


def is_score(metric: str) -> bool:
    """Scores (eval/*) get "best" and "relative to" columns; training and geometry diagnostics do not."""
    return metric.startswith("eval/")


def columns(rows: list[Row], metric: str, baseline: str | None = None) -> list[Column]:
    """The table's columns for ``metric``: the base ones, then those that apply to these rows."""
    score = is_score(metric)
    known_data = any(r.cell.sources - {UNKNOWN_SOURCE} for r in rows)
    return [*BASE_COLUMNS, *([BEST_COLUMN] if score else []), *([DATA_COLUMN] if score and known_data else []),
            *(_reference_columns(rows) if metric == REFERENCE_METRIC else []),
            *(_baseline_columns(rows, baseline) if score else [])]


def table_rows(cells: list[CellResult], metric: str, baseline: str | None = None
               ) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Header, formatted markdown rows and raw CSV rows of the results table of ``metric`` (cells without a
    series of it are left out); ``baseline`` names the algorithm of the "relative to" column."""
    rows = [Row.of(c) for c in cells if c.series]
    cols = columns(rows, metric, baseline)
    raw = [{k: v for col in cols for k, v in col.fields(r).items()} for r in rows]
    return [col.header for col in cols], [[col.text(r) for col in cols] for r in rows], raw
