"""O-DICE's config: the value objective, the gradient rule and the value network (offline imitation settings come
from :class:`rlcore.algorithms.offline.config.ImitationConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from rlcore.algorithms.offline.config import ImitationConfig
from rlcore.config import check_range
from rlcore.errors import ConfigError


@dataclasses.dataclass
class ODICEConfig(ImitationConfig):
    """O-DICE (Mao et al., ICLR 2024): V-DICE value learning with the orthogonal-gradient update, then
    weighted behaviour cloning."""

    grad_rule: Literal["orthogonal", "semi", "true"] = "orthogonal"
    """How V(s') enters the value gradient: orthogonal (O-DICE: backward gradient projected onto the normal plane
    of the forward gradient), semi (target network for V(s'), no gradient), true (full gradient)."""
    projection: Literal["global", "per_layer"] = "global"
    """Orthogonal rule: one projection over all V parameters flattened (reference), or one per layer."""
    divergence: Literal["pearson_chi2", "reverse_kl"] = "pearson_chi2"
    """f-divergence of the DICE objective (its conjugate f* and the policy weight)."""
    weight_form: Literal["code", "textbook"] = "code"
    """Policy weight: the reference code's max(delta, 0) for pearson_chi2, or the textbook (f')^-1 =
    max(delta/2 + 1, 0); identical for reverse_kl."""
    lam: float = 0.6
    """lambda in (0, 1): L = (1 - lambda) E[V(s)] + lambda E[f*(delta)]."""
    eta: float = 1.0
    """Scale of the backward gradient before the projection (orthogonal rule)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """EMA rate of the target value network."""
    weight_clip: float = 100.0
    """Upper clip of the policy weight."""
    v_hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """Hidden widths of each value MLP (ReLU)."""
    v_layer_norm: bool = True
    """LayerNorm after each hidden Linear of V (reference: on for MuJoCo/Kitchen/Adroit, off for AntMaze)."""
    twin_v: bool = True
    """Two value heads: losses use both, targets and acting use the minimum."""
    v_lr: float = 2e-4
    """Adam learning rate of V (no weight decay)."""
    skip_zero_weight_rows: Literal["auto", "on", "off"] = "auto"
    """Run the policy step only on rows with a non-zero BC weight (same gradient, fewer FLOPs; costs a host
    sync, so auto = on for CPU, off for GPUs)."""
    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("lam", self.lam, low=0.0, high=1.0, low_open=True, high_open=True)
        check_range("eta", self.eta, low=0.0)
        check_range("gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        check_range("tau", self.tau, low=0.0, high=1.0, low_open=True)
        check_range("weight_clip", self.weight_clip, low=0.0, low_open=True)
        check_range("v_lr", self.v_lr, low=0.0, low_open=True)
        if not self.v_hidden or min(self.v_hidden) < 1:
            raise ConfigError(f"v_hidden must list positive widths, got {self.v_hidden}")
