"""Ensembles of small MLPs evaluated as batched matmuls: K seeds x H heads in one call.

Every member is initialised exactly like ``torch.nn.Linear`` (uniform in +-1/sqrt(fan_in) for weight and bias),
drawn from its own seed's generator, so member (k, h) gets the same initial weights whether it is trained alone or
next to other seeds. That is what lets K seeds train vectorised in one process and still equal K separate runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def seed_generators(seeds: Sequence[int], salt: int = 0) -> list[torch.Generator]:
    """One CPU generator per seed (``salt`` separates streams used for different purposes)."""
    return [torch.Generator().manual_seed(int(s) * 1_000_003 + salt) for s in seeds]


class EnsembleMLP(nn.Module):
    """``len(generators) * heads`` independent MLPs ``in_dim -> hidden... -> out_dim`` (ReLU).

    Input ``x``: (K, N, in_dim), shared by the H heads of each seed. Output: (K, H, N, out_dim).
    ``layer_norm`` puts a LayerNorm (affine, eps 1e-5) after every hidden Linear, before the ReLU.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, generators: Sequence[torch.Generator],
                 heads: int = 1, layer_norm: bool = False):
        super().__init__()
        self.seeds, self.heads = len(generators), heads
        dims = [in_dim, *hidden, out_dim]
        self.layer_norm = layer_norm
        # draw each seed's heads and layers in a fixed order from that seed's generator
        per_seed = [[[_linear_init(dims[i], dims[i + 1], g) for i in range(len(dims) - 1)] for _ in range(heads)]
                    for g in generators]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norm_weights = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        for i in range(len(dims) - 1):
            w = torch.stack([torch.stack([per_seed[k][h][i][0] for h in range(heads)]) for k in range(self.seeds)])
            b = torch.stack([torch.stack([per_seed[k][h][i][1] for h in range(heads)]) for k in range(self.seeds)])
            self.weights.append(nn.Parameter(w))  # (K, H, in, out)
            self.biases.append(nn.Parameter(b))  # (K, H, out)
            if layer_norm and i < len(dims) - 2:
                self.norm_weights.append(nn.Parameter(torch.ones(self.seeds, heads, dims[i + 1])))
                self.norm_biases.append(nn.Parameter(torch.zeros(self.seeds, heads, dims[i + 1])))

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped by layer (weight, bias and, when present, that layer's LayerNorm)."""
        groups = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            group = [w, b]
            if self.layer_norm and i < len(self.norm_weights):
                group += [self.norm_weights[i], self.norm_biases[i]]
            groups.append(group)
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, h = self.seeds, self.heads
        n = x.shape[-2]
        x = x.unsqueeze(1).expand(k, h, n, x.shape[-1]).reshape(k * h, n, x.shape[-1])
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b.reshape(k * h, 1, -1), x, w.reshape(k * h, w.shape[-2], w.shape[-1]))
            if i < last:
                if self.layer_norm:
                    g, beta = self.norm_weights[i], self.norm_biases[i]
                    x = F.layer_norm(x, x.shape[-1:]) * g.reshape(k * h, 1, -1) + beta.reshape(k * h, 1, -1)
                x = F.relu(x)
        return x.reshape(k, h, n, -1)


def _linear_init(fan_in: int, fan_out: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.Linear's default initialisation, stored as (in, out)."""
    bound = 1.0 / math.sqrt(fan_in)
    weight = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
    return weight.t().contiguous(), bias


@torch.no_grad()
def ema_update(target: Sequence[torch.Tensor], online: Sequence[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau online, in place (the reference implementations' order of operations)."""
    target, online = list(target), list(online)
    torch._foreach_mul_(target, 1.0 - tau)
    torch._foreach_add_(target, online, alpha=tau)
