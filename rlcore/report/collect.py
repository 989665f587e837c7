"""Reading a folder of runs: cells (a folder of ``seed_<s>`` runs, or one run directory) and their series."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.config import ALGO_KEY, read_yaml
from rlcore.errors import UserError
from rlcore.logging import METRICS_FILE, read_metrics
from rlcore.run import CONFIG_FILE

_SEED_DIR = re.compile(r"^seeds?_[0-9-]+$")
_PER_SEED = re.compile(r"^(?P<key>.+)/seed(?P<seed>[0-9]+)$")
DEFAULT_METRICS = ("eval/normalized_score", "eval/return_mean", "eval/pass@1")
"""What the report tabulates when no metric is named: the first of these that the runs logged."""
DATA_FILE = "data.json"
"""Where an offline run records its data's provenance: ``{"source": "d4rl" | "minari" | "generated" | "user", ...}``."""
UNKNOWN_SOURCE = "unknown"
"""The source of a run without :data:`DATA_FILE` (older runs, runs on no dataset)."""


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
        """This seed's own maximum (the report's "best" is the best mean over seeds, see ``tables.best_mean``)."""
        return max(v for _, v in self.points)


@dataclass
class CellResult:
    """The runs of one cell: each seed's series of every metric they logged, and what they ran on."""

    name: str
    series: list[Series] = field(default_factory=list)
    """The tabulated metric's series, one per seed."""
    signals: dict[str, list[Series]] = field(default_factory=dict)
    """Every logged metric (a vectorised run's ``<key>/seed<s>`` under ``<key>``) -> one series per seed."""
    tasks: set[str] = field(default_factory=set)
    algos: set[str] = field(default_factory=set)
    """The runs' algorithms (``algo:`` in their config.yaml)."""
    data: set[tuple[str | None, ...]] = field(default_factory=set)
    """What the runs trained and were scored on: (task, dataset, env) from their configs."""
    sources: set[str] = field(default_factory=set)
    """Where the runs' data came from: ``source`` of their data.json, or :data:`UNKNOWN_SOURCE`."""
    max_steps: int | None = None
    """The runs' planned number of steps (``max_steps`` in their config)."""
    logged_steps: list[int] = field(default_factory=list)
    """The last step each run logged anything at."""

    @property
    def geometry(self) -> dict[str, list[Series]]:
        """The ``geom/*`` diagnostics among :attr:`signals`."""
        return {k: v for k, v in self.signals.items() if k.startswith("geom/")}

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


def data_source(run: Path) -> str:
    """``source`` of the run's data.json (``d4rl``, ``minari``, ``generated``, ``user``), else ``unknown``."""
    path = run / DATA_FILE
    if not path.is_file():
        return UNKNOWN_SOURCE
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("source") or UNKNOWN_SOURCE)
    except (json.JSONDecodeError, AttributeError):
        return UNKNOWN_SOURCE


def run_series(records: list[dict[str, Any]], seeds: list[int]) -> dict[str, list[Series]]:
    """Every metric of one run -> its series per seed. A run of several seeds logs ``<key>/seed<s>`` per seed
    next to their mean ``<key>``: the per-seed series stand for ``<key>``; a key logged only as a whole (a
    training loss of a vectorised run) is one series under the run's first seed."""
    points: dict[tuple[str, int | None], list[tuple[int, float]]] = {}
    for r in records:
        if "step" not in r:
            continue
        for k, v in r.items():
            if k in ("step", "time") or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            m = _PER_SEED.match(k)
            where = (m["key"], int(m["seed"])) if m and len(seeds) > 1 else (k, None)
            points.setdefault(where, []).append((int(r["step"]), float(v)))
    per_seed = {k for k, s in points if s is not None}
    out: dict[str, list[Series]] = {}
    for (key, seed), found in sorted(points.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if seed is None and key in per_seed:
            continue
        out.setdefault(key, []).append(Series(seeds[0] if seed is None else seed, sorted(found)))
    return out


def collect(root: Path, metric: str) -> list[CellResult]:
    """Group runs into cells and read each seed's series of every logged metric (``metric`` is tabulated)."""
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
        cell.sources.add(data_source(run))
        if config.get("max_steps") is not None:
            cell.max_steps = int(config["max_steps"])
        records = read_metrics(run)
        cell.logged_steps.append(max((int(r["step"]) for r in records if "step" in r), default=0))
        seeds = [int(s) for s in (config.get("seeds") or [config.get("seed", 0)])]
        for key, found in run_series(records, seeds).items():
            cell.signals.setdefault(key, []).extend(found)
    for cell in cells.values():
        cell.series = cell.signals.get(metric, [])
    return [c for c in cells.values() if c.series or c.geometry]
