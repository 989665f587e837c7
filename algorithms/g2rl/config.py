"""G2RL's reward shapers as registered units (``shaper=g2rl``, ``shaper=evol``) and the G2RL preset config.

Each shaper is a :class:`rlcore.algorithms.grpo.registry.ShaperSpec`: its settings dataclass (docs/g2rl.md:
"Reward scaling", "Baselines") and a factory. :class:`G2RLConfig` is GRPO's config with ``shaper="g2rl"`` and
both shapers' settings as its own fields, so ``rlcore train g2rl`` and ``rlcore train grpo --set shaper=g2rl``
are the same run; plain GRPO takes them as ``shaper_args``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlcore.algorithms.grpo.config import GRPOConfig, check_choices
from rlcore.algorithms.grpo.registry import ShaperSpec
from rlcore.config import check_range
from rlcore.geometry.novelty import ScaleMode

DEFAULT_LAM = {"literal": 1.0, "centered": 0.5, "none": 0.0}
"""lambda when not given (docs/g2rl.md "Reward scaling"): 1.0 for the literal eq. 12, 0.5 for the centred form."""


@dataclasses.dataclass
class G2RLSettings:
    """The G2RL shaper: scale rewards by the novelty of the gradient features Phi (eqs. 9-13)."""

    scaler: ScaleMode = "literal"
    """G2RL factor: literal f = 1 + lam * r * nu_bar (eq. 12, paper); centered f = 1 + lam * (2 nu_bar - 1) (the
    paper's prose, docs/g2rl.md "Reward scaling"); none = plain GRPO through the same code path."""
    lam: float | None = None
    """Shaping strength lambda (None: 1.0 for literal, 0.5 for centered). Keep lam < 2 (literal) or < 1
    (centered) so that no incorrect response outranks a correct one."""
    reward_clip: float = 3.0
    """Shaped rewards are clipped to [-c, c] (paper: c = 3)."""

    def __post_init__(self) -> None:
        check_choices(self)
        if self.lam is not None:
            check_range("lam", self.lam, low=0.0)
        check_range("reward_clip", self.reward_clip, low=0.0, low_open=True)

    @property
    def effective_lam(self) -> float:
        """lam, or the scaler's default when lam is None."""
        return DEFAULT_LAM[self.scaler] if self.lam is None else self.lam


@dataclasses.dataclass
class EvolSettings:
    """The EVOL-RL-style baseline: semantic-novelty rewards from response embeddings (docs/g2rl.md "Baselines")."""

    embedding_model: str = ""
    """Embedding model (a save_pretrained directory or hub id), mean-pooled; '' = the policy's own mean-pooled
    last hidden state over the response."""
    embedding_max_tokens: int = 512
    """With an embedding model: responses are embedded from their last this many tokens."""

    def __post_init__(self) -> None:
        check_range("embedding_max_tokens", self.embedding_max_tokens, low=1)


def _make_g2rl(settings: G2RLSettings, cfg: Any, dist: Any) -> Any:
    from rlcore.algorithms.g2rl.shaping import G2RLShaper

    return G2RLShaper(settings.scaler, settings.effective_lam, settings.reward_clip)


def _make_evol(settings: EvolSettings, cfg: Any, dist: Any) -> Any:
    from rlcore.algorithms.g2rl.shaping import EvolShaper, TextEmbedder

    embedder = TextEmbedder(settings.embedding_model, dist.device, settings.embedding_max_tokens) \
        if settings.embedding_model else None
    return EvolShaper(embedder)


G2RL_SHAPER = ShaperSpec(_make_g2rl, G2RLSettings, help="G2RL: rewards scaled by gradient-feature novelty")
EVOL_SHAPER = ShaperSpec(_make_evol, EvolSettings, help="EVOL-RL-style semantic-novelty rewards (a baseline)")


@dataclasses.dataclass
class G2RLConfig(GRPOConfig, G2RLSettings, EvolSettings):
    """GRPO with gradient-guided reward shaping (G2RL) or, with ``shaper=evol``, the EVOL-RL-style baseline; the
    fields of both shapers' settings are config keys here."""

    shaper: str = "g2rl"
    """Reward shaper by registered name: 'g2rl' (default here), 'evol', 'none' or a plugin's."""
