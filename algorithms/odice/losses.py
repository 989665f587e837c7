"""O-DICE's pieces as pure functions: f-divergence conjugates, policy weights and the two residuals.

Notation follows the paper and docs/odice.md ("Residuals", "Value objective"):

    delta_fwd = r + gamma (1 - d) Vbar(s') - V(s)       gradient only through V(s)   ("forward")
    delta_bwd = r + gamma (1 - d) V(s')  - Vbar(s)      gradient only through V(s')  ("backward")
    L(theta)  = (1 - lam) E[V(s)] + lam E[f*(delta)]                                     (paper eq. 5)

Shapes: K seeds, H value heads, B transitions. Values and residuals are (K, H, B); rewards and the discount
mask (K, 1, B) broadcast over heads.
"""

from __future__ import annotations

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
