"""What an algorithm is to rlcore: one :class:`AlgorithmSpec`, declared once in its own package and found by name in
:data:`ALGORITHMS` (the entry-point group ``rlcore.algorithms``, shared by built-ins and plugins).

``rlcore train <name>``, ``rlcore eval <name>``, ``rlcore data collect --policy <run>``, ``rlcore --help``, report
titles and sweeps all read the spec; nothing else in rlcore names an algorithm. A plugin declares its spec in its
own ``pyproject.toml``::

    [project.entry-points."rlcore.algorithms"]
    td3bc = "td3bc_plugin:SPEC"

This module imports nothing heavy (no torch), so listing algorithms stays fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rlcore.errors import UserError
from rlcore.plugins import Registry

if TYPE_CHECKING:
    from rlcore.api import RunResult
    from rlcore.cli.commands import Command
    from rlcore.launcher import Job
    from rlcore.run import Run


class Processes(Protocol):
    """The processes of one training (torchrun / ``accelerate launch``): which one writes, and how they agree."""

    is_main: bool

    def share(self, value: Any) -> Any:
        """The main process's ``value``, on every process (a collective: every process calls it)."""
        ...


@dataclasses.dataclass(frozen=True)
class Flag:
    """A flag of ``rlcore train <algo>`` that sets one config key (``--task X`` is ``--set task=X``)."""

    flag: str
    """The option, e.g. ``--task``."""
    key: str
    """The config key it sets."""
    help: str


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What :func:`rlcore.train` hands a spec's ``build`` besides the config: the user's objects."""

    dataset: Any = None
    """Training data as the user has it (None: what the config names)."""
    reward_funcs: Any = None
    """Reward functions (callables or ``"module:function"`` strings) for LLM training (None: the config's)."""
    processes: Processes | None = None
    """What the spec's ``processes`` built for this run (None for a one-process algorithm)."""


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    """Everything rlcore needs to know about one algorithm."""

    name: str
    """Command name (``rlcore train <name>``), the ``algo:`` key of its presets and run directories."""
    title: str
    """Name shown to people (reports, closing lines), e.g. ``O-DICE``."""
    help: str
    """One line for ``rlcore train --help``."""
    config: type
    """The config dataclass (inherits :class:`rlcore.run.TrainConfig`)."""
    build: Callable[[Any, Run, Inputs], Job]
    """``build(cfg, run, inputs) -> Job``: the slow setup (data, models, environments) of an opened run."""
    load_policy: Callable[[Path, str], Any]
    """``load_policy(run_dir, checkpoint)``: the trained policy (``checkpoint``: best, latest or a step number)."""
    evaluate: Command | None = None
    """``rlcore eval <name>``, when the algorithm has its own evaluation."""
    flags: tuple[Flag, ...] = ()
    """Extra flags of ``rlcore train <name>``, each mapped to a config key."""
    task: Callable[[Any], str | None] = lambda cfg: None
    """The task part of the default run directory ``runs/<name>-<task>-<time>``."""
    describe: Callable[[RunResult], str] | None = None
    """The closing line ``rlcore train`` prints (default: status and run directory)."""
    processes: Callable[[Any], Processes] | None = None
    """For multi-process training: builds the processes' handle before the run directory is chosen."""
    examples: str = ""
    """Example command lines for ``rlcore train <name> --help``."""


ALGORITHMS: Registry[AlgorithmSpec] = Registry("rlcore.algorithms", "algorithm")
"""Every algorithm by name: built-ins and plugins, through the entry-point group ``rlcore.algorithms``."""


def spec_for_config(config: Any) -> AlgorithmSpec:
    """The spec whose config class is ``type(config)``, else the one of its nearest base class."""
    by_class: dict[type, AlgorithmSpec] = {}
    broken: list[str] = []
    for name in ALGORITHMS.names():
        try:
            spec = ALGORITHMS.get(name)
        except UserError as e:  # a broken plugin must not stop every other algorithm
            broken.append(str(e))
            continue
        by_class.setdefault(spec.config, spec)
    for cls in type(config).__mro__:
        if cls in by_class:
            return by_class[cls]
    hint = f" ({'; '.join(broken)})" if broken else ""
    raise UserError(f"no registered algorithm trains a {type(config).__name__}; pass the config of one of "
                    f"{', '.join(ALGORITHMS.names())}{hint}")

