"""``rlcore report <dir>``: tables and plots from every run under a folder (a sweep, or any runs).

For each cell (a folder of ``seed_<s>`` runs, or a single run directory) and a metric such as
``eval/normalized_score`` it reports, over seeds, the mean and standard error of the "last" value (at the final
evaluation) and the "best" value (maximum over evaluations, for eval/* scores), following CORL's convention, and
marks cells whose runs have not reached their ``max_steps``. A run that trained K seeds vectorised logs
``<metric>/seed<s>`` per seed; those count as K seeds. Without a metric it tabulates the first of
``eval/normalized_score``, ``eval/return_mean``, ``eval/pass@1`` that the runs logged.

Writes ``report.md`` and ``report.csv``, plus ``learning_curves.png`` (mean with a shaded standard error),
``final_scores.png`` (last and best per cell) and, when runs logged ``geom/*`` diagnostics, ``geometry.png``.
When runs name a task with published numbers (entry-point group ``rlcore.reference_scores``), those appear as
extra columns; when a BC cell is present, scores get a "relative to BC (last)" column (last mean minus the BC
cell's on the same data, in the metric's units).

Modules: :mod:`~rlcore.report.collect` (runs -> cells and series), :mod:`~rlcore.report.tables` (the columns),
:mod:`~rlcore.report.plots`, :mod:`~rlcore.report.write` (the files), :mod:`~rlcore.report.cli`.
"""

from rlcore.report.collect import DEFAULT_METRICS, CellResult, Series, collect, find_runs, pick_metric
from rlcore.report.tables import mean_stderr, relative_to_bc, table_rows
from rlcore.report.write import write_report

__all__ = ["DEFAULT_METRICS", "CellResult", "Series", "collect", "find_runs", "mean_stderr", "pick_metric",
           "relative_to_bc", "table_rows", "write_report"]
