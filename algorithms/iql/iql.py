"""IQL (Kostrikov et al., 2022) on the offline family's machinery (ensembles over seeds, same policy, same loop).

It follows CORL's single-file implementation (corl-team/CORL, algorithms/offline/iql.py): expectile value
regression against the target twin Q, Q regression to r + gamma (1 - d) V(s'), advantage-weighted BC with
exp(beta A) clipped at 100 and a cosine-annealed policy learning rate. The losses are in ``losses.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from rlcore.algorithms.iql.config import IQLConfig
from rlcore.algorithms.iql.losses import advantage_weights, q_loss, value_loss
from rlcore.algorithms.offline.ensemble import Batch, EnsembleAlgorithm, as_seed_batch, clip_grad_norm_per_seed
from rlcore.algorithms.offline.losses import weighted_bc_loss
from rlcore.algorithms.offline.nets import EnsembleMLP, ema_update, seed_generators
from rlcore.algorithms.offline.policy import GaussianPolicy, make_adam


class IQL(EnsembleAlgorithm):
    """Implicit Q-learning (Kostrikov et al., 2022) for K seeds at once."""

    console_keys = ("train/v_loss", "train/policy_loss")

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

        v_loss, adv = value_loss(target_q, self.value(s).squeeze(-1).squeeze(1), cfg.expectile)
        v_loss = v_loss.sum()
        self.v_optimizer.zero_grad(set_to_none=True)
        v_loss.backward()
        v_grad_norm = clip_grad_norm_per_seed(list(self.value.parameters()), cfg.max_grad_norm)
        self.v_optimizer.step()

        loss_q = q_loss(self.q(sa).squeeze(-1), batch["rewards"], batch["terminals"], next_v, cfg.gamma).sum()
        self.q_optimizer.zero_grad(set_to_none=True)
        loss_q.backward()
        q_grad_norm = clip_grad_norm_per_seed(list(self.q.parameters()), cfg.max_grad_norm)
        self.q_optimizer.step()
        ema_update(self.q_target.parameters(), self.q.parameters(), cfg.tau)

        weight = advantage_weights(adv, cfg.temperature, cfg.weight_clip)
        nll = self.policy.nll(s, a)
        policy_loss = weighted_bc_loss(nll, weight)
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        policy_grad_norm = clip_grad_norm_per_seed(list(self.policy.parameters()), cfg.max_grad_norm)
        self.policy_optimizer.step()
        self.policy_schedule.step()
        self.steps += 1
        k = self.num_seeds
        return {"v_loss": v_loss.detach() / k, "q_loss": loss_q.detach() / k, "policy_loss": policy_loss.detach() / k,
                "adv_mean": adv.detach().mean(), "weight_mean": weight.mean(), "v_grad_norm": v_grad_norm.mean(),
                "q_grad_norm": q_grad_norm.mean(), "policy_grad_norm": policy_grad_norm.mean()}
