"""``rlcore report <dir>``: tables and plots from every run under a folder (a sweep, or any runs).

For each cell (a folder of ``seed_<s>`` runs, or a single run directory) and a metric such as
``eval/normalized_score`` it reports, over seeds, the mean and standard error of the "last" value (at the final
evaluation) and, for eval/* scores, the "best mean": the highest mean over seeds at one evaluation step, with
that step (the same "best" as a run's closing line and ``summary.json``); it marks cells whose runs have not
reached their ``max_steps``. A run that trained K seeds vectorised logs ``<metric>/seed<s>`` per seed; those
count as K seeds. Without a metric it tabulates the first of ``eval/normalized_score``, ``eval/return_mean``,
``eval/pass@1`` that the runs logged.

Writes ``report.md`` and ``report.csv``, plus ``learning_curves.png`` (mean with a shaded standard error),
``final_scores.png`` (last and best mean per cell), ``training_curves.png`` (one panel per training signal) and,
when runs logged ``geom/*`` diagnostics, ``geometry.png``. Runs that record their data's provenance
(``data.json``) get a data column; published D4RL numbers (entry-point group ``rlcore.reference_scores``) appear
only beside cells on D4RL's own files. With a ``baseline`` algorithm, scores get a "relative to <algo> (last)"
column (last mean minus the baseline cell's on the same data, in the metric's units).

Modules: :mod:`~rlcore.report.collect` (runs -> cells and series), :mod:`~rlcore.report.tables` (the columns),
:mod:`~rlcore.report.plots`, :mod:`~rlcore.report.write` (the files), :mod:`~rlcore.report.cli`.
"""

from rlcore.report.collect import DEFAULT_METRICS, CellResult, Series, collect, find_runs, pick_metric
from rlcore.report.tables import best_mean, mean_stderr, relative_to, table_rows
from rlcore.report.write import write_report

__all__ = ["DEFAULT_METRICS", "CellResult", "Series", "best_mean", "collect", "find_runs", "mean_stderr",
           "pick_metric", "relative_to", "table_rows", "write_report"]
