"""The public Python API: one call per job, which the CLI and the sweeps call too.

>>> import rlcore
>>> cfg = rlcore.load_config("configs/toy/demo.yaml", max_steps=200)   # doctest: +SKIP
>>> result = rlcore.train(cfg, run_dir="runs/toy-demo")                 # doctest: +SKIP
>>> result.status, result.summary["last"]["metrics"]["eval/mse"]       # doctest: +SKIP

The algorithm is found from the config's type (:func:`rlcore.algorithm.spec_for_config`). Errors raised in user
code (reward functions, plugins) propagate with their traceback; the run's ``summary.json`` records them as
``"status": "failed"``. A stop signal (Ctrl-C, a notebook's interrupt, SIGTERM) ends the training after the current
update with a checkpoint and raises :class:`rlcore.errors.Stopped` naming the call that resumes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlcore.algorithm import ALGORITHMS, Inputs, spec_for_config
from rlcore.config import ALGO_KEY, read_yaml
from rlcore.config import load_config as resolve_config
from rlcore.errors import ConfigError, Stopped
from rlcore.run import saved_config_path


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    """The run directory (config.yaml, meta.json, metrics.jsonl, checkpoints, summary.json)."""
    summary: dict[str, Any]
    """What summary.json holds: status, steps, "last" and "best" evaluation, wall time."""
    status: str
    """finished (or stopped, in the :class:`rlcore.errors.Stopped` a stop signal raises)."""
    is_main: bool = True
    """False on all but one process of a multi-process training (those write nothing)."""

    def policy(self, checkpoint: str | int = "best") -> Any:
        """The trained policy: ``load_policy(self.run_dir, checkpoint)``."""
        return load_policy(self.run_dir, checkpoint)


def train(config: Any, *, dataset: Any = None, reward_funcs: Any = None, run_dir: str | Path | None = None,
          resume: bool = False, force_config: bool = False) -> RunResult:
    """Train the algorithm whose config ``config`` is; returns when the run has finished.

    ``dataset``: the training data as you have it (offline: an OfflineDataset, a dict of D4RL-layout arrays, an
    HDF5 path, a D4RL name or ``minari:<id>``; LLM: rows with a ``prompt``), None for what ``config`` names.
    ``reward_funcs``: LLM reward functions, callables or ``"package.module:function"`` strings. ``run_dir``:
    default ``runs/<algo>-<task>-<time>``. ``resume``: continue ``run_dir`` from its latest checkpoint (``config``
    may change only how the run goes on, see :mod:`rlcore.resume`, unless ``force_config``).

    Raises :class:`rlcore.errors.Stopped` (a KeyboardInterrupt) when a stop signal ended the run after writing its
    checkpoint; any other exception propagates unchanged once ``summary.json`` recorded it.
    """
    from rlcore.launcher import launch
    from rlcore.resume import resume_call, resume_command, stopped_message

    spec = spec_for_config(config)
    launched = launch(spec, config, Inputs(dataset=dataset, reward_funcs=reward_funcs), run_dir=run_dir,
                      resume=resume, force_config=force_config)
    result = RunResult(launched.run_dir, launched.summary, launched.summary["status"], launched.is_main)
    if launched.signum is not None:
        raise Stopped(stopped_message(launched.summary, launched.signum, resume_call(result.run_dir)),
                      signum=launched.signum, result=result, command=resume_command(spec.name, result.run_dir))
    return result


def load_config(path: str | Path, **overrides: Any) -> Any:
    """The config of the preset YAML ``path`` (its ``algo:`` key picks the config class), with ``overrides``
    (``max_steps=200``, ``lr=1e-3``) type-checked exactly like ``--set``."""
    name = read_yaml(path).get(ALGO_KEY)
    if not name:
        raise ConfigError(f"'{path}' has no '{ALGO_KEY}:' key naming the algorithm; add one (e.g. "
                          f"'{ALGO_KEY}: {ALGORITHMS.names()[0] if ALGORITHMS.names() else 'name'}') or build the "
                          "config class directly")
    spec = ALGORITHMS.get(str(name))
    return resolve_config(spec.config, path, values=overrides, algo=spec.name)


def load_policy(run_dir: str | Path, checkpoint: str | int = "best") -> Any:
    """The policy a run trained, through its algorithm's loader: offline algorithms give an object whose
    ``act(obs)`` takes raw observations (one or a batch; numpy in and out; deterministic); LLM algorithms give
    ``(model, tokenizer)``. ``checkpoint``: best, latest or a step number."""
    name = read_yaml(saved_config_path(run_dir)).get(ALGO_KEY)
    if not name:
        raise ConfigError(f"'{run_dir}' has no '{ALGO_KEY}:' key in its config.yaml; it was not written by rlcore")
    return ALGORITHMS.get(str(name)).load_policy(Path(run_dir), str(checkpoint))
