"""O-DICE's pieces as pure functions: f-divergence conjugates, policy weights, residuals, Gaussian BC.

Notation follows the paper and docs/odice.md ("Residuals", "Value objective"):

    delta_fwd = r + gamma (1 - d) Vbar(s') - V(s)       gradient only through V(s)   ("forward")
    delta_bwd = r + gamma (1 - d) V(s')  - Vbar(s)      gradient only through V(s')  ("backward")
    L(theta)  = (1 - lam) E[V(s)] + lam E[f*(delta)]                                     (paper eq. 5)

Shapes: K seeds, H value heads, B transitions. Values and residuals are (K, H, B); rewards and the discount
mask (K, 1, B) broadcast over heads.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Divergence = Literal["pearson_chi2", "reverse_kl"]


def f_star(y: torch.Tensor, divergence: Divergence) -> torch.Tensor:
    """Convex conjugate f*(y) with the w >= 0 constraint folded in.

    pearson_chi2: w* = max(y/2 + 1, 0), f*(y) = y w* - (w* - 1)^2  (= y^2/4 + y for y >= -2, else -1);
    reverse_kl: f*(y) = exp(y - 1).
    """
    if divergence == "pearson_chi2":
        w = torch.clamp(y / 2 + 1, min=0)
        return y * w - (w - 1) ** 2
    if divergence == "reverse_kl":
        return torch.exp(y - 1)
    raise ValueError(f"unknown divergence {divergence!r}")


def policy_weight(residual: torch.Tensor, divergence: Divergence, form: Literal["code", "textbook"] = "code",
                  clip: float = 100.0) -> torch.Tensor:
    """Weighted-BC weight w(delta), clipped from above at ``clip`` and detached.

    textbook: (f')^-1(delta) = f*'(delta): max(delta/2 + 1, 0) for pearson_chi2, exp(delta - 1) for reverse_kl.
    code (reference implementation): max(delta, 0) for pearson_chi2; the same exp(delta - 1) for reverse_kl.
    """
    residual = residual.detach()
    if divergence == "pearson_chi2":
        w = torch.clamp(residual, min=0) if form == "code" else torch.clamp(residual / 2 + 1, min=0)
    elif divergence == "reverse_kl":
        w = torch.exp(residual - 1)
    else:
        raise ValueError(f"unknown divergence {divergence!r}")
    return torch.clamp(w, max=clip)


def forward_residual(rewards: torch.Tensor, discount_mask: torch.Tensor, v: torch.Tensor,
                     target_v_next: torch.Tensor) -> torch.Tensor:
    """delta_fwd = r + gamma (1 - d) Vbar(s') - V(s); ``discount_mask`` is gamma (1 - d)."""
    return rewards + discount_mask * target_v_next - v


def backward_residual(rewards: torch.Tensor, discount_mask: torch.Tensor, v_next: torch.Tensor,
                      target_v: torch.Tensor) -> torch.Tensor:
    """delta_bwd = r + gamma (1 - d) V(s') - Vbar(s)."""
    return rewards + discount_mask * v_next - target_v


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
