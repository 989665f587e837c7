"""IQL's losses as pure functions (Kostrikov et al., 2022, eqs. 5-7; CORL's implementation).

Shapes: K seeds, B transitions; the twin Q is (K, 2, B). Each loss is per seed, (K,): sum over seeds for K
independent losses.
"""

from __future__ import annotations

import torch

from rlcore.algorithms.offline.losses import per_seed_mean


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """|tau - 1(u < 0)| u^2, elementwise (IQL eq. 5 with u = Q - V)."""
    weight = torch.where(diff > 0, expectile, 1 - expectile)
    return weight * diff**2


def value_loss(target_q: torch.Tensor, v: torch.Tensor, expectile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Expectile regression of V(s) to min_i Qbar_i(s, a) (eq. 5): ((K,) loss, (K, B) advantage Q - V)."""
    adv = target_q - v
    return per_seed_mean(expectile_loss(adv, expectile)), adv


def q_loss(qs: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor, next_v: torch.Tensor,
           gamma: float) -> torch.Tensor:
    """Twin-Q regression to r + gamma (1 - d) V(s') (eq. 6): ``qs`` (K, 2, B), the rest (K, B) -> (K,)."""
    targets = rewards + gamma * (1.0 - terminals.to(next_v.dtype)) * next_v
    return per_seed_mean((qs - targets.unsqueeze(1)) ** 2)


def advantage_weights(adv: torch.Tensor, temperature: float, clip: float) -> torch.Tensor:
    """Weights of advantage-weighted BC (eq. 7): exp(beta A), clipped from above at ``clip``, detached (K, B)."""
    return torch.exp(temperature * adv.detach()).clamp(max=clip)
