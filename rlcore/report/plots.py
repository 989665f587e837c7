"""The report's figures (PNG): learning curves, last and best per cell, training signals, ``geom/*`` diagnostics.

Every line is a mean over seeds with a band of ± one standard error; a metric with a single logged point is
drawn as a marker with an error bar (a one-point line would be invisible).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlcore.errors import UserError
from rlcore.report.collect import CellResult, Series
from rlcore.report.tables import best_mean, mean_curve, mean_stderr

NOVELTY_KEY = "geom/mean_nu"
"""The mean novelty of the responses (logged by runs that compute the gradient feature): a training signal."""


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported here: ``rlcore --help`` stays fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (fewer at the start); ``window`` 1 returns the values."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def auto_window(points: int) -> int:
    """The default smoothing window: about a tenth of the logged points (1, no smoothing, up to 19 points)."""
    return max(1, points // 10)


def _draw(ax: Any, series: list[Series], colour: str | None, label: str, window: int = 1) -> None:
    """Mean over seeds against the step, shaded by the standard error; a single point as a marker."""
    steps, mean, err = mean_curve(series)
    if len(steps) == 1:
        ax.errorbar(steps, mean, yerr=err, color=colour, marker="o", capsize=3, label=label)
        return
    mean, err = smooth(mean, window), smooth(err, window)
    line = ax.plot(steps, mean, color=colour, label=label)[0]
    ax.fill_between(steps, [m - e for m, e in zip(mean, err)], [m + e for m, e in zip(mean, err)],
                    color=line.get_color(), alpha=0.2)


def _grid(plt: Any, panels: int, cols: int, width: float, height: float) -> tuple[Any, list[Any]]:
    cols = max(1, min(cols, panels))
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=110, squeeze=False)
    for ax in list(axes.flat)[panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _save(plt: Any, fig: Any, path: Path, top: float = 1.0) -> None:
    """Lay out (below ``top``, the share of the height left to a figure title) and write the figure."""
    fig.tight_layout(rect=(0.0, 0.0, 1.0, top))
    fig.savefig(path)
    plt.close(fig)


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
    fig, axes = _grid(plt, len(panels), 2, 7, 4.5)
    colours: dict[str, str] = {}
    for ax, (group, members) in zip(axes, panels.items()):
        for c in members:
            variant = c.name[len(group) + 1:] if group else c.name
            colour = colours.setdefault(variant, f"C{len(colours) % 10}")
            _draw(ax, c.series, colour, f"{variant} (n={len(c.series)})")
        ax.set_xlabel("update step")
        ax.set_ylabel(metric)
        ax.set_title(group or f"{metric}: mean ± standard error over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if len(panels) > 1:
        fig.suptitle(f"{metric}: mean ± standard error over seeds")
    _save(plt, fig, path, top=1.0 - 0.3 / fig.get_figheight() if len(panels) > 1 else 1.0)


def plot_final(cells: list[CellResult], metric: str, path: Path) -> None:
    """Bars of the last value and the best mean per cell (mean ± standard error over seeds)."""
    plt = _pyplot()
    cells = [c for c in cells if c.series]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(cells) + 2), 4.5), dpi=110)
    x = range(len(cells))
    lasts = [mean_stderr([s.last for s in c.series]) for c in cells]
    bests = [best_mean(c.series)[:2] for c in cells]
    for offset, label, stats in ((-0.2, "last", lasts), (0.2, "best mean (at its step)", bests)):
        ax.bar([i + offset for i in x], [m for m, _ in stats], width=0.4, label=label,
               yerr=[0 if math.isnan(e) else e for _, e in stats], capsize=3)
    ax.set_xticks(list(x))
    ax.set_xticklabels([c.name for c in cells], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: last and best mean (± se over seeds)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    _save(plt, fig, path)


def training_panels(cells: list[CellResult], curves: list[str] | None = None) -> list[str]:
    """The panels of training_curves.png: ``curves`` (each must be logged by some cell), or by default every
    ``train/*`` signal the runs logged and the mean novelty (``geom/mean_nu``) when logged."""
    logged = sorted({k for c in cells for k in c.signals})
    if curves is not None:
        unknown = [k for k in curves if k not in logged]
        if unknown:
            raise UserError(f"--curves: no run logged {', '.join(unknown)}; logged: {', '.join(logged)}")
        return list(curves)
    return [k for k in logged if k.startswith("train/")] + [k for k in logged if k == NOVELTY_KEY]


def plot_training(cells: list[CellResult], panels: list[str], path: Path, window: int | None = None) -> bool:
    """One panel per key of ``panels``, one line per cell (mean over seeds, ± se band), smoothed with a trailing
    moving average of ``window`` logged points (default :func:`auto_window`), shown in each title. False (and no
    file) when there are no panels."""
    if not panels:
        return False
    plt = _pyplot()
    fig, axes = _grid(plt, len(panels), 3, 4.8, 3.4)
    for ax, key in zip(axes, panels):
        members = [c for c in cells if key in c.signals]
        points = max(len(mean_curve(c.signals[key])[0]) for c in members)
        w = window if window is not None else auto_window(points)
        for i, c in enumerate(cells):
            if key in c.signals:
                _draw(ax, c.signals[key], f"C{i % 10}", f"{c.name} (n={len(c.signals[key])})", w)
        ax.set_title(f"{key} ({f'moving average of {w} logs' if w > 1 else 'not smoothed'})", fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.suptitle("training signals: mean ± standard error over seeds", fontsize=10)
    _save(plt, fig, path, top=1.0 - 0.3 / fig.get_figheight())
    return True


def plot_geometry(cells: list[CellResult], path: Path) -> bool:
    """One panel per ``geom/*`` diagnostic, one line per cell; False (and no file) when no run logged any."""
    keys = sorted({k for c in cells for k in c.geometry})
    if not keys:
        return False
    plt = _pyplot()
    fig, axes = _grid(plt, len(keys), 3, 4.5, 3.5)
    for ax, key in zip(axes, keys):
        for i, c in enumerate(cells):
            if key in c.geometry:
                _draw(ax, c.geometry[key], f"C{i % 10}", c.name)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(plt, fig, path)
    return True
