"""What the offline algorithms share: batches with a leading seed dimension, acting, and state handling."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import nn

from rlcore.errors import ConfigError

Batch = Mapping[str, torch.Tensor]
_PER_FEATURE = ("observations", "next_observations", "actions")


def as_seed_batch(batch: Batch, seeds: int) -> dict[str, torch.Tensor]:
    """Give every array a leading seed dimension: (B, ...) -> (1, B, ...) when training one seed."""
    out = {}
    for key, value in batch.items():
        expected = 3 if key in _PER_FEATURE else 2
        if value.dim() == expected - 1:
            value = value.unsqueeze(0)
        if value.shape[0] != seeds:
            raise ValueError(f"batch['{key}'] has leading size {value.shape[0]}, expected {seeds} seeds")
        out[key] = value
    return out


def clip_grad_norm_per_seed(params: list[torch.Tensor], max_norm: float | None) -> torch.Tensor:
    """Gradient norm of each seed over ``params`` (all with a leading seed dimension), (K,); when ``max_norm`` is
    set, each seed's gradients are scaled down to at most that norm, independently of the other seeds."""
    grads = [p.grad for p in params if p.grad is not None]
    per_tensor = torch.stack([torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1) for g in grads])
    norms = torch.linalg.vector_norm(per_tensor, dim=0)  # no squared copy of the gradients
    if max_norm is not None:
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.reshape(-1, *([1] * (g.dim() - 1))))
    return norms


class Policy(Protocol):
    """What the offline family needs of a policy network: a deterministic ``act`` for K seeds at once, and the
    ``nn.Module`` state that ``checkpoints/best`` saves (a Gaussian policy, a deterministic actor, ...)."""

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """(K, N, obs_dim) -> (K, N, act_dim) actions in [-1, 1]."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


class EnsembleAlgorithm:
    """Base of the offline algorithms: K seeds trained together, a ``policy`` that acts (any :class:`Policy`), and
    named modules and optimisers that make up the checkpointed state."""

    num_seeds: int
    policy: Policy
    steps: int
    console_keys: tuple[str, ...] = ()
    """Training metrics shown beside the progress bar."""

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def compile_networks(self) -> None:
        """``torch.compile`` every network in place (``cfg.compile``); parameters and state-dict keys are unchanged."""
        device = next(p for m in self.modules().values() for p in m.parameters()).device
        if device.type == "cpu" and not shutil.which(os.environ.get("CXX", "g++")):
            raise ConfigError("compile=true on CPU needs a C++ compiler (g++, or $CXX): install one "
                              "(e.g. apt-get install g++) or set compile=false")
        # O-DICE backpropagates twice through V(s) (forward and mean-term gradients, retain_graph=True), which
        # compiled backwards with donated buffers refuse; torch's error message names this switch as the fix.
        torch._functorch.config.donated_buffer = False
        for module in self.modules().values():
            module.compile()

    def optimizers(self) -> dict[str, Any]:
        """Optimisers and schedulers (anything with state_dict / load_state_dict)."""
        raise NotImplementedError

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions in [-1, 1] from ``policy.act`` (the Gaussian policy: its mean, clipped).

        One seed: (..., obs_dim) -> (..., act_dim); K seeds: (K, N, obs_dim) -> (K, N, act_dim).
        """
        if self.num_seeds == 1:
            lead = obs.shape[:-1]
            return self.policy.act(obs.reshape(1, -1, obs.shape[-1])).reshape(*lead, -1)
        if obs.dim() != 3 or obs.shape[0] != self.num_seeds:
            raise ValueError(f"with {self.num_seeds} seeds, observations must be (K={self.num_seeds}, N, obs_dim); "
                             f"got {tuple(obs.shape)}")
        return self.policy.act(obs)

    def state_dict(self) -> dict[str, Any]:
        return {**{k: m.state_dict() for k, m in self.modules().items()},
                **{k: o.state_dict() for k, o in self.optimizers().items()}, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state[k])
        self.steps = int(state["steps"])
