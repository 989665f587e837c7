"""O-DICE: V-DICE value learning with the orthogonal-gradient update, then weighted behaviour cloning.

One object trains K seeds at once: every network is an ensemble over seeds (and over the twin value heads), the
loss is the sum of the seeds' losses, and Adam is elementwise, so each seed follows exactly the trajectory it
would follow alone. An update takes no host sync: metrics come back as 0-dim tensors.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from rlcore.algorithms.odice.config import ODICEConfig
from rlcore.algorithms.odice.losses import policy_weight, value_objective
from rlcore.algorithms.offline.ensemble import Batch, EnsembleAlgorithm, as_seed_batch, clip_grad_norm_per_seed
from rlcore.algorithms.offline.losses import drop_zero_weight_rows, weighted_bc_loss
from rlcore.algorithms.offline.nets import EnsembleMLP, ema_update, seed_generators
from rlcore.algorithms.offline.policy import GaussianPolicy, make_adam
from rlcore.geometry import project_orthogonal


class ODICE(EnsembleAlgorithm):
    """O-DICE for K seeds (``cfg.seed_list``), observations of size ``obs_dim`` and actions of size ``act_dim``.

    Example::

        algo = ODICE(ODICEConfig(seed=0), obs_dim=11, act_dim=3)
        metrics = algo.update({"observations": s, "actions": a, "rewards": r, "next_observations": s2,
                               "terminals": d})          # (B, ...) arrays, or (K, B, ...) for K seeds
        action = algo.act(obs)                           # (N, obs_dim) -> (N, act_dim), mean clipped to [-1, 1]
    """

    console_keys = ("train/v_loss", "train/policy_loss")

    def __init__(self, cfg: ODICEConfig, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.num_seeds = len(cfg.seed_list)
        generators = seed_generators(cfg.seed_list)
        self.value = EnsembleMLP(obs_dim, cfg.v_hidden, 1, generators, heads=2 if cfg.twin_v else 1,
                                 layer_norm=cfg.v_layer_norm)
        self.policy = GaussianPolicy(obs_dim, act_dim, cfg.policy_hidden, generators, tanh_mean=cfg.tanh_mean,
                                     log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max)
        self.value.to(device=device, dtype=dtype)
        self.policy.to(device=device, dtype=dtype)
        self.value_target = copy.deepcopy(self.value).requires_grad_(False)
        self.value_params = list(self.value.parameters())
        self.target_params = list(self.value_target.parameters())
        self.value_optimizer = make_adam(self.value_params, cfg.v_lr, fused=cfg.fused_optimizer)
        self.policy_params = list(self.policy.parameters())
        self.policy_optimizer = make_adam(self.policy_params, cfg.policy_lr, cfg.policy_weight_decay,
                                          fused=cfg.fused_optimizer)
        self.skip_zero_weight_rows = cfg.skip_zero_weight_rows == "on" or (
            cfg.skip_zero_weight_rows == "auto" and torch.device(device).type == "cpu")
        self.steps = 0
        if cfg.compile:
            self.compile_networks()

    # ------------------------------------------------------------------------------------------------------------
    # value learning

    def _targets(self, obs: torch.Tensor) -> torch.Tensor:
        """Vbar(obs): the target network's minimum over heads, (K, N) -> broadcastable (K, 1, N)."""
        with torch.no_grad():
            return self.value_target(obs).squeeze(-1).amin(dim=1, keepdim=True)

    def value_gradients(self, batch: Batch) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Gradients of the value objective under ``cfg.grad_rule``, one per V parameter, plus diagnostics.

        Returns ``(grads, aux)``; ``aux["residual"]`` (K, H, B) is the residual the policy weights come from.
        """
        cfg = self.cfg
        s, s_next = batch["observations"], batch["next_observations"]
        r = batch["rewards"].unsqueeze(1)
        mask = (cfg.gamma * (1.0 - batch["terminals"].to(r.dtype))).unsqueeze(1)
        b = s.shape[1]
        v_next = target_v = target_v_next = None
        if cfg.grad_rule == "true":  # one online forward over [s; s'], no target network
            both = self.value(torch.cat([s, s_next], dim=1)).squeeze(-1)
            v, v_next = both[..., :b], both[..., b:]
        else:
            target_v, target_v_next = self._targets(torch.cat([s, s_next], dim=1)).split(b, dim=-1)
            v = self.value(s).squeeze(-1)
            if cfg.grad_rule == "orthogonal":
                v_next = self.value(s_next).squeeze(-1)
        terms = value_objective(r, mask, v, v_next, target_v, target_v_next, lam=cfg.lam, eta=cfg.eta,
                                divergence=cfg.divergence, grad_rule=cfg.grad_rule)
        loss = terms.loss()
        aux: dict[str, torch.Tensor] = {}
        if terms.backward_term is None:
            grads = list(torch.autograd.grad(loss, self.value_params))
        else:
            g_forward = torch.autograd.grad(terms.forward_term.sum(), self.value_params, retain_graph=True)
            g_mean = torch.autograd.grad(terms.mean_term.sum(), self.value_params)
            g_backward = torch.autograd.grad(terms.backward_term.sum(), self.value_params)
            g_backward_perp, coef = self._project(list(g_backward), list(g_forward))
            grads = [m + f + p for m, f, p in zip(g_mean, g_forward, g_backward_perp)]
            aux["parallel_coef"] = coef.mean()
            aux["backward_residual_mean"] = terms.backward_residual.detach().mean()
        aux.update(residual=terms.residual.detach(), v_loss=loss.detach() / self.num_seeds,
                   v_mean=v.detach().mean())
        return grads, aux

    def _project(self, g_backward: list[torch.Tensor], g_forward: list[torch.Tensor]
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """g_b - c g_f with c = <g_f, g_b> / max(|g_f|^2, 1e-10) per seed: globally or layer by layer."""
        if self.cfg.projection == "global":
            return project_orthogonal(g_backward, g_forward, eps=1e-10, batch_dims=1, return_coef=True)
        index = {id(p): i for i, p in enumerate(self.value_params)}
        out: list[torch.Tensor | None] = [None] * len(g_backward)
        coefs = []
        for group in self.value.layer_groups():
            ids = [index[id(p)] for p in group]
            projected, coef = project_orthogonal([g_backward[i] for i in ids], [g_forward[i] for i in ids],
                                                 eps=1e-10, batch_dims=1, return_coef=True)
            for i, g in zip(ids, projected):
                out[i] = g
            coefs.append(coef)
        return out, torch.stack(coefs).mean(0)  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------------------------
    # one training step

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One V step, the target EMA, then one weighted-BC policy step on the same batch."""
        cfg = self.cfg
        batch = as_seed_batch(batch, self.num_seeds)
        grads, aux = self.value_gradients(batch)
        for p, g in zip(self.value_params, grads):
            p.grad = g
        v_grad_norm = clip_grad_norm_per_seed(self.value_params, cfg.max_grad_norm)
        self.value_optimizer.step()
        ema_update(self.target_params, self.value_params, cfg.tau)

        residual = aux.pop("residual")
        weight = policy_weight(residual, cfg.divergence, cfg.weight_form, cfg.weight_clip).mean(dim=1)
        obs, actions, batch_size = batch["observations"], batch["actions"], weight.shape[1]
        active_weight = weight
        if self.skip_zero_weight_rows:
            active_weight, obs, actions = drop_zero_weight_rows(weight, obs, actions)
        nll = self.policy.nll(obs, actions)
        policy_loss = weighted_bc_loss(nll, active_weight, batch_size)
        self.policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        policy_grad_norm = clip_grad_norm_per_seed(self.policy_params, cfg.max_grad_norm)
        self.policy_optimizer.step()
        self.steps += 1
        return {
            "v_grad_norm": v_grad_norm.mean(),
            "policy_grad_norm": policy_grad_norm.mean(),
            **aux,
            "residual_mean": residual.mean(),
            "residual_max": residual.max(),
            "weight_mean": weight.mean(),
            "weight_max": weight.max(),
            "weight_nonzero": (weight > 0).to(weight.dtype).mean(),
            "policy_loss": policy_loss.detach() / self.num_seeds,
        }

    def modules(self) -> dict[str, nn.Module]:
        return {"value": self.value, "value_target": self.value_target, "policy": self.policy}

    def optimizers(self) -> dict[str, Any]:
        return {"value_optimizer": self.value_optimizer, "policy_optimizer": self.policy_optimizer}
