"""Reward shapers for the GRPO trainer's hook: G2RL (gradient-feature novelty) and EVOL-RL-style semantic novelty.

Both see one step's groups (``rlcore.algorithms.grpo.shaping.Groups``) and return shaped rewards that the trainer then
standardises within each group. The entropy-bonus baseline needs no shaper: it is ``entropy_coef`` in the loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.shaping import FEATURES, POOLED_HIDDEN, Groups, NeedsMixin, novelty_of
from rlcore.geometry import cosine_matrix, scale_rewards
from rlcore.geometry.similarity import pair_mask


class G2RLShaper(NeedsMixin):
    """G2RL, eqs. 12-13: ``r_tilde = clip(r * f(nu_bar), -c, c)`` with nu from the features Phi (eqs. 9-11).

    Asks the trainer for Phi of its old-policy pass; nu is ``rlcore.geometry.novelty_scores`` of Phi given the
    rewards (or ``groups.novelty`` when given), kept in ``groups.novelty`` for the diagnostics and the logs.
    """

    needs = frozenset({FEATURES})

    def __init__(self, scaler: str = "literal", lam: float = 1.0, clip: float = 3.0):
        self.scaler, self.lam, self.clip = scaler, lam, clip

    def __call__(self, groups: Groups) -> tuple[Tensor, dict[str, Tensor]]:
        novelty = novelty_of(groups)
        if novelty is None:
            raise ValueError("G2RL shaping needs the features Phi (or their novelty); the trainer computes them "
                             "when the shaper's needs include 'features'")
        shaped = scale_rewards(groups.rewards, novelty, self.lam, mode=self.scaler, clip=self.clip)
        return shaped, {"shaping_delta": (shaped - groups.rewards).abs().mean()}


def semantic_novelty_rewards(embeddings: Tensor, correct: Tensor, valid: Tensor, eps: float = 1e-8) -> Tensor:
    """EVOL-RL's novelty rewards (docs/g2rl.md "Baselines"), (G, m, e) embeddings -> (G, m) rewards.

    With similarities ``s_ij = clip(cos(e_i, e_j), 0, 1)`` among valid responses (``valid`` (G, m) bool: an answer
    was extracted), ``novelty_i = 1 - (0.5 * mean_j s_ij over peers of the same correctness (all other valid
    responses when there are none) + 0.5 * max_j s_ij)``, min-max normalised within the correct and within the
    incorrect responses of the group (a lone response gets 1, a tie 0.5). Correct responses get
    ``0.5 + 0.5 nu_hat`` in [0.5, 1], incorrect ones ``-1 + 0.5 nu_hat`` in [-1, -0.5], invalid ones -1.

    >>> e = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> semantic_novelty_rewards(e, torch.tensor([[True, True, False]]), torch.ones(1, 3, dtype=torch.bool))
    tensor([[ 0.7500,  0.7500, -0.5000]])
    """
    sim = cosine_matrix(embeddings.float(), eps).clamp(0, 1)
    peers = pair_mask(valid)
    same = peers & (correct.unsqueeze(-1) == correct.unsqueeze(-2))
    pool = torch.where(same.any(-1, keepdim=True), same, peers)
    mean_sim = (sim * pool).sum(-1) / pool.sum(-1).clamp_min(1)
    max_sim = sim.masked_fill(~peers, 0).amax(-1)
    novelty = 1 - 0.5 * mean_sim - 0.5 * max_sim
    nu_hat = torch.zeros_like(novelty)
    for members in (valid & correct, valid & ~correct):
        low = novelty.masked_fill(~members, float("inf")).amin(-1, keepdim=True)
        high = novelty.masked_fill(~members, float("-inf")).amax(-1, keepdim=True)
        spread = high - low
        lone = members.sum(-1, keepdim=True) == 1
        flat = torch.where(lone, 1.0, 0.5)
        scaled = torch.where(spread > eps, (novelty - low) / torch.where(spread > eps, spread, 1), flat)
        nu_hat = torch.where(members, scaled, nu_hat)
    rewards = torch.where(correct, 0.5 + 0.5 * nu_hat, -1 + 0.5 * nu_hat)
    return torch.where(valid, rewards, -1.0)


class TextEmbedder:
    """Mean-pooled last hidden states of an embedding model (a transformers AutoModel) for response texts."""

    def __init__(self, name_or_path: str, device: torch.device, max_tokens: int = 512, batch_size: int = 16):
        from transformers import AutoModel, AutoTokenizer

        from rlcore.errors import UserError

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self.model = AutoModel.from_pretrained(name_or_path).to(device).eval()
        except OSError as e:
            raise UserError(f"cannot load embedding model '{name_or_path}' ({str(e).splitlines()[0]}); pass a "
                            "save_pretrained directory, or embedding_model='' to use the policy's hidden states") from e
        self.tokenizer.truncation_side = "left"  # EVOL-RL keeps the end of long responses
        self.device, self.max_tokens, self.batch_size = device, max_tokens, batch_size

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_tokens, return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state
            weights = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * weights).sum(1) / weights.sum(1).clamp_min(1)).float())
        return torch.cat(out)


class EvolShaper(NeedsMixin):
    """EVOL-RL-style baseline: rewards from semantic novelty with verifier correctness (RLVR mode).

    Embeddings are the policy's own mean-pooled last hidden state over each response (default), or those of
    ``embedder`` (e.g. :class:`TextEmbedder`). Unlike EVOL-RL's label-free runs, correctness comes from the verifier;
    a response without an extractable final answer counts as invalid (EVOL-RL: no digit in its box).
    """

    def __init__(self, embedder: Any = None):
        self.embedder = embedder
        self.needs = frozenset({POOLED_HIDDEN}) if embedder is None else frozenset()

    def __call__(self, groups: Groups) -> tuple[Tensor, dict[str, Tensor]]:
        if self.embedder is None:
            if groups.pooled_hidden is None:
                raise ValueError("EVOL shaping without an embedding model needs the pooled hidden states")
            embeddings = groups.pooled_hidden
        else:
            G, m = groups.rewards.shape
            embeddings = self.embedder([t for g in groups.texts for t in g]).view(G, m, -1)
        shaped = semantic_novelty_rewards(embeddings.to(groups.rewards.device), groups.correct, groups.answered)
        return shaped.to(groups.rewards.dtype), {"shaping_delta": (shaped - groups.rewards).abs().mean()}
