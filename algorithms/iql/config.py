"""IQL's config: CORL's defaults (expectile, temperature, networks and learning rates)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from rlcore.algorithms.offline.config import OfflineConfig
from rlcore.config import check_range


@dataclasses.dataclass
class IQLConfig(OfflineConfig):
    """IQL (Kostrikov et al., 2022) with CORL's defaults (corl-team/CORL algorithms/offline/iql.py)."""

    auto_reward_transform: ClassVar[Mapping[str, str]] = {"locomotion": "return_range", "antmaze": "antmaze_iql"}
    """reward_transform=auto: IQL's AntMaze shift r - 1 instead of O-DICE's."""

    expectile: float = 0.7
    """Expectile of the value regression (0.9 for AntMaze)."""
    temperature: float = 3.0
    """Inverse temperature beta of the advantage weights exp(beta A) (10 for AntMaze)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """EMA rate of the target Q network."""
    weight_clip: float = 100.0
    """Upper clip of exp(beta A)."""
    hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """Hidden widths of V and the twin Q."""
    q_lr: float = 3e-4
    """Adam learning rate of Q."""
    v_lr: float = 3e-4
    """Adam learning rate of V."""
    policy_lr: float = 3e-4
    """Adam learning rate of the policy (cosine-annealed to 0 over max_steps, as CORL)."""
    policy_weight_decay: float = 0.0
    """L2 weight decay of the policy's Adam."""
    policy_hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """Hidden widths of the Gaussian policy."""
    tanh_mean: bool = True
    """Squash the policy mean with tanh (CORL's Gaussian actor does)."""
    log_std_min: float = -20.0
    """Lower clamp of the policy log-std (CORL: -20)."""
    normalize_obs: bool = True
    """Standardise observations (CORL normalises states for IQL)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("expectile", self.expectile, low=0.0, high=1.0, low_open=True, high_open=True)
        check_range("temperature", self.temperature, low=0.0)
        check_range("gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        check_range("tau", self.tau, low=0.0, high=1.0, low_open=True)
        for name in ("q_lr", "v_lr"):
            check_range(name, getattr(self, name), low=0.0, low_open=True)
