"""One generation round of a GRPO step as data, and what a step reports from its rounds: metrics and the
completions log.

A step has one round (``dynamic_sampling`` off) or several (DAPO dynamic sampling, :mod:`.dynamic`). Each round
holds this process's share of the groups: the completions, their scores, the shaped rewards and advantages, and
the padded rollouts with what the loss needs.

Rollout/trainer mismatch (:func:`rollout_correction`): the engine (vLLM, or HF generate in bf16 or with top-p)
samples from a distribution pi_sampler that may differ from the trainer's old policy pi_old recomputed in full
precision, so the clipped objective uses samples of the wrong distribution. ``rollout_kl`` estimates
KL(pi_sampler || pi_old) on the sampled tokens (k1: the mean of ``sampling_logp - old_logp``); the weights
``pi_old / pi_sampler``, capped, reweight the clipped loss (``rollout_is``; TRL's
``vllm_importance_sampling_correction``; truncated IS of Yao et al. 2025).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.losses import ISLevel, RolloutIS, masked_mean, rollout_weights
from rlcore.algorithms.grpo.rewards import Scores
from rlcore.algorithms.grpo.rollouts import Rollouts
from rlcore.algorithms.grpo.shaping import Groups, flat_groups
from rlcore.envs.reasoning import MathRecord
from rlcore.rollout import Completion


def truncated(completions: list[Completion]) -> Tensor:
    """(N,) bool: the response hit ``max_new_tokens`` without a stop (TRL's rule: the last token is not EOS)."""
    return torch.tensor([c.finish_reason == "length" for c in completions], dtype=torch.bool)


def loss_keep(shaped: Tensor, is_truncated: Tensor, *, filter_zero_variance: bool, mask_truncated: bool
              ) -> Tensor | None:
    """(N,) bool rows that enter the loss, or None for all: groups with equal shaped rewards out when
    ``filter_zero_variance``, truncated responses out when ``mask_truncated`` (TRL mask_truncated_completions).

    >>> loss_keep(torch.tensor([[1.0, 1.0], [1.0, -1.0]]), torch.tensor([False, False, True, False]),
    ...           filter_zero_variance=True, mask_truncated=True)
    tensor([False, False, False,  True])
    """
    keep = None
    m = shaped.shape[-1]
    if filter_zero_variance:
        keep = (~flat_groups(shaped)).repeat_interleave(m)
    if mask_truncated:
        kept = ~is_truncated.to(shaped.device)
        keep = kept if keep is None else keep & kept
    return keep


@dataclass
class Round:
    """This process's groups of one generation round."""

    index: int
    """0 for the step's own prompts, 1, 2, ... for dynamic-sampling rounds."""
    records: list[MathRecord]
    """One per response (each problem repeated m times)."""
    completions: list[Completion]
    scores: Scores
    groups: Groups
    shaped: Tensor
    """(G, m) shaped rewards."""
    advantages: Tensor
    """(G, m) group-standardised shaped rewards."""
    batch: Rollouts
    """Padded rollouts with old (and reference) log-probs, advantages and the loss rows (``keep``)."""
    metrics: dict[str, Tensor]
    times: list[float] = field(default_factory=list)
    """Seconds spent generating, scoring and in the no-gradient passes."""
    trained: Tensor | None = None
    """(N,) bool, the responses that entered the step's loss (set once the batch is assembled)."""


def step_metrics(rounds: list[Round]) -> dict[str, Tensor]:
    """Mean of the rounds' metrics (every round has the same number of groups) and the summed times."""
    keys = rounds[0].metrics
    out = {k: torch.stack([r.metrics[k].float() for r in rounds]).mean() for k in keys}
    names = ("time/generate_s", "time/reward_s", "time/old_pass_s")
    out.update({n: torch.tensor(sum(r.times[i] for r in rounds)) for i, n in enumerate(names)})
    return out


def round_metrics(scores: Scores, groups: Groups, shaped: Tensor, batch: Rollouts, is_truncated: Tensor,
                  shaping: dict[str, Tensor], diagnostics: dict[str, Tensor]) -> dict[str, Tensor]:
    """The train/* metrics of one round (this process's groups), each a mean that averaging over rounds and
    processes keeps exact (see :func:`reward_std` for the one that is not). ``frac_reward_zero_std`` is the share of
    groups whose rewards are all equal (no learning signal before shaping), TRL's name. ``accuracy`` only when the
    rows have answers."""
    accuracy = {"accuracy": groups.correct.float().mean()} if scores.correct is not None else {}
    return {
        "reward": groups.rewards.mean(), **accuracy, "shaped_reward": shaped.mean(),
        "frac_reward_zero_std": flat_groups(groups.rewards).float().mean(),
        "response_tokens": batch.response_mask.sum(-1).float().mean(), "truncated_frac": is_truncated.float().mean(),
        **{f"train/{k}": v.to(groups.rewards.device) for k, v in scores.means().items()},
        **{f"shaping/{k}": v for k, v in shaping.items()},
        **{f"geom/{k}": v for k, v in diagnostics.items()},
    }


def reward_std(rewards: Tensor) -> Tensor:
    """``reward_std`` (TRL's name): the standard deviation (n - 1) of ``rewards``, every response of the step (all
    rounds, gathered from all processes; any shape); 0 for a single response. A mean of per-process or per-round
    standard deviations would not be this, so the trainer gathers the rewards first."""
    return rewards.float().reshape(-1).std().nan_to_num(0.0)


def completion_records(step: int, r: Round, is_truncated: Tensor, group_offset: int = 0) -> list[dict[str, Any]]:
    """One JSON-ready record per response of round ``r`` (the format of ``rlcore.report.completions``); ``group`` is
    the group's position in the round over all processes (this process's first group is ``group_offset``)."""
    m = r.shaped.shape[-1]
    flat = {"reward": r.groups.rewards, "shaped_reward": r.shaped, "advantage": r.advantages}
    values = {k: v.reshape(-1).double().cpu().tolist() for k, v in flat.items()}
    nu = r.groups.novelty.reshape(-1).double().cpu().tolist() if r.groups.novelty is not None else None
    correct = r.groups.correct.reshape(-1).cpu().tolist()
    per_function = r.scores.per_function.tolist()
    trained = r.trained.cpu().tolist() if r.trained is not None else [True] * len(r.completions)
    out = []
    for i, (c, rec) in enumerate(zip(r.completions, r.records)):
        out.append({
            "step": step, "round": r.index, "prompt_id": rec.id, "prompt": rec.prompt, "group": group_offset + i // m,
            "response": c.text,
            "rewards": {n: (None if s != s else s) for n, s in zip(r.scores.names, per_function[i])},
            **{k: v[i] for k, v in values.items()}, "nu": nu[i] if nu is not None else None,
            "length": len(c.token_ids), "truncated": bool(is_truncated[i]), "correct": bool(correct[i]),
            "trained": bool(trained[i]),
        })
    return out


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
