"""The sweep spec: what a ``configs/ablations/*.yaml`` file may say, checked when it is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from rlcore.algorithm import ALGORITHMS
from rlcore.config import ALGO_KEY, check_range, from_dict, read_yaml
from rlcore.errors import ConfigError
from rlcore.logging import SWEEP_FILE  # noqa: F401  (re-exported: the sweep writes it)

Backend = Literal["sequential", "process", "ray"]
Storage = Literal["auto", "shared", "copy"]


@dataclasses.dataclass
class Cell:
    """One named set of overrides."""

    name: str
    """Folder name of the cell under the sweep's output directory."""
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Config overrides of this cell (key: value, nested keys with dots)."""
    base: str | None = None
    """This cell's own preset (e.g. a baseline's), instead of the sweep's `base`; its `algo:` names the algorithm."""


@dataclasses.dataclass
class SweepSpec:
    """A sweep: a base preset, cells of overrides, and seeds."""

    base: str
    """Preset YAML every run starts from (relative paths: to the spec file, then to the working directory)."""
    algo: str | None = None
    """Algorithm (`rlcore train <algo>`); default: the base preset's `algo:` key."""
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Overrides applied to every run."""
    grid: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    """Cells as the cartesian product of these override lists."""
    cells: list[Cell] = dataclasses.field(default_factory=list)
    """Explicit named cells (added to the grid's)."""
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    """Seeds run for every cell."""
    metric: str | None = None
    """Metric `rlcore report` tabulates (last and best per seed); several, comma-separated, give one table each.
    Default: the first the runs logged of eval/normalized_score, eval/return_mean, eval/pass@1."""
    baseline: str | None = None
    """An algorithm (a cell's `algo`) the report compares scores with: "relative to <baseline> (last)"."""
    vectorize_seeds: bool = False
    """Run all seeds of a cell in ONE run with `seeds=[...]` (for algorithms that train seeds vectorised)."""
    backend: Backend = "sequential"
    """sequential (in this process), process (a pool of `workers` subprocesses) or ray."""
    workers: int = 2
    """Parallel runs for the process and ray backends."""
    threads_per_worker: int = 1
    """torch threads of each run (config key `threads`)."""
    address: str | None = None
    """Ray cluster to run on (backend ray): `auto` or host:port of its head; default RAY_ADDRESS, else a local
    instance."""
    storage: Storage = "auto"
    """Backend ray: whether the nodes see the output folder: auto (detected per node), shared, or copy (runs train
    in a scratch folder and are copied back at each checkpoint and at the end)."""

    def __post_init__(self) -> None:
        check_range("workers", self.workers, low=1)
        check_range("threads_per_worker", self.threads_per_worker, low=1)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sweep seeds must be a non-empty list of distinct integers, got {self.seeds}")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"sweep grid '{key}' is empty; give at least one value or remove the key")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ConfigError(f"sweep cell names must be unique, got {names}")


def _preset(spec_path: Path, name: str) -> tuple[Path, str | None]:
    """A preset named in a spec (relative to the spec, then to the working directory) and its `algo:`."""
    for candidate in (spec_path.parent / name, Path(name)):
        if candidate.is_file():
            return candidate, read_yaml(candidate).get(ALGO_KEY)
    raise ConfigError(f"sweep preset '{name}' not found (looked next to '{spec_path}' and in the working directory)")


def load_spec(path: str | Path) -> tuple[SweepSpec, Path, str]:
    """Read and check a spec; returns (spec, resolved base preset path, algorithm name).

    Cells with their own ``base`` get it resolved in place (``cell.base`` becomes the found path).
    """
    path = Path(path)
    data = read_yaml(path)
    if not data:
        raise ConfigError(f"sweep spec '{path}' is empty; it needs at least `base:` (see `rlcore ablate --help`)")
    if "base" not in data:
        raise ConfigError(f"sweep spec '{path}' has no `base:` preset; add e.g. `base: configs/toy/demo.yaml`")
    spec = from_dict(SweepSpec, data)
    base, base_algo = _preset(path, spec.base)
    algo = spec.algo or base_algo
    if not algo:
        raise ConfigError(f"sweep spec '{path}' names no algorithm: add `algo:` to it or to '{base}'")
    names = [str(algo)]
    for cell in spec.cells:
        if cell.base is not None:
            cell_base, cell_algo = _preset(path, cell.base)
            if not cell_algo:
                raise ConfigError(f"cell '{cell.name}': preset '{cell_base}' has no `algo:` key")
            cell.base = str(cell_base)
            names.append(str(cell_algo))
    for name in names:  # an unknown algorithm fails here, not in every run of the sweep
        if name not in ALGORITHMS:
            ALGORITHMS.get(name)
    return spec, base, str(algo)
