"""The GRPO trainer's policy: model resolution, LoRA, the frozen reference, optimiser and learning-rate schedule."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.rollouts import HiddenStates
from rlcore.distributed import Distributed
from rlcore.errors import ConfigError
from rlcore.llm import load_policy
from rlcore.llm.policy import builtin_model


def resolve_model(cfg: GRPOConfig) -> str | Path:
    """'tiny-arith' -> the tiny Qwen3's cached warm start on the configured toy task, a built-in name ('tiny',
    'smollm2-135m') -> its cached directory, else ``cfg.model`` unchanged."""
    if cfg.model == "tiny-arith":
        from rlcore.algorithms.grpo.warmstart import arith_warmstart

        return arith_warmstart(kinds=tuple(cfg.arith_kinds), max_number=cfg.arith_max_number)
    return builtin_model(cfg.model) or cfg.model


def lr_factor(step: int, total: int, warmup_ratio: float, schedule: str) -> float:
    """Learning-rate multiplier after ``step`` optimiser steps: linear warm-up, then constant or cosine to 0.

    >>> [round(lr_factor(s, 10, 0.2, "cosine"), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    warm = int(round(total * warmup_ratio))
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_lora(model: Any, cfg: GRPOConfig) -> Any:
    """``model`` with peft LoRA adapters of rank ``cfg.lora_rank`` on ``cfg.lora_target_modules``."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ConfigError("lora_rank > 0 needs peft: pip install 'rlcore[llm]'") from e
    targets: str | list[str] = cfg.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                            target_modules=targets, task_type="CAUSAL_LM"))


@torch.no_grad()
def load_trainable(model: Any, params: Mapping[str, torch.Tensor]) -> None:
    """Copy a checkpoint's trainable parameters (``GRPOTrainer.trainable_state``: name -> tensor) into ``model``
    (with LoRA adapters when the run had them); a one-line error when the names do not match."""
    own = dict(model.named_parameters())
    missing = [n for n, p in own.items() if p.requires_grad and n not in params]
    if missing or any(n not in own for n in params):
        raise ConfigError(f"checkpoint parameters do not match the model ({missing[:3] or list(params)[:3]}); "
                          "use the same model and LoRA settings")
    for name, value in params.items():
        own[name].copy_(value)


@dataclass
class Policy:
    """What :func:`build_policy` returns."""

    model_path: str | Path
    model: Any
    """The causal LM being trained (with LoRA adapters when ``lora_rank > 0``)."""
    tokenizer: Any
    reference: HiddenStates | None
    """Frozen copy for the KL penalty (None without one, or with LoRA: the base model is the reference)."""
    policy: Any
    """``HiddenStates(model)`` prepared for this launch (DDP/FSDP-wrapped when distributed)."""
    optimizer: Any
    scheduler: torch.optim.lr_scheduler.LambdaLR


def build_policy(cfg: GRPOConfig, dist: Distributed) -> Policy:
    """Load the policy in fp32 on this process's device, add LoRA or a frozen reference, and prepare AdamW with
    warm-up and the configured schedule."""
    model_path = resolve_model(cfg)
    model, tokenizer = load_policy(model_path, dtype="float32", device=str(dist.device))
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    reference = None
    if cfg.lora_rank:
        model = apply_lora(model, cfg)  # the reference is the base model: adapters disabled
    elif cfg.beta > 0:
        reference = HiddenStates(copy.deepcopy(model)).eval().requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    policy, prepared = dist.prepare(HiddenStates(model), optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
        s, cfg.optimizer_steps, cfg.warmup_ratio, cfg.lr_schedule))
    return Policy(model_path, model, tokenizer, reference, policy, prepared, scheduler)
