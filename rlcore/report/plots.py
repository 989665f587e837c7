"""The report's figures (PNG): learning curves, last and best per cell, and the ``geom/*`` diagnostics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlcore.report.collect import CellResult, Series
from rlcore.report.tables import mean_stderr


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported here: ``rlcore --help`` stays fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_curve(series: list[Series]) -> tuple[list[int], list[float], list[float]]:
    by_step: dict[int, list[float]] = {}
    for s in series:
        for step, v in s.points:
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    stats = [mean_stderr(by_step[t]) for t in steps]
    return steps, [m for m, _ in stats], [0.0 if math.isnan(e) else e for _, e in stats]


def curve_panels(cells: list[CellResult]) -> dict[str, list[CellResult]]:
    """Cells per panel of the learning-curve figure: grouped by the name before its last ``/`` (``<data>/<algo>``
    cells: one panel per dataset) when every name has one and there are several groups, else one panel ``""``."""
    groups: dict[str, list[CellResult]] = {}
    for c in cells:
        groups.setdefault(c.name.rpartition("/")[0], []).append(c)
    if len(groups) < 2 or "" in groups:
        return {"": list(cells)}
    return groups


def plot_curves(cells: list[CellResult], metric: str, path: Path) -> None:
    """Mean over seeds of ``metric`` against the step, one line per cell, shaded by the standard error; one panel
    per group of :func:`curve_panels`, each variant (the name after the group) in the same colour in every panel."""
    plt = _pyplot()
    panels = curve_panels([c for c in cells if c.series])
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.5 * rows), dpi=110, squeeze=False)
    colours: dict[str, str] = {}
    for ax, (group, members) in zip(axes.flat, panels.items()):
        for c in members:
            variant = c.name[len(group) + 1:] if group else c.name
            colour = colours.setdefault(variant, f"C{len(colours) % 10}")
            steps, mean, err = _mean_curve(c.series)
            ax.plot(steps, mean, color=colour, label=f"{variant} (n={len(c.series)})")
            ax.fill_between(steps, [m - e for m, e in zip(mean, err)], [m + e for m, e in zip(mean, err)],
                            color=colour, alpha=0.2)
        ax.set_xlabel("update step")
        ax.set_ylabel(metric)
        ax.set_title(group or f"{metric}: mean ± standard error over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if len(panels) > 1:
        fig.suptitle(f"{metric}: mean ± standard error over seeds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_final(cells: list[CellResult], metric: str, path: Path) -> None:
    """Bars of the last and best value per cell (mean ± standard error over seeds)."""
    plt = _pyplot()
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
    """One panel per ``geom/*`` diagnostic, one line per cell; False (and no file) when no run logged any."""
    keys = sorted({k for c in cells for k in c.geometry})
    if not keys:
        return False
    plt = _pyplot()
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
