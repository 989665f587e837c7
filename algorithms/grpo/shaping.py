"""What the GRPO trainer hands to reward shaping and diagnostics, and how they say what they need.

A step's rollouts reach a shaper as :class:`Groups` (G groups of m responses). The trainer always fills the
rewards, the verdicts, the texts and the response mask; every other per-response quantity of the no-gradient
old-policy pass is handed over only when a consumer declares it in ``needs`` (:data:`NEEDS`): ``features`` (the
gradient feature Phi of ``rlcore.geometry.token_stats``) and ``pooled_hidden`` (mean final hidden state over the
response) are computed only then; ``logprobs`` and ``token_entropies`` come out of the same pass (the loss needs
the log-probs anyway) and are kept for the shaper only then. The trainer asks every consumer (the shaper, the
geometry diagnostics) through :func:`needs_of` and knows nothing of what they do with it. A shaper returns shaped
rewards of the same shape; the trainer then standardises them within each group (docs/g2rl.md "Reward scaling":
the paper shapes rewards before the group standardisation). Shapers are registered by name
(:mod:`rlcore.algorithms.grpo.registry`); G2RL and the EVOL-RL-style baseline are two
(``rlcore.algorithms.g2rl``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from rlcore.algorithms.grpo.losses import AdvantageStd, group_advantages
from rlcore.geometry import cosine_matrix, novelty_scores, pairwise_stats

FEATURES, POOLED_HIDDEN, LOGPROBS, TOKEN_ENTROPIES = "features", "pooled_hidden", "logprobs", "token_entropies"
NEEDS = (FEATURES, POOLED_HIDDEN, LOGPROBS, TOKEN_ENTROPIES)
"""What a consumer may ask the trainer for (texts, rewards, verdicts and the response mask are always there)."""


@dataclass
class Groups:
    """This process's share of a step's rollouts, as G groups of m responses."""

    rewards: Tensor
    """(G, m) rewards (the weighted sum of the reward functions)."""
    correct: Tensor
    """(G, m) bool, the verifier's verdicts."""
    answered: Tensor
    """(G, m) bool, whether a final answer could be extracted from the response."""
    texts: list[list[str]]
    """Decoded responses, [group][response]."""
    response_mask: Tensor | None = None
    """(G, m, C) bool, True on response tokens (the per-token tensors below are 0 elsewhere)."""
    features: Tensor | None = None
    """(G, m, d) gradient feature Phi from the old-policy pass, when a consumer needs ``features``."""
    logprobs: Tensor | None = None
    """(G, m, C) old-policy log-probs of the response tokens, when a consumer needs ``logprobs``."""
    token_entropies: Tensor | None = None
    """(G, m, C) entropies of the old policy at each response position, when a consumer needs them."""
    novelty: Tensor | None = None
    """(G, m) novelty nu of Phi given the rewards (G2RL eqs. 9-11); filled on first use by :func:`novelty_of`."""
    pooled_hidden: Tensor | None = None
    """(G, m, d) mean final hidden state of each response under the old policy, when a consumer needs it."""


def novelty_of(groups: Groups) -> Tensor | None:
    """(G, m) novelty nu of the groups' Phi (``rlcore.geometry.novelty_scores``), computed once and kept in
    ``groups.novelty``; None when Phi was not computed (and no novelty given)."""
    if groups.novelty is None and groups.features is not None:
        groups.novelty = novelty_scores(groups.features, groups.rewards)
    return groups.novelty


class NeedsMixin:
    """``needs``: the subset of :data:`NEEDS` a consumer asks for; ``needs_features`` / ``needs_pooled_hidden``
    read it."""

    needs: frozenset[str] = frozenset()

    @property
    def needs_features(self) -> bool:
        return FEATURES in self.needs

    @property
    def needs_pooled_hidden(self) -> bool:
        return POOLED_HIDDEN in self.needs


class RewardShaper(Protocol):
    """``shaper(groups) -> (shaped rewards (G, m), metrics)``; ``needs`` says what the trainer must compute."""

    needs: frozenset[str]

    def __call__(self, groups: Groups) -> tuple[Tensor, dict[str, Tensor]]: ...


def needs_of(consumers: Iterable[object | None]) -> frozenset[str]:
    """Union of the ``needs`` of the given consumers (None entries are skipped); unknown names are an error."""
    out = frozenset().union(*(getattr(c, "needs", frozenset()) for c in consumers if c is not None))
    unknown = sorted(out - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown needs {unknown}; a consumer may ask for {list(NEEDS)}")
    return out


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
    ``mean_nu``: mean novelty; ``rescued_frac``: share of the groups whose rewards are all equal that the shaping
    gave unequal rewards (0 when there are none; the share of such groups is ``train/frac_reward_zero_std``).
    """
    zero_var = flat_groups(groups.rewards)
    rescued = zero_var & ~flat_groups(shaped)
    out = {"rescued_frac": rescued.sum() / zero_var.sum().clamp_min(1)}
    if groups.features is not None:
        stats = pairwise_stats(cosine_matrix(groups.features.float()))
        out.update(mean_cos=stats.mean_cos, neg_frac=stats.neg_frac)
    novelty = novelty_of(groups)
    if novelty is not None:
        out["mean_nu"] = novelty.float().mean()
    return {k: v.to(torch.float32) for k, v in out.items()}


class GeometryDiagnostics(NeedsMixin):
    """The ``geom/*`` diagnostics as a consumer: asks for Phi when ``enabled`` (else reports what it is given)."""

    def __init__(self, enabled: bool = True):
        self.needs = frozenset({FEATURES}) if enabled else frozenset()

    def __call__(self, groups: Groups, shaped: Tensor) -> dict[str, Tensor]:
        return geometry_diagnostics(groups, shaped)
