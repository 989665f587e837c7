"""The command groups other than algorithms, each an entry-point registry (:class:`rlcore.plugins.Registry`).

Algorithms are :data:`rlcore.algorithm.ALGORITHMS`. rlcore's own commands are declared in its ``pyproject.toml``
exactly as a plugin declares its own, so a name is written once::

    [project.entry-points."rlcore.data"]
    collect = "rlcore.envs.offline.cli:COLLECT"
"""

from __future__ import annotations

from typing import Any

from rlcore.plugins import Registry

EVALUATIONS: Registry[Any] = Registry("rlcore.eval", "evaluation command")
"""``rlcore eval <name>`` commands that are not an algorithm's own evaluation (e.g. ``llm``)."""
DATA: Registry[Any] = Registry("rlcore.data", "data command")
"""``rlcore data <name>`` commands."""

