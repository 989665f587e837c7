"""Behaviour cloning baseline (``BCConfig``, ``BC``)."""

from rlcore.algorithms.bc.bc import BC
from rlcore.algorithms.bc.config import BCConfig

__all__ = ["BC", "BCConfig"]
