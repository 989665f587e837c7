"""Sweeps of configs x seeds (``rlcore ablate``), resumable, on one of three backends.

A spec names a base preset and the cells to run::

    base: configs/toy/demo.yaml     # preset; its `algo:` key names the algorithm (or give `algo:`)
    set: {max_steps: 200}           # overrides for every run
    grid: {lr: [1e-3, 3e-4]}        # cells = cartesian product of these overrides ...
    cells:                          # ... and/or named cells with their own overrides (and, optionally, preset)
      - {name: small, set: {hidden: 16}}
      - {name: bc, base: configs/bc/demo.yaml}
    seeds: [0, 1]
    metric: eval/score              # what `rlcore report` tabulates (default: what the runs logged)
    backend: process                # sequential (in this process) | process (local pool) | ray
    workers: 2
    threads_per_worker: 1
    address: auto                   # ray: a running cluster (default RAY_ADDRESS, else a local instance)
    storage: auto                   # ray: auto (detected per node) | shared | copy (copied back at checkpoints)

Each run is ``rlcore train <algo> --config <base> --set ... --run-dir <out>/<cell>/seed_<s>``; a finished run
(a ``summary.json`` not written by a stop signal) is skipped when the sweep is started again, a run with checkpoints
is resumed,
and a failed run is reported with its error without stopping the others (a run killed by a signal is retried
once from its checkpoint). ``<out>/sweep.json`` records the spec and every run's status.

Modules (this package imports none of them, so that reading a spec stays light):
:mod:`~rlcore.sweep.spec` (the spec schema), :mod:`~rlcore.sweep.plan` (spec -> command lines and run
directories), :mod:`~rlcore.sweep.local` (one training in this process, or as a supervised subprocess),
:mod:`~rlcore.sweep.ray_backend` (runs as Ray tasks on a cluster, with
:mod:`~rlcore.sweep.transfer` moving run directories between nodes), :mod:`~rlcore.sweep.execute` (the loop
over runs, sweep.json),
:mod:`~rlcore.sweep.cli` (``rlcore ablate``).
"""
