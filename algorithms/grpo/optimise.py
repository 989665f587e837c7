"""The PPO part of a GRPO step: epochs over the step's rollouts in mini-batches, one optimiser step each.

Every process holds the whole (gathered) batch and takes its share of each mini-batch, in micro-batches with
gradient accumulation; the loss is normalised by the mini-batch's global token or sequence count, so the sum of the
micro-batch gradients over processes is exactly the mini-batch gradient and all processes keep identical
parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.losses import grpo_loss, loss_units
from rlcore.algorithms.grpo.rollouts import Rollouts, sequence_pass
from rlcore.distributed import Distributed
from rlcore.llm import lm_head_weight


def gather_rollouts(batch: Rollouts, dist: Distributed, pad_id: int) -> Rollouts:
    """Every process's rollouts, concatenated in rank order (= the step's global prompt order); token ids are
    padded with ``pad_id``, prompts on the left, everything else with 0 / False."""
    if dist.world_size == 1:
        return batch
    out: dict[str, Tensor | None] = {}
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        pad = pad_id if f.name.endswith("_ids") else 0
        out[f.name] = None if value is None else dist.gather_rows(value, pad, pad_first=f.name.startswith("prompt"))
    return Rollouts(**out)


def ppo_epochs(batch: Rollouts, *, cfg: GRPOConfig, dist: Distributed, policy: Any, model: Any, optimizer: Any,
               scheduler: Any) -> dict[str, Tensor]:
    """``cfg.ppo_epochs`` passes over the global ``batch`` (one optimiser step per ``mini_batch_size`` sequences,
    none for a mini-batch without any token in the loss); returns the loss metrics, the mean gradient norm and
    the last learning rate, the same on every process and for any number of processes.

    ``pg_loss`` is each mini-batch's loss (the sum of its micro-batch parts over processes: each part is already
    divided by the whole mini-batch's units), averaged over mini-batches weighted by their tokens; the other loss
    metrics (token means) are averaged over all tokens of the step.
    """
    share = cfg.mini_batch_size // dist.world_size
    weight = lm_head_weight(model)
    totals: dict[str, Tensor] = {}
    tokens = torch.zeros((), device=dist.device)
    step_tokens = torch.zeros((), device=dist.device)
    grad_norms = []
    for _ in range(cfg.ppo_epochs):
        for start in range(0, len(batch), cfg.mini_batch_size):
            mini_mask = batch.select(slice(start, start + cfg.mini_batch_size)).loss_mask()
            units = loss_units(mini_mask, cfg.aggregation)
            if not bool(units):  # nothing of it enters the loss (filtered, masked): no optimiser step at all
                continue
            mini_tokens = mini_mask.sum().to(dist.device)
            first = start + dist.rank * share
            micro = list(range(first, first + share, cfg.micro_batch_size))
            for j, lo in enumerate(micro):
                part = batch.select(slice(lo, min(lo + cfg.micro_batch_size, first + share)))
                with dist.no_sync(policy, skip=j < len(micro) - 1):
                    out = sequence_pass(policy, part, weight, temperature=cfg.temperature, autocast=dist.autocast)
                    mask = part.loss_mask()
                    loss, m = grpo_loss(
                        out.logprobs, part.old_logprobs, part.advantages, mask, ref_logprobs=part.ref_logprobs,
                        entropy=out.entropy, clip_low=cfg.clip_eps, clip_high=cfg.clip_eps_high, beta=cfg.beta,
                        entropy_coef=cfg.entropy_coef, aggregation=cfg.aggregation, normalizer=units,
                        horizon=cfg.max_new_tokens, is_level=cfg.is_level, rollout_weights=part.rollout_weights)
                    dist.backward(loss * dist.world_size)  # DDP averages gradients over processes
                n = mask.sum()
                tokens += n
                for k, v in m.items():  # pg_loss: a share of the mini-batch's loss; the rest: token means
                    totals[k] = totals.get(k, 0) + v * (mini_tokens if k == "pg_loss" else n)
            step_tokens += mini_tokens
            grad_norms.append(dist.clip_grad_norm(model.parameters(), cfg.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    keys = sorted(totals)
    local = torch.stack([totals[k].float().to(dist.device) for k in keys] + [tokens.float()])
    summed = dist.gather_rows(local[None]).sum(0)  # over processes: one collective
    out = {k: summed[i] / (step_tokens if k == "pg_loss" else summed[-1]).clamp_min(1) for i, k in enumerate(keys)}
    out["grad_norm"] = torch.stack([g.float() for g in grad_norms]).mean() if grad_norms else torch.zeros(())
    out["lr"] = torch.tensor(scheduler.get_last_lr()[0])
    return out
