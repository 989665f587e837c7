"""Behaviour cloning's loss as a pure function."""

from __future__ import annotations

import torch


def bc_loss(nll: torch.Tensor) -> torch.Tensor:
    """Maximum likelihood of the dataset actions: the mean of -log pi(a|s) per seed, (K, B) -> (K,)."""
    return nll.mean(dim=1)
