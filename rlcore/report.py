"""``rlcore report <dir>``: tables and plots from every run under a folder (a sweep, or any runs).

For each cell (a folder of ``seed_<s>`` runs, or a single run directory) and a metric such as
``eval/normalized_score`` it reports, over seeds, the mean and standard error of the "last" value (at the final
evaluation) and the "best" value (maximum over evaluations, for eval/* scores), following CORL's convention, and
marks cells whose runs have not reached their ``max_steps``. A run that trained K seeds vectorised logs
``<metric>/seed<s>`` per seed; those count as K seeds.

Writes ``report.md`` and ``report.csv``, plus ``learning_curves.png`` (mean with a shaded standard error),
``final_scores.png`` (last and best per cell) and, when runs logged ``geom/*`` diagnostics, ``geometry.png``.
When runs name a task with published numbers (entry-point group ``rlcore.reference_scores``), those appear as
extra columns.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.checkpoint import atomic_write_text
from rlcore.cli.commands import Command
from rlcore.cli.registry import load, targets
from rlcore.config import read_yaml
from rlcore.errors import UserError
from rlcore.logging import METRICS_FILE, read_metrics
from rlcore.run import CONFIG_FILE

_SEED_DIR = re.compile(r"^seeds?_[0-9-]+$")


@dataclass
class Series:
    """One seed's values of one metric: sorted (step, value) pairs."""

    seed: int
    points: list[tuple[int, float]]

    @property
    def last(self) -> float:
        return self.points[-1][1]

    @property
    def best(self) -> float:
        return max(v for _, v in self.points)


@dataclass
class CellResult:
    name: str
    series: list[Series] = field(default_factory=list)
    geometry: dict[str, list[Series]] = field(default_factory=dict)
    tasks: set[str] = field(default_factory=set)
    max_steps: int | None = None
    """The runs' planned number of steps (``max_steps`` in their config)."""
    logged_steps: list[int] = field(default_factory=list)
    """The last step each run logged anything at."""

    @property
    def finished(self) -> bool:
        """Whether every run reached ``max_steps`` (a run still going, or stopped, has not)."""
        return self.max_steps is None or all(step >= self.max_steps for step in self.logged_steps)


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample std / sqrt(n)); the error is nan for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def find_runs(root: Path) -> list[Path]:
    """Run directories (with config.yaml and metrics.jsonl) under ``root``, sorted."""
    return sorted(p.parent for p in root.rglob(CONFIG_FILE) if (p.parent / METRICS_FILE).is_file())


def _series(records: list[dict[str, Any]], key: str, seed: int) -> Series | None:
    points = sorted((int(r["step"]), float(r[key])) for r in records if key in r)
    return Series(seed, points) if points else None


def collect(root: Path, metric: str) -> list[CellResult]:
    """Group runs into cells and read each seed's series of ``metric`` (and of every ``geom/*`` key)."""
    cells: dict[str, CellResult] = {}
    for run in find_runs(root):
        group = run.parent if _SEED_DIR.match(run.name) and run != root else run
        name = str(group.relative_to(root)) if group != root else root.name
        cell = cells.setdefault(name, CellResult(name))
        config = read_yaml(run / CONFIG_FILE)
        if config.get("task"):
            cell.tasks.add(str(config["task"]))
        if config.get("max_steps") is not None:
            cell.max_steps = int(config["max_steps"])
        records = read_metrics(run)
        cell.logged_steps.append(max((int(r["step"]) for r in records if "step" in r), default=0))
        seeds = config.get("seeds") or [config.get("seed", 0)]
        vectorised = len(seeds) > 1
        for s in seeds:
            found = _series(records, f"{metric}/seed{s}" if vectorised else metric, int(s))
            if found is not None:
                cell.series.append(found)
        geom_keys = sorted({k for r in records for k in r if k.startswith("geom/")})
        for key in geom_keys:
            found = _series(records, key, int(seeds[0]))
            if found is not None:
                cell.geometry.setdefault(key, []).append(found)
    return [c for c in cells.values() if c.series or c.geometry]


def reference_scores(tasks: set[str]) -> dict[str, float]:
    """Published numbers for the cell's task from the ``rlcore.reference_scores`` plugins (label -> value)."""
    if len(tasks) != 1:
        return {}
    (task,) = tasks
    out: dict[str, float] = {}
    for target in targets("reference_scores").values():
        out.update(load(target)(task))
    return out


def _fmt(mean: float, err: float) -> str:
    return f"{mean:.2f}" if math.isnan(err) else f"{mean:.2f} ± {err:.2f}"


def _step_cell(c: CellResult, last_step: int) -> str:
    return str(last_step) if c.finished else f"{last_step} (unfinished: {max(c.logged_steps)} of {c.max_steps})"


def table_rows(cells: list[CellResult], with_best: bool = True
               ) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Header, formatted markdown rows and raw CSV rows of the results table (``with_best``: add the maximum
    over evaluations, which means something for scores, not for diagnostics)."""
    refs = {c.name: reference_scores(c.tasks) for c in cells}
    ref_labels = sorted({label for r in refs.values() for label in r})
    header = ["cell", "seeds", "step", "last (mean ± se)", *(["best (mean ± se)"] if with_best else []), *ref_labels]
    rows, raw = [], []
    for c in cells:
        if not c.series:
            continue
        last = mean_stderr([s.last for s in c.series])
        best = mean_stderr([s.best for s in c.series])
        last_step = min(s.points[-1][0] for s in c.series)
        ref_cells = [f"{refs[c.name][label]:.1f}" if label in refs[c.name] else "" for label in ref_labels]
        rows.append([c.name, str(len(c.series)), _step_cell(c, last_step), _fmt(*last),
                     *([_fmt(*best)] if with_best else []), *ref_cells])
        raw.append({"cell": c.name, "seeds": len(c.series), "last_step": last_step,
                    "finished": c.finished, "last_mean": last[0], "last_stderr": last[1],
                    **({"best_mean": best[0], "best_stderr": best[1]} if with_best else {}),
                    **{label: refs[c.name].get(label, "") for label in ref_labels}})
    return header, rows, raw


def _has_best(metric: str) -> bool:
    """Scores (eval/*) get a "best" column; training and geometry diagnostics do not."""
    return metric.startswith("eval/")


def _mean_curve(series: list[Series]) -> tuple[list[int], list[float], list[float]]:
    by_step: dict[int, list[float]] = {}
    for s in series:
        for step, v in s.points:
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    stats = [mean_stderr(by_step[t]) for t in steps]
    return steps, [m for m, _ in stats], [0.0 if math.isnan(e) else e for _, e in stats]


def plot_curves(cells: list[CellResult], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for c in cells:
        if not c.series:
            continue
        steps, mean, err = _mean_curve(c.series)
        ax.plot(steps, mean, label=f"{c.name} (n={len(c.series)})")
        ax.fill_between(steps, [m - e for m, e in zip(mean, err)], [m + e for m, e in zip(mean, err)], alpha=0.2)
    ax.set_xlabel("update step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± standard error over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_final(cells: list[CellResult], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in cells if c.series]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(cells) + 2), 4.5), dpi=110)
    x = range(len(cells))
    for offset, which in ((-0.2, "last"), (0.2, "best")):
        stats = [mean_stderr([getattr(s, which) for s in c.series]) for c in cells]
        ax.bar([i + offset for i in x], [m for m, _ in stats], width=0.4, label=which,
               yerr=[0 if math.isnan(e) else e for _, e in stats], capsize=3)
    ax.set_xticks(list(x))
    ax.set_xticklabels([c.name for c in cells], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: last and best (mean ± se)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_geometry(cells: list[CellResult], path: Path) -> bool:
    keys = sorted({k for c in cells for k in c.geometry})
    if not keys:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.5 * rows), dpi=110, squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        for c in cells:
            if key in c.geometry:
                steps, mean, err = _mean_curve(c.geometry[key])
                ax.plot(steps, mean, label=c.name)
                ax.fill_between(steps, [m - e for m, e in zip(mean, err)], [m + e for m, e in zip(mean, err)],
                                alpha=0.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(root: str | Path, metric: str = "eval/normalized_score") -> Path:
    """Write report.md, report.csv and the PNGs into ``root``; returns the path of report.md.

    ``metric`` may list several metrics separated by commas (e.g. ``eval/pass@1,eval/pass@8,geom/mean_cos``):
    each gets its own table (and rows in the CSV, with a ``metric`` column); the plots show the first.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"'{root}' is not a folder; point rlcore report at a run or sweep directory")
    metric, *extra = [m.strip() for m in metric.split(",") if m.strip()] or ["eval/normalized_score"]
    cells = collect(root, metric)
    if not cells:
        available = sorted({k for run in find_runs(root) for r in read_metrics(run) for k in r
                            if k not in ("step", "time")})
        hint = f"; metrics found: {', '.join(available[:12])}" if available else "; no runs with metrics.jsonl"
        raise UserError(f"no run under '{root}' logged '{metric}'{hint}. Choose one with --metric")
    header, rows, raw = table_rows(cells, with_best=_has_best(metric))
    plot_curves(cells, metric, root / "learning_curves.png")
    plot_final(cells, metric, root / "final_scores.png")
    has_geometry = plot_geometry(cells, root / "geometry.png")

    lines = [f"# Report: {root.name}", "", f"Metric `{metric}`: \"last\" is the value at the final evaluation, "
             "\"best\" (scores only) the maximum over evaluations; mean ± standard error over seeds. \"step\" is "
             "the step of the last value; a cell marked unfinished is still running or was stopped before its "
             "max_steps, and its \"last\" is the latest value so far.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    raw = [{"metric": metric, **r} for r in raw]
    for name in extra:
        more_header, more_rows, more_raw = table_rows([c for c in collect(root, name) if c.series],
                                                      with_best=_has_best(name))
        lines += ["", f"Metric `{name}`:", "", "| " + " | ".join(more_header) + " |", "|" + "---|" * len(more_header)]
        lines += ["| " + " | ".join(r) + " |" for r in more_rows]
        raw += [{"metric": name, **r} for r in more_raw]
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


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="a sweep folder (rlcore ablate --out) or any folder of run directories")
    parser.add_argument("--metric", help="metric(s) to tabulate, comma-separated (default: the sweep's, else "
                        "eval/normalized_score)")
    parser.add_argument("--completions", metavar="STEP", help="instead of tables: the most and least novel "
                        "correct responses of STEP (a number or 'last') from the run's completions.jsonl")
    parser.add_argument("--top", type=int, default=3, help="with --completions: responses shown per list")


def _run(args: argparse.Namespace) -> int:
    import json

    if args.completions is not None:
        from rlcore.completions import format_novel

        print(format_novel(args.dir, args.completions, args.top))
        return 0
    metric = args.metric
    sweep = Path(args.dir) / "sweep.json"
    if metric is None and sweep.is_file():
        metric = json.loads(sweep.read_text())["spec"].get("metric")
    path = write_report(args.dir, metric or "eval/normalized_score")
    print(path.read_text(encoding="utf-8").split("\n![")[0].rstrip())
    print(f"\nwritten: {path} (+ report.csv, PNG plots)")
    return 0


COMMAND = Command(help="tables (markdown, CSV) and plots (PNG) from a folder of runs", configure=_configure, run=_run)
