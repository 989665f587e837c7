"""Agreement between two lists of numbers (e.g. the pairwise cosines of a proxy and of the real gradients):
Pearson's r and Spearman's rho (Pearson's r of the ranks, tied values sharing their mean rank)."""

from __future__ import annotations

import torch
from torch import Tensor


def average_ranks(x: Tensor) -> Tensor:
    """1-based ranks of the entries of a 1-D tensor; tied values get the mean of the ranks they span
    (scipy.stats.rankdata's "average"), as a float tensor of x's dtype (float32 for integer input).

    >>> average_ranks(torch.tensor([10.0, 30.0, 20.0, 30.0]))
    tensor([1.0000, 3.5000, 2.0000, 3.5000])
    """
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D tensor, got shape {tuple(x.shape)}")
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    ends = counts.cumsum(0).to(dtype)  # rank of the last member of each run of equal values
    return ((ends - counts.to(dtype) + 1 + ends) / 2)[inverse]


def pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of two 1-D tensors of the same length, as a 0-d tensor in [-1, 1].

    NaN when it is undefined: fewer than two values, or either input constant.

    >>> pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])).round(decimals=4)
    tensor(0.9934)
    """
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"expected two 1-D tensors of one length, got {tuple(x.shape)} and {tuple(y.shape)}")
    dx, dy = x - x.mean(), y - y.mean()
    r = (dx * dy).sum() / (dx.square().sum() * dy.square().sum()).sqrt()
    return r.clamp(-1.0, 1.0)  # clamp keeps NaN


def spearman(x: Tensor, y: Tensor) -> Tensor:
    """Spearman rank correlation: :func:`pearson` of :func:`average_ranks` (NaN when undefined).

    >>> spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 8.0, 27.0, 64.0]))
    tensor(1.)
    """
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"expected two 1-D tensors of one length, got {tuple(x.shape)} and {tuple(y.shape)}")
    return pearson(average_ranks(x), average_ranks(y))
