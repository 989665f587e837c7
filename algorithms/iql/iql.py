"""IQL (Kostrikov et al., 2022) on the offline family's machinery (ensembles over seeds, same policy, same loop).

It follows CORL's single-file implementation (corl-team/CORL, algorithms/offline/iql.py): expectile value
regression against the target twin Q, Q regression to r + gamma (1 - d) V(s'), advantage-weighted BC with
exp(beta A) clipped at 100 and a cosine-annealed policy learning rate.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from rlcore.algorithms.offline.config import OfflineConfig
from rlcore.algorithms.offline.ensemble import Batch, EnsembleAlgorithm, as_seed_batch, clip_grad_norm_per_seed
from rlcore.algorithms.offline.losses import per_seed_mean, weighted_bc_loss
from rlcore.algorithms.offline.policy import GaussianPolicy, make_adam
from rlcore.config import check_range
from rlcore.nets import EnsembleMLP, ema_update, seed_generators


@dataclasses.dataclass
class IQLConfig(OfflineConfig):
    """IQL (Kostrikov et al., 2022) with CORL's defaults (corl-team/CORL algorithms/offline/iql.py)."""

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


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """|tau - 1(u < 0)| u^2, elementwise (IQL eq. 5 with u = Q - V)."""
    weight = torch.where(diff > 0, expectile, 1 - expectile)
    return weight * diff**2


class IQL(EnsembleAlgorithm):
    """Implicit Q-learning (Kostrikov et al., 2022) for K seeds at once."""

    def __init__(self, cfg: IQLConfig, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.num_seeds = len(cfg.seed_list)
        gens = seed_generators(cfg.seed_list)
        self.value = EnsembleMLP(obs_dim, cfg.hidden, 1, gens)
        self.q = EnsembleMLP(obs_dim + act_dim, cfg.hidden, 1, gens, heads=2)
        self.policy = GaussianPolicy(obs_dim, act_dim, cfg.policy_hidden, gens, tanh_mean=cfg.tanh_mean,
                                     log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max)
        for m in (self.value, self.q, self.policy):
            m.to(device=device, dtype=dtype)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v_optimizer = make_adam(self.value.parameters(), cfg.v_lr, fused=cfg.fused_optimizer)
        self.q_optimizer = make_adam(self.q.parameters(), cfg.q_lr, fused=cfg.fused_optimizer)
        self.policy_optimizer = make_adam(self.policy.parameters(), cfg.policy_lr, cfg.policy_weight_decay,
                                          fused=cfg.fused_optimizer)
        self.policy_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.policy_optimizer, cfg.max_steps)
        self.steps = 0
        if cfg.compile:
            self.compile_networks()

    def modules(self) -> dict[str, nn.Module]:
        return {"value": self.value, "q": self.q, "q_target": self.q_target, "policy": self.policy}

    def optimizers(self) -> dict[str, Any]:
        return {"v_optimizer": self.v_optimizer, "q_optimizer": self.q_optimizer,
                "policy_optimizer": self.policy_optimizer, "policy_schedule": self.policy_schedule}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        batch = as_seed_batch(batch, self.num_seeds)
        s, a, s2 = batch["observations"], batch["actions"], batch["next_observations"]
        sa = torch.cat([s, a], dim=-1)
        with torch.no_grad():
            next_v = self.value(s2).squeeze(-1).squeeze(1)  # (K, B)
            target_q = self.q_target(sa).squeeze(-1).amin(dim=1)  # (K, B)

        v = self.value(s).squeeze(-1).squeeze(1)
        adv = target_q - v
        v_loss = per_seed_mean(expectile_loss(adv, cfg.expectile)).sum()
        self.v_optimizer.zero_grad(set_to_none=True)
        v_loss.backward()
        v_grad_norm = clip_grad_norm_per_seed(list(self.value.parameters()), cfg.max_grad_norm)
        self.v_optimizer.step()

        targets = batch["rewards"] + cfg.gamma * (1.0 - batch["terminals"].to(v.dtype)) * next_v
        qs = self.q(sa).squeeze(-1)  # (K, 2, B)
        q_loss = per_seed_mean((qs - targets.unsqueeze(1)) ** 2).sum()
        self.q_optimizer.zero_grad(set_to_none=True)
        q_loss.backward()
        q_grad_norm = clip_grad_norm_per_seed(list(self.q.parameters()), cfg.max_grad_norm)
        self.q_optimizer.step()
        ema_update(self.q_target.parameters(), self.q.parameters(), cfg.tau)

        weight = torch.exp(cfg.temperature * adv.detach()).clamp(max=cfg.weight_clip)
        nll = self.policy.nll(s, a)
        policy_loss = weighted_bc_loss(nll, weight)
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        policy_grad_norm = clip_grad_norm_per_seed(list(self.policy.parameters()), cfg.max_grad_norm)
        self.policy_optimizer.step()
        self.policy_schedule.step()
        self.steps += 1
        k = self.num_seeds
        return {"v_loss": v_loss.detach() / k, "q_loss": q_loss.detach() / k, "policy_loss": policy_loss.detach() / k,
                "adv_mean": adv.detach().mean(), "weight_mean": weight.mean(), "v_grad_norm": v_grad_norm.mean(),
                "q_grad_norm": q_grad_norm.mean(), "policy_grad_norm": policy_grad_norm.mean()}
