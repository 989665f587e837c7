"""O-DICE's pieces as pure functions: f-divergence conjugates, policy weights, the two residuals and the full
value objective under each gradient rule.

Notation follows the paper and docs/odice.md ("Residuals", "Value objective", "Gradient rules"):

    delta_fwd = r + gamma (1 - d) Vbar(s') - V(s)       gradient only through V(s)   ("forward")
    delta_bwd = r + gamma (1 - d) V(s')  - Vbar(s)      gradient only through V(s')  ("backward")
    L(theta)  = (1 - lam) E[V(s)] + lam E[f*(delta)]                                     (paper eq. 5)

Shapes: K seeds, H value heads, B transitions. Values and residuals are (K, H, B); rewards and the discount
mask (K, 1, B) broadcast over heads.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from rlcore.algorithms.offline.losses import per_seed_mean

Divergence = Literal["pearson_chi2", "reverse_kl"]
GradRule = Literal["orthogonal", "semi", "true"]


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
    """delta_fwd = r + gamma (1 - d) Vbar(s') - V(s); ``discount_mask`` is gamma (1 - d). Given the online
    V(s') instead of Vbar(s'), it is the full residual delta of the true rule."""
    return rewards + discount_mask * target_v_next - v


def backward_residual(rewards: torch.Tensor, discount_mask: torch.Tensor, v_next: torch.Tensor,
                      target_v: torch.Tensor) -> torch.Tensor:
    """delta_bwd = r + gamma (1 - d) V(s') - Vbar(s)."""
    return rewards + discount_mask * v_next - target_v


class ValueObjective(NamedTuple):
    """The terms of the value objective, each (K,) per seed (sum over seeds for K independent losses).

    The value gradient is ``grad(mean_term + forward_term)`` for the semi and true rules; the orthogonal rule
    takes the three gradients apart and projects the backward one (``ODICE.value_gradients``).
    """

    mean_term: torch.Tensor
    """(1 - lam) E[V(s)]."""
    forward_term: torch.Tensor
    """lam E[f*(residual)]: the forward residual (semi, orthogonal) or the full residual (true)."""
    backward_term: torch.Tensor | None
    """lam eta E[f*(delta_bwd)] (orthogonal rule only, else None)."""
    residual: torch.Tensor
    """(K, H, B) residual of ``forward_term``; the policy weights come from it."""
    backward_residual: torch.Tensor | None
    """(K, H, B) delta_bwd (orthogonal rule only, else None)."""

    def loss(self) -> torch.Tensor:
        """The objective's value summed over seeds (0-dim)."""
        total = self.mean_term.sum() + self.forward_term.sum()
        return total + self.backward_term.sum() if self.backward_term is not None else total


def value_objective(rewards: torch.Tensor, discount_mask: torch.Tensor, v: torch.Tensor,
                    v_next: torch.Tensor | None, target_v: torch.Tensor | None,
                    target_v_next: torch.Tensor | None, *, lam: float, eta: float, divergence: Divergence,
                    grad_rule: GradRule) -> ValueObjective:
    """O-DICE's value objective (paper eq. 5) with V(s') entering as ``grad_rule`` says.

    ``v`` = V(s) and ``v_next`` = V(s') from the online network (K, H, B); ``target_v`` = Vbar(s) and
    ``target_v_next`` = Vbar(s') from the target network, detached, (K, H, B) or (K, 1, B); ``rewards`` and
    ``discount_mask`` = gamma (1 - d) are (K, 1, B).

    - ``semi``: forward residual only (needs ``target_v_next``).
    - ``true``: one residual r + gamma (1 - d) V(s') - V(s), gradient through both (needs ``v_next``).
    - ``orthogonal``: forward term plus the backward term lam eta E[f*(delta_bwd)] (needs all four).
    """
    if grad_rule == "true":
        residual = forward_residual(rewards, discount_mask, v, v_next)
    elif grad_rule in ("semi", "orthogonal"):
        residual = forward_residual(rewards, discount_mask, v, target_v_next)
    else:
        raise ValueError(f"unknown grad_rule {grad_rule!r}")
    mean_term = (1 - lam) * per_seed_mean(v)
    forward_term = lam * per_seed_mean(f_star(residual, divergence))
    backward_term = bwd = None
    if grad_rule == "orthogonal":
        bwd = backward_residual(rewards, discount_mask, v_next, target_v)
        backward_term = lam * eta * per_seed_mean(f_star(bwd, divergence))
    return ValueObjective(mean_term, forward_term, backward_term, residual, bwd)
