"""A GRPO trainer's state: trainable parameters, checkpoints (with optimiser and schedule), export, checksums."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlcore.errors import ConfigError


class TrainerState:
    """Mixin of :class:`rlcore.algorithms.grpo.trainer.GRPOTrainer` for what a checkpoint holds; expects ``model``,
    ``optimizer``, ``scheduler``, ``steps``, ``tokenizer``, ``cfg`` and ``_engine_stale``."""

    model: Any
    optimizer: Any
    scheduler: Any
    tokenizer: Any
    cfg: Any
    steps: int
    _engine_stale: bool

    def trainable_state(self) -> dict[str, Tensor]:
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def state_dict(self) -> dict[str, Any]:
        """Trainable parameters, optimiser, schedule and step count (frozen weights reload from the model path)."""
        return {"model": self.trainable_state(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "steps": self.steps}

    @torch.no_grad()
    def load_trainable(self, params: Mapping[str, Tensor]) -> None:
        own = dict(self.model.named_parameters())
        missing = [n for n, p in own.items() if p.requires_grad and n not in params]
        if missing or any(n not in own for n in params):
            raise ConfigError(f"checkpoint parameters do not match the model ({missing[:3] or list(params)[:3]}); "
                              "resume with the same model and LoRA settings")
        for name, value in params.items():
            own[name].copy_(value)
        self._engine_stale = True

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_trainable(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])

    def parameter_checksum(self) -> Tensor:
        """float64 sum and sum of squares of the trainable parameters (to check processes agree)."""
        flat = [p.detach().double().reshape(-1) for p in self.trainable_state().values()]
        return torch.stack([sum(x.sum() for x in flat), sum(x.square().sum() for x in flat)])

    def export(self, directory: Path) -> None:
        """Write the policy (LoRA merged into a copy) and its tokenizer with ``save_pretrained``."""
        model = self.model
        if self.cfg.lora_rank:
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

