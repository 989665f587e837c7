"""The results table of one metric: a list of columns, each turning a cell's statistics into text and CSV fields.

A new column is one :class:`Column` added in :func:`columns` (with the condition under which it appears).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlcore.cli.registry import load, targets
from rlcore.report.collect import CellResult

BC_ALGO = "bc"
REFERENCE_METRIC = "eval/normalized_score"
"""The metric the ``rlcore.reference_scores`` plugins' published numbers are in (D4RL normalised scores)."""


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n)); the error is nan for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


@dataclass
class Row:
    """One cell's statistics over seeds: "last" (final evaluation) and "best" (maximum over evaluations)."""

    cell: CellResult
    last: tuple[float, float]
    """(mean, standard error) over seeds of the last value."""
    best: tuple[float, float]
    """(mean, standard error) over seeds of the best value."""
    last_step: int
    """The step of the last value (the earliest over seeds)."""

    @classmethod
    def of(cls, cell: CellResult) -> Row:
        return cls(cell, mean_stderr([s.last for s in cell.series]), mean_stderr([s.best for s in cell.series]),
                   min(s.points[-1][0] for s in cell.series))


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
BEST_COLUMN = Column("best (mean ± se)", lambda r: fmt(*r.best),
                     lambda r: {"best_mean": r.best[0], "best_stderr": r.best[1]})


def reference_scores(tasks: set[str]) -> dict[str, float]:
    """Published numbers for the cell's task from the ``rlcore.reference_scores`` plugins (label -> value)."""
    if len(tasks) != 1:
        return {}
    (task,) = tasks
    out: dict[str, float] = {}
    for target in targets("reference_scores").values():
        out.update(load(target)(task))
    return out


def _reference_columns(rows: list[Row]) -> list[Column]:
    refs = {r.cell.name: reference_scores(r.cell.tasks) for r in rows}
    labels = sorted({label for found in refs.values() for label in found})
    return [Column(label, lambda r, k=label: f"{refs[r.cell.name][k]:.1f}" if k in refs[r.cell.name] else "",
                   lambda r, k=label: {k: refs[r.cell.name].get(k, "")}) for label in labels]


def relative_to_bc(row: Row, rows: list[Row]) -> tuple[float, float] | None:
    """This cell's last mean minus the last mean of the BC cell on the same data (task, dataset, env), in the
    metric's units, with the standard error of the difference (independent seeds: sqrt(se^2 + se_bc^2)).

    None for a BC cell itself, a cell on several datasets, or one with no BC cell on its data (when several BC
    cells share it, the first in the table is the reference).
    """
    if row.cell.algos == {BC_ALGO} or len(row.cell.data) != 1:
        return None
    bc = next((r for r in rows if r.cell.algos == {BC_ALGO} and r.cell.data == row.cell.data), None)
    if bc is None:
        return None
    return row.last[0] - bc.last[0], math.sqrt(row.last[1] ** 2 + bc.last[1] ** 2)


def _bc_columns(rows: list[Row]) -> list[Column]:
    if not any(r.cell.algos == {BC_ALGO} for r in rows):
        return []
    deltas = {r.cell.name: relative_to_bc(r, rows) for r in rows}

    def text(r: Row) -> str:
        d = deltas[r.cell.name]
        return "" if d is None else fmt(*d, sign="+")

    def fields(r: Row) -> dict[str, Any]:
        d = deltas[r.cell.name]
        return {"relative_to_bc": "" if d is None else d[0], "relative_to_bc_stderr": "" if d is None else d[1]}

    return [Column("relative to BC (last)", text, fields)]


def is_score(metric: str) -> bool:
    """Scores (eval/*) get "best" and "relative to BC" columns; training and geometry diagnostics do not."""
    return metric.startswith("eval/")


def columns(rows: list[Row], metric: str) -> list[Column]:
    """The table's columns for ``metric``: the base ones, then those that apply to these rows."""
    score = is_score(metric)
    return [*BASE_COLUMNS, *([BEST_COLUMN] if score else []),
            *(_reference_columns(rows) if metric == REFERENCE_METRIC else []),
            *(_bc_columns(rows) if score else [])]


def table_rows(cells: list[CellResult], metric: str) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Header, formatted markdown rows and raw CSV rows of the results table of ``metric`` (cells without a
    series of it are left out)."""
    rows = [Row.of(c) for c in cells if c.series]
    cols = columns(rows, metric)
    raw = [{k: v for col in cols for k, v in col.fields(r).items()} for r in rows]
    return [col.header for col in cols], [[col.text(r) for col in cols] for r in rows], raw
