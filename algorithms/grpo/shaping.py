"""The reward-shaping hook of the GRPO trainer, and the gradient-geometry diagnostics it logs every step.

A shaper sees one step's groups (rewards, G2RL features Phi, novelty nu, pooled hidden states, texts) and
returns shaped rewards of the same shape; the trainer then standardises them within each group
(docs/g2rl.md "Reward scaling": the paper shapes rewards before the group standardisation). Plain GRPO has no shaper.
G2RL and the EVOL-RL-style baseline are shapers (``rlcore.algorithms.g2rl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from rlcore.algorithms.grpo.losses import AdvantageStd, group_advantages
from rlcore.geometry import cosine_matrix, pairwise_stats


@dataclass
class Groups:
    """This process's share of a step's rollouts, as G groups of m responses."""

    rewards: Tensor
    """(G, m) verifier rewards."""
    correct: Tensor
    """(G, m) bool, the verifier's verdicts."""
    answered: Tensor
    """(G, m) bool, whether a final answer could be extracted from the response."""
    texts: list[list[str]]
    """Decoded responses, [group][response]."""
    features: Tensor | None = None
    """(G, m, d) G2RL feature Phi from the old-policy pass (when the trainer computed it)."""
    novelty: Tensor | None = None
    """(G, m) G2RL novelty nu of the features given the rewards (eqs. 9-11)."""
    pooled_hidden: Tensor | None = None
    """(G, m, d) mean final hidden state of each response under the old policy (when asked for)."""


class RewardShaper(Protocol):
    """``shaper(groups) -> (shaped rewards (G, m), metrics)``; the flags say what the trainer must compute."""

    needs_features: bool
    needs_pooled_hidden: bool

    def __call__(self, groups: Groups) -> tuple[Tensor, dict[str, Tensor]]: ...


def advantages_from(groups: Groups, shaper: RewardShaper | None, *, std: AdvantageStd = "population",
                    eps: float = 1e-6, eps_inside: bool = True) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(advantages (G, m), shaped rewards (G, m), shaper metrics): shaping, then group standardisation."""
    shaped, metrics = shaper(groups) if shaper is not None else (groups.rewards, {})
    if shaped.shape != groups.rewards.shape:
        raise ValueError(f"the reward shaper returned shape {tuple(shaped.shape)}, expected "
                         f"{tuple(groups.rewards.shape)}")
    return group_advantages(shaped, std=std, eps=eps, eps_inside=eps_inside), shaped, metrics


def flat_groups(values: Tensor, eps: float = 1e-12) -> Tensor:
    """(G, m) -> (G,) bool: all values of the group are equal (zero variance)."""
    return (values.amax(-1) - values.amin(-1)) <= eps


def geometry_diagnostics(groups: Groups, shaped: Tensor) -> dict[str, Tensor]:
    """The per-step diagnostics of docs/g2rl.md "Paper numbers", as 0-d tensors.

    ``mean_cos`` and ``neg_frac``: mean pairwise cosine of Phi within groups and the share of negative pairs;
    ``mean_nu``: mean novelty; ``zero_var_frac``: share of groups whose verifier rewards are all equal;
    ``rescued_frac``: share of those groups that the shaping gave unequal rewards (0 when there are none).
    """
    zero_var = flat_groups(groups.rewards)
    rescued = zero_var & ~flat_groups(shaped)
    out = {"zero_var_frac": zero_var.float().mean(),
           "rescued_frac": rescued.sum() / zero_var.sum().clamp_min(1)}
    if groups.features is not None:
        stats = pairwise_stats(cosine_matrix(groups.features.float()))
        out.update(mean_cos=stats.mean_cos, neg_frac=stats.neg_frac)
    if groups.novelty is not None:
        out["mean_nu"] = groups.novelty.float().mean()
    return {k: v.to(torch.float32) for k, v in out.items()}
