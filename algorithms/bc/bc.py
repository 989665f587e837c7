"""Behaviour cloning: the offline family's Gaussian policy fitted by maximum likelihood to the dataset actions."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rlcore.algorithms.bc.config import BCConfig
from rlcore.algorithms.bc.losses import bc_loss
from rlcore.algorithms.offline.ensemble import Batch, EnsembleAlgorithm, as_seed_batch, clip_grad_norm_per_seed
from rlcore.algorithms.offline.nets import seed_generators
from rlcore.algorithms.offline.policy import GaussianPolicy, make_adam


class BC(EnsembleAlgorithm):
    """Behaviour cloning: minimise -log pi(a|s) over the dataset (weight 1 for every transition)."""

    console_keys = ("train/policy_loss",)

    def __init__(self, cfg: BCConfig, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.num_seeds = len(cfg.seed_list)
        self.policy = GaussianPolicy(obs_dim, act_dim, cfg.policy_hidden, seed_generators(cfg.seed_list),
                                     tanh_mean=cfg.tanh_mean, log_std_min=cfg.log_std_min,
                                     log_std_max=cfg.log_std_max).to(device=device, dtype=dtype)
        self.optimizer = make_adam(self.policy.parameters(), cfg.policy_lr, cfg.policy_weight_decay,
                                   fused=cfg.fused_optimizer)
        self.steps = 0
        if cfg.compile:
            self.compile_networks()

    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}

    def optimizers(self) -> dict[str, Any]:
        return {"policy_optimizer": self.optimizer}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        batch = as_seed_batch(batch, self.num_seeds)
        nll = self.policy.nll(batch["observations"], batch["actions"])
        loss = bc_loss(nll).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = clip_grad_norm_per_seed(list(self.policy.parameters()), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.steps += 1
        return {"policy_loss": loss.detach() / self.num_seeds, "policy_grad_norm": grad_norm.mean()}
