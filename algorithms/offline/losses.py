"""Pure loss pieces shared by the offline family (O-DICE, IQL, BC): per-seed means, the Gaussian policy's
negative log-likelihood and weighted behaviour cloning.

Shapes: K seeds, B transitions, A action dimensions; every function keeps the seeds independent (a loss summed
over seeds gives each seed the gradient it would get alone).
"""

from __future__ import annotations

import math

import torch


def per_seed_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the leading seed dimension: (K, ...) -> (K,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """-log N(actions; mean, diag(exp(log_std)^2)), summed over action dims: (K, B, A) -> (K, B).

    ``log_std`` is (K, A) (state independent), already clamped.
    """
    z = (actions - mean) * torch.exp(-log_std).unsqueeze(1)
    return 0.5 * (z**2).sum(-1) + log_std.sum(-1, keepdim=True) + 0.5 * actions.shape[-1] * math.log(2 * math.pi)


def weighted_bc_loss(nll: torch.Tensor, weight: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Policy extraction (paper eq. 8): (1/B) sum_i w_i * (-log pi(a_i|s_i)) per seed, summed over seeds.

    ``nll`` (K, N); ``weight`` (K, N), detached; ``batch_size`` B defaults to N (pass the original size when
    zero-weight rows were dropped). Summing the per-seed means keeps the seeds' gradients independent and equal
    to what each seed would get alone.
    """
    return (weight * nll).sum(dim=1).sum() / (batch_size or nll.shape[1])


def drop_zero_weight_rows(weight: torch.Tensor, *arrays: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep, per seed, the rows whose weight is non-zero (padded to the largest count with zero-weight rows).

    ``weight`` (K, B); each array (K, B, ...). A zero weight contributes exactly nothing to the weighted-BC
    gradient, so the policy forward/backward can skip those rows (the pearson_chi2 code weight max(delta, 0) is
    zero for roughly every transition with delta <= 0). Needs one host sync for the row count: use it on CPU.
    """
    active = weight > 0
    count = max(int(active.sum(dim=1).max()), 1)  # keep >= 1 row so weight decay still sees a gradient
    order = torch.argsort(active.to(torch.int8), dim=1, descending=True, stable=True)[:, :count]
    out = [weight.gather(1, order)]
    for a in arrays:
        out.append(a.gather(1, order.reshape(*order.shape, *([1] * (a.dim() - 2))).expand(-1, -1, *a.shape[2:])))
    return tuple(out)
