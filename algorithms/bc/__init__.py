"""Behaviour cloning baseline (``BCConfig``, ``BC``)."""

from rlcore.algorithms.bc.bc import BC, BCConfig

__all__ = ["BC", "BCConfig"]
