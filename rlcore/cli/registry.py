"""Where every subcommand and plugin comes from: the built-in table below, then third-party entry points.

Each group maps a name to ``"module:attribute"``; nothing is imported until a command is asked for, so
``rlcore --help`` stays fast. A new algorithm adds one line to ``BUILTIN["train"]`` (and to ``eval`` when it has
its own evaluation). Other packages extend rlcore without editing it through the entry-point groups of the same
names (``rlcore.train``, ``rlcore.eval``, ``rlcore.data``, ``rlcore.policies``, ``rlcore.reference_scores``); a
built-in name wins over an entry point of the same name.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

BUILTIN: dict[str, dict[str, str]] = {
    "train": {
        "toy": "rlcore.algorithms.toy.cli:TRAIN",
        "grpo": "rlcore.algorithms.grpo.cli:TRAIN",
        "g2rl": "rlcore.algorithms.g2rl.cli:TRAIN",
        "odice": "rlcore.algorithms.offline.cli:TRAIN_ODICE",
        "bc": "rlcore.algorithms.offline.cli:TRAIN_BC",
        "iql": "rlcore.algorithms.offline.cli:TRAIN_IQL",
    },
    "eval": {
        "llm": "rlcore.envs.reasoning.eval_cli:EVAL",
        "odice": "rlcore.algorithms.offline.cli:EVAL",
        "bc": "rlcore.algorithms.offline.cli:EVAL",
        "iql": "rlcore.algorithms.offline.cli:EVAL",
    },
    "data": {
        "collect": "rlcore.envs.offline.cli:COLLECT",
        "mix": "rlcore.envs.offline.cli:MIX",
        "info": "rlcore.envs.offline.cli:INFO",
        "download": "rlcore.envs.offline.cli:DOWNLOAD",
        "list": "rlcore.envs.offline.cli:LIST",
    },
    "policies": {
        "odice": "rlcore.algorithms.offline.cli:load_policy",
        "bc": "rlcore.algorithms.offline.cli:load_policy",
        "iql": "rlcore.algorithms.offline.cli:load_policy",
    },
    "reference_scores": {
        "d4rl": "rlcore.algorithms.offline.reference_scores:reference_scores",
    },
}


def targets(group: str) -> dict[str, str]:
    """Name -> ``"module:attribute"`` for ``group``: third-party entry points, overridden by the built-ins."""
    found = {ep.name: ep.value for ep in metadata.entry_points(group=f"rlcore.{group}")}
    return {**found, **BUILTIN.get(group, {})}


def load(target: str) -> Any:
    """Import ``"module:attribute"`` and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
