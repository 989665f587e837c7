"""Fit an MLP to a fixed random teacher network with Adam: deterministic, quick, and enough to exercise the
loop, logging, checkpoints and resume end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rlcore.config import check_range
from rlcore.run import TrainConfig


@dataclasses.dataclass
class ToyConfig(TrainConfig):
    """Toy regression settings (plus the shared run settings)."""

    dim: int = 8
    """Input dimension."""
    hidden: int = 64
    """Hidden width of the student MLP."""
    n_samples: int = 4096
    """Size of the fixed dataset."""
    batch_size: int = 64
    """Samples per update."""
    lr: float = 1e-3
    """Adam learning rate."""
    nan_at_step: int = 0
    """Inject a NaN into the loss at this step (0: never); for testing the non-finite guard."""
    max_steps: int = 300
    """Number of update steps."""
    log_every: int = 20
    """Log every this many steps."""
    eval_every: int = 100
    """Evaluate every this many steps."""
    ckpt_every: int = 10
    """Checkpoint every this many steps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dim", "hidden", "n_samples", "batch_size"):
            check_range(name, getattr(self, name), low=1)
        check_range("lr", self.lr, low=0.0, low_open=True)


def make_dataset(cfg: ToyConfig) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(10_000 + cfg.seed)
    x = torch.randn(cfg.n_samples, cfg.dim, generator=g)
    teacher = torch.randn(cfg.dim, 1, generator=g)
    y = torch.sin(x @ teacher) + 0.1 * torch.randn(cfg.n_samples, 1, generator=g)
    return x, y


class ToySampler:
    """Uniform minibatches with its own generator (its state goes into checkpoints)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.x), (self.batch_size,), generator=self.generator)
        return self.x[idx], self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class ToyRegression:
    def __init__(self, cfg: ToyConfig):
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.model = nn.Sequential(nn.Linear(cfg.dim, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps = 0

    def update(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, y = batch
        self.steps += 1
        loss = torch.mean((self.model(x) - y) ** 2)
        if self.steps == self.cfg.nan_at_step:
            loss = loss * float("nan")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        mse = torch.mean((self.model(x) - y) ** 2).item()
        return {"mse": mse, "score": -mse}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]
