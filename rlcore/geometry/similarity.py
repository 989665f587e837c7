"""Pairwise cosines of feature vectors and the summary statistics G2RL logs (mean cosine, share of negatives)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def cosine_matrix(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Pairwise cosines of the rows of ``x``: (N, D) -> (N, N), batched (G, N, D) -> (G, N, N).

    Rows are normalised as ``x / (||x|| + eps)`` (G2RL eq. 9), so a zero row has cosine 0 with everything;
    values are clamped to [-1, 1] against rounding.

    >>> cosine_matrix(torch.tensor([[1.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])).round(decimals=4)
    tensor([[ 1.0000,  0.7071, -1.0000],
            [ 0.7071,  1.0000, -0.7071],
            [-1.0000, -0.7071,  1.0000]])
    """
    unit = x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + eps)
    return (unit @ unit.transpose(-1, -2)).clamp(-1.0, 1.0)


class PairStats(NamedTuple):
    """Summary of the off-diagonal entries of a cosine matrix (0-d tensors, 0 when there are no pairs)."""

    mean_cos: Tensor
    """Mean pairwise cosine."""
    neg_frac: Tensor
    """Share of pairs with a negative cosine."""


def pair_mask(mask: Tensor) -> Tensor:
    """(..., N) bool validity -> (..., N, N) bool: both entries valid and not on the diagonal."""
    eye = torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)
    return mask.unsqueeze(-1) & mask.unsqueeze(-2) & ~eye


def pairwise_stats(cos: Tensor, mask: Tensor | None = None) -> PairStats:
    """Mean off-diagonal cosine and share of negative pairs of ``cos`` (N, N) or (G, N, N), pooled over groups.

    ``mask`` (N,) or (G, N) bool marks valid entries of ragged groups; pairs with an invalid member are left out.
    The results stay on the device (no host sync).

    >>> pairwise_stats(torch.tensor([[1.0, -0.5], [-0.5, 1.0]]))
    PairStats(mean_cos=tensor(-0.5000), neg_frac=tensor(1.))
    """
    if mask is None:
        mask = torch.ones(cos.shape[:-1], dtype=torch.bool, device=cos.device)
    pairs = pair_mask(mask)
    count = pairs.sum().clamp_min(1).to(cos.dtype)
    return PairStats(torch.where(pairs, cos, 0).sum() / count, (pairs & (cos < 0)).sum() / count)


def gram_cosines(gram: Tensor, eps: float = 1e-30) -> Tensor:
    """Cosines from a Gram matrix of inner products, (N, N) -> (N, N): ``G_ij / sqrt(G_ii G_jj)``.

    For the Gram of per-sample gradients (:func:`rlcore.geometry.per_sample_grad_gram`) these are the cosines of
    the gradients themselves; a zero vector has cosine 0 with everything. Clamped to [-1, 1] against rounding.

    >>> gram_cosines(torch.tensor([[4.0, 2.0], [2.0, 9.0]]))
    tensor([[1.0000, 0.3333],
            [0.3333, 1.0000]])
    """
    norms = gram.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()
    return (gram / (norms.unsqueeze(-1) * norms.unsqueeze(-2)).clamp_min(eps)).clamp(-1.0, 1.0)
