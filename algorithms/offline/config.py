"""Configs shared by the offline family: data, preprocessing, policy and evaluation settings (``OfflineConfig``)
and offline imitation settings (``ImitationConfig``).

Defaults are the O-DICE reference implementation's RL settings (maoliyuan/ODICE-Pytorch, configs/offline_RL.yaml
and main_odice_rl.py; see docs/odice.md). Where the paper and the code differ, the code's behaviour is the default
and the textbook variant is an option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, Literal

from rlcore.config import check_range
from rlcore.errors import ConfigError
from rlcore.run import TrainConfig


@dataclasses.dataclass
class OfflineConfig(TrainConfig):
    """Data, preprocessing, policy network and evaluation settings shared by O-DICE, BC and IQL."""

    auto_reward_transform: ClassVar[Mapping[str, str]] = {"locomotion": "return_range", "antmaze": "antmaze"}
    """What reward_transform=auto means per task family (other families: none). An algorithm's config overrides
    it (IQL: antmaze_iql), so data preparation knows no algorithm by name."""

    task: str | None = None
    """D4RL dataset name (e.g. hopper-medium-v2): picks the simulator, reference scores and preprocessing."""
    dataset: str | None = None
    """Path to a D4RL-layout HDF5 file or a local Minari dataset id (default: resolved from `task`)."""
    env: str | None = None
    """Gymnasium env id to evaluate in when no D4RL `task` is given (e.g. Pendulum-v1)."""
    ref_min_return: float | None = None
    """Return that scores 0 for `env` (normalised score = 100 (R - min) / (max - min)); D4RL tasks know theirs."""
    ref_max_return: float | None = None
    """Return that scores 100 for `env`."""
    reward_transform: Literal["auto", "none", "return_range", "antmaze", "antmaze_iql"] = "auto"
    """auto: return_range for MuJoCo locomotion (r * 1000 / (max - min episode return)), antmaze for AntMaze
    (r -> 0 if r == 1 else -3, the O-DICE reference), none otherwise; antmaze_iql is IQL's r - 1."""
    max_episode_steps: int = 1000
    """Episode length used to split episodes for the return range (D4RL locomotion: 1000)."""
    normalize_obs: bool = False
    """Standardise observations with the dataset mean/std (std + 1e-3); statistics are saved and used at eval."""
    batch_size: int = 256
    """Transitions per update."""
    seeds: list[int] | None = None
    """Train these seeds vectorised in one process (e.g. [0, 1, 2, 3, 4]); default: just `seed`."""
    policy_hidden: list[int] = dataclasses.field(default_factory=lambda: [1024, 1024])
    """Hidden widths of the Gaussian policy MLP (ReLU)."""
    tanh_mean: bool = False
    """Squash the policy mean with tanh (the sample is not squashed)."""
    log_std_min: float = -5.0
    """Lower clamp of the state-independent policy log-std."""
    log_std_max: float = 2.0
    """Upper clamp of the state-independent policy log-std."""
    policy_lr: float = 2e-4
    """Adam learning rate of the policy."""
    policy_weight_decay: float = 1e-4
    """L2 weight decay of the policy's Adam (added to the gradient, as torch.optim.Adam does)."""
    eval_episodes: int = 10
    """Episodes per evaluation (deterministic policy: the mean action, clipped to [-1, 1])."""
    eval_every: int = 5000
    """Evaluate every this many steps (and at the last step)."""
    max_steps: int = 1_000_000
    """Number of update steps."""
    log_every: int = 1000
    """Log training metrics every this many steps."""
    ckpt_every: int = 50_000
    """Checkpoint every this many steps (and at the last step)."""
    max_grad_norm: float | None = None
    """Clip each network's gradient norm per seed to this value (None: no clipping; norms are logged either way)."""
    threads: int = 1
    """torch intra-op threads (the reference uses 1: these small networks gain little from more on CPU, and
    more threads than free cores slow them down several times)."""
    fused_optimizer: bool = True
    """Use torch's fused Adam kernels (same maths as the for-loop Adam, fewer passes over memory)."""
    compile: bool = False
    """torch.compile every network (inductor): fuses each layer's LayerNorm/ReLU passes, forward and backward.
    Same maths up to float rounding; costs a warm-up of tens of seconds; on CPU it needs a C++ compiler."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_episodes", self.eval_episodes, low=1)
        check_range("max_episode_steps", self.max_episode_steps, low=1)
        check_range("policy_lr", self.policy_lr, low=0.0, low_open=True)
        check_range("policy_weight_decay", self.policy_weight_decay, low=0.0)
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        if self.log_std_min >= self.log_std_max:
            raise ConfigError(f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})")
        if not self.policy_hidden or min(self.policy_hidden) < 1:
            raise ConfigError(f"policy_hidden must list positive widths, got {self.policy_hidden}")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}")
        if (self.ref_min_return is None) != (self.ref_max_return is None):
            raise ConfigError("give both ref_min_return and ref_max_return, or neither")
        if self.ref_min_return is not None and self.ref_min_return >= self.ref_max_return:
            raise ConfigError(f"ref_min_return ({self.ref_min_return}) must be below ref_max_return "
                              f"({self.ref_max_return})")

    @property
    def seed_list(self) -> list[int]:
        """The seeds trained in this run (``seeds`` or ``[seed]``)."""
        return list(self.seeds) if self.seeds is not None else [self.seed]



@dataclasses.dataclass
class ImitationConfig(OfflineConfig):
    """Offline imitation learning settings (O-DICE uses them; ``il_mode=none`` is plain offline RL)."""

    il_mode: Literal["none", "single_trajectory", "discriminator"] = "none"
    """Offline imitation: single_trajectory (reference: the T-th expert trajectory, rewards set to 0) or
    discriminator (expert + mixed data, reward log D/(1 - D) from a discriminator trained first)."""
    il_trajectory: int = 1
    """T for il_mode=single_trajectory: index of the trajectory taken from `dataset` (0-based, as the reference)."""
    expert_dataset: str | None = None
    """il_mode=discriminator: the expert demonstrations (HDF5); `dataset` is the large mixed dataset."""
    expert_trajectories: int = 1
    """il_mode=discriminator: how many expert trajectories to use (first ones of `expert_dataset`)."""
    disc_hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """il_mode=discriminator: hidden widths of the state-action discriminator."""
    disc_steps: int = 10_000
    """il_mode=discriminator: discriminator training steps before O-DICE starts."""
    disc_lr: float = 3e-4
    """il_mode=discriminator: Adam learning rate of the discriminator."""
    disc_grad_penalty: float = 10.0
    """il_mode=discriminator: weight of the gradient penalty on expert/mixed interpolates (DemoDICE)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("il_trajectory", self.il_trajectory, low=0)
        check_range("expert_trajectories", self.expert_trajectories, low=1)
        check_range("disc_steps", self.disc_steps, low=0)
        if self.il_mode == "discriminator" and self.expert_dataset is None:
            raise ConfigError("il_mode=discriminator needs expert_dataset (the expert demonstrations file); "
                              "`dataset` is the mixed data")
        if self.il_mode != "discriminator" and self.expert_dataset is not None:
            raise ConfigError("expert_dataset is only used with il_mode=discriminator; set il_mode or drop it")


