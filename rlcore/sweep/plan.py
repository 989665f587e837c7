"""From a spec to runs: one ``rlcore train`` command line and run directory per cell and seed (group)."""

from __future__ import annotations

import dataclasses
import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from rlcore.checkpoint import CheckpointManager
from rlcore.config import ALGO_KEY, read_yaml
from rlcore.run import CHECKPOINT_DIR, SUMMARY_FILE
from rlcore.sweep.spec import SweepSpec


@dataclasses.dataclass
class RunSpec:
    """One training of a sweep: its cell, the seed(s) it trains, where it writes, and its ``rlcore`` arguments."""

    cell: str
    seeds: list[int]
    run_dir: Path
    argv: list[str]

    def command(self) -> str:
        """The command line as a shell reads it back: pasting it runs this training."""
        return "rlcore " + shlex.join(self.argv)


def value_text(value: Any) -> str:
    """An override value as command-line text that the config parser reads back with its type."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def cell_name(overrides: dict[str, Any]) -> str:
    """Folder name of a grid cell, e.g. ``lr=0.001,hidden=8`` (``base`` without overrides)."""
    text = ",".join(f"{k}={value_text(v)}" for k, v in overrides.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def _logs_to_wandb(preset: Path, settings: dict[str, Any]) -> bool:
    value = settings.get("wandb", read_yaml(preset).get("wandb", False))
    return value is True or str(value).lower() in ("true", "1", "yes")


def plan(spec: SweepSpec, base: Path, algo: str, out: Path) -> list[RunSpec]:
    """Every run of the sweep, in a stable order (cell by cell, seed by seed).

    Runs that log to W&B get ``wandb_group=<sweep folder name>`` unless the spec sets one, so the cells of a sweep
    share a group (and, from their run directories, get distinct W&B run ids).
    """
    cells: list[tuple[str, dict[str, Any], Path, str]] = []  # name, overrides, preset, algorithm
    keys = list(spec.grid)
    if keys:
        for combo in itertools.product(*(spec.grid[k] for k in keys)):
            overrides = dict(zip(keys, combo))
            cells.append((cell_name(overrides), overrides, base, algo))
    for c in spec.cells:
        preset = Path(c.base) if c.base else base
        cells.append((c.name, dict(c.set), preset, str(read_yaml(preset).get(ALGO_KEY) or algo) if c.base else algo))
    if not cells:
        cells = [("base", {}, base, algo)]
    seed_groups = [list(spec.seeds)] if spec.vectorize_seeds else [[s] for s in spec.seeds]
    group = out.resolve().name
    runs = []
    for name, overrides, preset, cell_algo in cells:
        for seeds in seed_groups:
            folder = ("seeds_" + "-".join(map(str, seeds))) if spec.vectorize_seeds else f"seed_{seeds[0]}"
            run_dir = out / name / folder
            settings = {**spec.set, **overrides, "threads": spec.threads_per_worker}
            settings.update({"seeds": seeds} if spec.vectorize_seeds else {"seed": seeds[0]})
            if _logs_to_wandb(preset, settings):
                settings.setdefault("wandb_group", group)
            argv = ["train", cell_algo, "--config", str(preset), "--run-dir", str(run_dir),
                    "--set", "progress=false"]
            for key, value in settings.items():
                argv += ["--set", f"{key}={value_text(value)}"]
            runs.append(RunSpec(name, seeds, run_dir, argv))
    return runs


def is_finished(run: RunSpec) -> bool:
    """A run with a ``summary.json`` has ended; the sweep skips it when started again."""
    return (run.run_dir / SUMMARY_FILE).is_file()


def argv_for_attempt(run: RunSpec) -> list[str]:
    """The run's arguments, with ``--resume`` when it has a checkpoint to continue from."""
    has_checkpoint = CheckpointManager(run.run_dir / CHECKPOINT_DIR).latest_step() is not None
    return run.argv + (["--resume"] if has_checkpoint else [])
