"""Gaussian policy with a state-independent log-std, for K seeds at once (O-DICE, BC and IQL share it)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rlcore.algorithms.offline.losses import gaussian_nll
from rlcore.algorithms.offline.nets import EnsembleMLP


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(mu(s), diag(sigma^2)); mu is an MLP (optionally tanh-squashed), log sigma a free vector.

    Observations (K, B, obs_dim) -> mean (K, B, act_dim); log-std (K, act_dim) clamped to
    [log_std_min, log_std_max]. Acting uses the mean clipped to [-1, 1] (the reference's deterministic action).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], generators: Sequence[torch.Generator],
                 tanh_mean: bool = False, log_std_min: float = -5.0, log_std_max: float = 2.0):
        super().__init__()
        self.net = EnsembleMLP(obs_dim, hidden, act_dim, generators)
        self.log_std = nn.Parameter(torch.zeros(len(generators), act_dim))
        self.tanh_mean = tanh_mean
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.net(obs).squeeze(1)
        if self.tanh_mean:
            mean = torch.tanh(mean)
        return mean, self.log_std.clamp(self.log_std_min, self.log_std_max)

    def nll(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """-log pi(actions | obs): (K, B)."""
        mean, log_std = self(obs)
        return gaussian_nll(mean, log_std, actions)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action: the mean clipped to [-1, 1]; (K, N, obs_dim) -> (K, N, act_dim)."""
        return self(obs)[0].clamp(-1.0, 1.0)


def make_adam(params: Sequence[nn.Parameter], lr: float, weight_decay: float = 0.0,
              fused: bool = True) -> torch.optim.Adam:
    """torch.optim.Adam, with the fused kernel where the device supports it (same update rule)."""
    params = list(params)
    device_type = params[0].device.type
    use_fused = fused and device_type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=use_fused or None)
