"""Reading a folder of runs: cells (a folder of ``seed_<s>`` runs, or one run directory) and their series."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.config import ALGO_KEY, read_yaml
from rlcore.errors import UserError
from rlcore.logging import METRICS_FILE, read_metrics
from rlcore.run import CONFIG_FILE

_SEED_DIR = re.compile(r"^seeds?_[0-9-]+$")
DEFAULT_METRICS = ("eval/normalized_score", "eval/return_mean", "eval/pass@1")
"""What the report tabulates when no metric is named: the first of these that the runs logged."""


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
    """The runs of one cell: their series of the metric and of every ``geom/*`` diagnostic, and what they ran."""

    name: str
    series: list[Series] = field(default_factory=list)
    geometry: dict[str, list[Series]] = field(default_factory=dict)
    tasks: set[str] = field(default_factory=set)
    algos: set[str] = field(default_factory=set)
    """The runs' algorithms (``algo:`` in their config.yaml)."""
    data: set[tuple[str | None, ...]] = field(default_factory=set)
    """What the runs trained and were scored on: (task, dataset, env) from their configs."""
    max_steps: int | None = None
    """The runs' planned number of steps (``max_steps`` in their config)."""
    logged_steps: list[int] = field(default_factory=list)
    """The last step each run logged anything at."""

    @property
    def finished(self) -> bool:
        """Whether every run reached ``max_steps`` (a run still going, or stopped, has not)."""
        return self.max_steps is None or all(step >= self.max_steps for step in self.logged_steps)


def find_runs(root: Path) -> list[Path]:
    """Run directories (with config.yaml and metrics.jsonl) under ``root``, sorted."""
    return sorted(p.parent for p in root.rglob(CONFIG_FILE) if (p.parent / METRICS_FILE).is_file())


def logged_metrics(root: Path) -> list[str]:
    """Every metric name logged by a run under ``root``, sorted."""
    return sorted({k for run in find_runs(root) for r in read_metrics(run) for k in r if k not in ("step", "time")})


def no_metric_error(root: Path, metric: str) -> UserError:
    """One line: nothing under ``root`` logged ``metric``, with the names that were logged."""
    available = logged_metrics(root)
    hint = f"; metrics found: {', '.join(available[:12])}" if available else "; no runs with metrics.jsonl"
    return UserError(f"no run under '{root}' logged '{metric}'{hint}. Choose one with --metric")


def pick_metric(root: Path) -> str:
    """The first of :data:`DEFAULT_METRICS` logged by a run under ``root`` (also per seed, ``<metric>/seed<s>``)."""
    logged = logged_metrics(root)
    for metric in DEFAULT_METRICS:
        if any(k == metric or k.startswith(f"{metric}/seed") for k in logged):
            return metric
    raise no_metric_error(root, " or ".join(DEFAULT_METRICS))


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
        if config.get(ALGO_KEY):
            cell.algos.add(str(config[ALGO_KEY]))
        cell.data.add(tuple(None if config.get(k) is None else str(config[k]) for k in ("task", "dataset", "env")))
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
