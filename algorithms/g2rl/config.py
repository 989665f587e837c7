"""G2RL settings: GRPO's plus the reward shaping (docs/g2rl.md: "Reward scaling", "Baselines", "Open questions")."""

from __future__ import annotations

import dataclasses
from typing import Literal

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.config import check_range
from rlcore.errors import ConfigError
from rlcore.geometry import SCALE_MODES

DEFAULT_LAM = {"literal": 1.0, "centered": 0.5, "none": 0.0}
"""lambda when not given (docs/g2rl.md "Reward scaling"): 1.0 for the literal eq. 12, 0.5 for the centred form."""


@dataclasses.dataclass
class G2RLConfig(GRPOConfig):
    """GRPO with gradient-guided reward shaping (G2RL) or the EVOL-RL-style semantic-novelty baseline."""

    shaping: Literal["g2rl", "evol"] = "g2rl"
    """'g2rl': scale rewards by the novelty of the gradient features Phi (eqs. 9-13); 'evol': EVOL-RL's
    semantic-novelty rewards from response embeddings (docs/g2rl.md "Baselines"), a baseline."""
    scaler: Literal["literal", "centered", "none"] = "literal"
    """G2RL factor: literal f = 1 + lam * r * nu_bar (eq. 12, paper); centered f = 1 + lam * (2 nu_bar - 1) (the
    paper's prose, docs/g2rl.md "Reward scaling"); none = plain GRPO through the same code path."""
    lam: float | None = None
    """Shaping strength lambda (None: 1.0 for literal, 0.5 for centered). Keep lam < 2 (literal) or < 1
    (centered) so that no incorrect response outranks a correct one."""
    reward_clip: float = 3.0
    """Shaped rewards are clipped to [-c, c] (paper: c = 3)."""
    embedding_model: str = ""
    """EVOL shaping: embedding model (a save_pretrained directory or hub id), mean-pooled; '' = the policy's own
    mean-pooled last hidden state over the response."""
    embedding_max_tokens: int = 512
    """EVOL shaping with an embedding model: responses are embedded from their last this many tokens."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lam is not None:
            check_range("lam", self.lam, low=0.0)
        check_range("reward_clip", self.reward_clip, low=0.0, low_open=True)
        check_range("embedding_max_tokens", self.embedding_max_tokens, low=1)
        if self.scaler not in SCALE_MODES or self.shaping not in ("g2rl", "evol"):
            raise ConfigError(f"scaler must be one of {SCALE_MODES} and shaping 'g2rl' or 'evol'")

    @property
    def effective_lam(self) -> float:
        """lam, or the scaler's default when lam is None."""
        return DEFAULT_LAM[self.scaler] if self.lam is None else self.lam
