"""Rollout/trainer mismatch: how far the engine's sampling log-probs lie from the trainer's old log-probs, and the
importance weights that correct the loss for it (``rollout_is``).

The engine (vLLM, or HF generate in bf16 or with top-p) samples from a distribution pi_sampler that may differ from
the trainer's old policy pi_old recomputed in full precision; the clipped objective then uses samples of the wrong
distribution. ``rollout_kl`` estimates KL(pi_sampler || pi_old) on the sampled tokens (k1: the mean of
``sampling_logp - old_logp``); the weights ``pi_old / pi_sampler``, capped, reweight the clipped loss (TRL's
``vllm_importance_sampling_correction``; truncated IS of Yao et al. 2025).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rlcore.algorithms.grpo.losses import ISLevel, RolloutIS, masked_mean, rollout_weights
from rlcore.algorithms.grpo.rollouts import Rollouts


def rollout_correction(batch: Rollouts, *, mode: RolloutIS = "none", cap: float = 2.0, level: ISLevel = "token"
                       ) -> dict[str, Tensor]:
    """Mismatch metrics of ``batch`` (needs ``old_logprobs`` and ``sampling_logprobs``); with ``mode`` truncate or
    mask, also sets ``batch.rollout_weights`` (N, C) (see :func:`rlcore.algorithms.grpo.losses.rollout_weights`).

    Returns 0-d tensors: ``rollout_kl`` (token mean of sampling - old log-prob), ``rollout_abs_gap`` (token mean of
    its absolute value, TRL's sampling_logp_difference/mean) and, with a correction, ``rollout_is_weight`` (mean
    weight) and ``rollout_is_capped_frac`` (share of tokens whose uncapped weight exceeded ``cap``).
    """
    if batch.old_logprobs is None or batch.sampling_logprobs is None:
        raise ValueError("the mismatch correction needs the old and the sampling log-probs of the batch")
    mask = batch.response_mask
    gap = torch.nan_to_num(batch.sampling_logprobs.to(batch.old_logprobs.dtype) - batch.old_logprobs, nan=0.0)
    metrics = {"rollout_kl": masked_mean(gap, mask), "rollout_abs_gap": masked_mean(gap.abs(), mask)}
    if mode == "none":
        return metrics
    old, sampling = batch.old_logprobs, batch.sampling_logprobs.to(batch.old_logprobs.dtype)
    raw = rollout_weights(old, sampling, mask, mode="truncate", cap=math.inf, level=level)
    batch.rollout_weights = rollout_weights(old, sampling, mask, mode=mode, cap=cap, level=level)
    metrics["rollout_is_weight"] = masked_mean(batch.rollout_weights, mask)
    metrics["rollout_is_capped_frac"] = masked_mean((raw > cap).to(gap.dtype), mask)
    return metrics
