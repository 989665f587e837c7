"""GRPO as pure functions: group advantages, the token-level PPO-clip loss, the k3 KL penalty, loss aggregation.

Equation numbers refer to the G2RL paper (eqs. 1-4, docs/g2rl.md "GRPO"). Shapes: G groups
of m responses; B sequences of L response positions; ``mask`` (B, L) is True on response tokens (EOS included).
Every function is differentiable where it should be and returns detached metrics as 0-d tensors (no host sync).
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor

from rlcore.algorithms.grpo.config import AdvantageStd, Aggregation, ISLevel, RolloutIS

ADVANTAGE_STDS, AGGREGATIONS, IS_LEVELS = get_args(AdvantageStd), get_args(Aggregation), get_args(ISLevel)


def group_advantages(rewards: Tensor, *, std: AdvantageStd = "population", eps: float = 1e-6,
                     eps_inside: bool = True) -> Tensor:
    """Group-normalised advantages, eqs. 2-3: ``A_i = (r_i - mean(r)) / s``, (G, m) -> (G, m).

    ``std`` picks the spread ``s`` of each group:

    - ``population`` (the paper's form): ``s = sqrt(mean((r - mean r)^2) + eps)``;
    - ``unbiased``: the same with the sample variance (divisor m - 1; 0 for m = 1);
    - ``none`` (Dr. GRPO): ``s = 1``, only the mean is removed.

    ``eps_inside=False`` puts ``eps`` outside the root instead, ``s = std + eps`` (verl with 1e-6; TRL with the
    unbiased std and 1e-4). A group whose rewards are all equal gets zero advantages in every mode.

    >>> group_advantages(torch.tensor([[1.0, -1.0, -1.0, -1.0]]), eps=0.0)
    tensor([[ 1.7321, -0.5774, -0.5774, -0.5774]])
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be (groups, responses), got shape {tuple(rewards.shape)}")
    if std not in ADVANTAGE_STDS:
        raise ValueError(f"std must be one of {ADVANTAGE_STDS}, got {std!r}")
    centred = rewards - rewards.mean(-1, keepdim=True)
    if std == "none":
        return centred
    m = rewards.shape[-1]
    divisor = m - 1 if std == "unbiased" and m > 1 else m
    var = centred.square().sum(-1, keepdim=True) / divisor
    spread = (var + eps).sqrt() if eps_inside else var.sqrt() + eps
    return centred / spread


def log_ratio(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor | None = None, level: ISLevel = "token"
              ) -> Tensor:
    """Log importance ratio of the clipped objective, (B, L) -> (B, L).

    ``token``: ``logp_t - old_logp_t`` (PPO/GRPO). ``sequence`` (GSPO, Zheng et al. 2025, eq. 7; TRL
    ``importance_sampling_level="sequence"``): the mean of that over the response tokens of each row (``mask``
    (B, L) needed), the same value on every token of the row, so that the ratio is clipped per sequence. The
    gradient flows through every token of the mean.

    >>> log_ratio(torch.tensor([[0.3, 0.1, 9.0]]), torch.zeros(1, 3), torch.tensor([[True, True, False]]), "sequence")
    tensor([[0.2000, 0.2000, 0.2000]])
    """
    diff = logprobs - old_logprobs
    if level == "token":
        return diff
    if level != "sequence":
        raise ValueError(f"is_level must be one of {IS_LEVELS}, got {level!r}")
    if mask is None:
        raise ValueError("the sequence-level ratio needs the response mask")
    m = mask.to(diff.dtype)
    per_seq = (diff * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp_min(1)
    return per_seq.expand_as(diff)


def policy_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, clip_low: float = 0.2,
                clip_high: float | None = None, is_level: ISLevel = "token", mask: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip loss, eq. 4: (B, L) log-probs, (B,) or (B, L) advantages.

    ``rho = exp(log_ratio)`` per token, or per sequence with ``is_level="sequence"`` (GSPO; needs ``mask``, see
    :func:`log_ratio`); the per-token loss is ``-min(rho * A, clip(rho, 1 - clip_low, 1 + clip_high) * A)``;
    ``clip_high=None`` uses ``clip_low`` (symmetric clipping), a larger value is DAPO's clip-higher. Returns the
    (B, L) per-token loss (aggregate it with :func:`aggregate`) and (B, L) float indicators ``clipped_low`` /
    ``clipped_high`` of tokens whose gradient the clip removed (ratio below 1 - clip_low with A < 0, above
    1 + clip_high with A > 0).
    """
    high = clip_low if clip_high is None else clip_high
    adv = advantages.unsqueeze(-1) if advantages.ndim == 1 else advantages
    ratio = torch.exp(log_ratio(logprobs, old_logprobs, mask, is_level))
    clipped = ratio.clamp(1 - clip_low, 1 + high)
    loss = -torch.minimum(ratio * adv, clipped * adv)
    with torch.no_grad():
        flags = {"clipped_low": ((ratio < 1 - clip_low) & (adv < 0)).to(logprobs.dtype),
                 "clipped_high": ((ratio > 1 + high) & (adv > 0)).to(logprobs.dtype),
                 "ratio": ratio.detach()}
    return loss, flags


def rollout_weights(old_logprobs: Tensor, sampling_logprobs: Tensor, mask: Tensor, *, mode: RolloutIS = "truncate",
                    cap: float = 2.0, level: ISLevel = "token") -> Tensor:
    """Importance weights ``pi_old / pi_sampler`` that correct for the rollout engine's sampling distribution
    differing from the trainer's old policy, (B, L) -> (B, L), no gradient.

    ``level="token"``: ``w_t = exp(old_logp_t - sampling_logp_t)``; ``"sequence"``: one weight per row, the product
    of its token ratios ``exp(sum_t (old_logp_t - sampling_logp_t))`` over the response tokens of ``mask``, on every
    token. ``mode="truncate"``: ``min(w, cap)`` (truncated IS, Yao et al. 2025); ``"mask"``: 0 where ``w > cap``.
    NaN sampling log-probs (an engine could not score the token) give weight 1 before the cap. Equal to TRL's
    ``vllm_importance_sampling_correction`` with ``vllm_importance_sampling_mode = <level>_<mode>``,
    ``vllm_importance_sampling_clip_max = cap`` and no lower bound.

    >>> rollout_weights(torch.tensor([[0.0, 0.0]]), torch.log(torch.tensor([[0.5, 4.0]])), torch.ones(1, 2).bool())
    tensor([[2.0000, 0.2500]])
    """
    if mode not in ("truncate", "mask") or level not in IS_LEVELS:
        raise ValueError(f"mode must be 'truncate' or 'mask' and level one of {IS_LEVELS}, got {mode!r}, {level!r}")
    with torch.no_grad():
        diff = torch.nan_to_num((old_logprobs - sampling_logprobs) * mask.to(old_logprobs.dtype), nan=0.0)
        if level == "sequence":
            diff = diff.sum(-1, keepdim=True).expand_as(diff)
        w = torch.exp(diff)
        return w.clamp(max=cap) if mode == "truncate" else w.masked_fill(w > cap, 0.0)


def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref) on samples of the current policy, (B, L) -> (B, L).

    ``k3 = exp(d) - d - 1`` with ``d = ref_logp - logp`` (Schulman's unbiased, non-negative estimator; verl's
    "low_var_kl" without its clamp, TRL's per-token KL).
    """
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def loss_units(mask: Tensor, mode: Aggregation) -> Tensor:
    """How many units ``mode`` averages over in a batch with loss mask (B, L): tokens for ``token_mean``,
    sequences with at least one token otherwise. Pass the count of the whole (global) batch to :func:`aggregate`
    as ``normalizer``."""
    if mode == "token_mean":
        return mask.sum()
    return mask.any(-1).sum()


def aggregate(values: Tensor, mask: Tensor, mode: Aggregation = "token_mean", *,
              normalizer: Tensor | float | None = None, horizon: int | None = None) -> Tensor:
    """Reduce a (B, L) per-token quantity to the scalar loss, over masked tokens only.

    - ``token_mean``: ``sum(v * mask) / N_tokens`` (every token of the batch weighs the same; verl/TRL default);
    - ``seq_mean``: ``sum_i (sum_t v_it mask_it / len_i) / N_seqs`` (each sequence weighs the same; TRL "grpo");
    - ``constant``: ``sum(v * mask) / (N_seqs * horizon)`` (Dr. GRPO: no length normalisation; ``horizon`` is the
      maximal response length).

    ``normalizer`` is N_tokens or N_seqs of the whole batch the loss is an average over (default: this batch's,
    :func:`loss_units`). Give the global count when a batch is split into micro-batches or over processes: the sum
    of the micro-batch losses is then exactly the loss of the whole batch.

    >>> aggregate(torch.tensor([[1.0, 3.0], [5.0, 0.0]]), torch.tensor([[True, True], [True, False]]), "seq_mean")
    tensor(3.5000)
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")
    m = mask.to(values.dtype)
    units = loss_units(mask, mode) if normalizer is None else normalizer
    if mode == "token_mean":
        return (values * m).sum() / torch.as_tensor(units, dtype=values.dtype).clamp_min(1)
    if mode == "seq_mean":
        per_seq = (values * m).sum(-1) / m.sum(-1).clamp_min(1)
        return per_seq.sum() / torch.as_tensor(units, dtype=values.dtype).clamp_min(1)
    if horizon is None or horizon < 1:
        raise ValueError("aggregation 'constant' needs horizon = the maximal response length (>= 1)")
    return (values * m).sum() / (torch.as_tensor(units, dtype=values.dtype).clamp_min(1) * horizon)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the True entries of ``mask`` (0 when there are none)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1)


def grpo_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *,
              ref_logprobs: Tensor | None = None, entropy: Tensor | None = None, clip_low: float = 0.2,
              clip_high: float | None = None, beta: float = 0.0, entropy_coef: float = 0.0,
              aggregation: Aggregation = "token_mean", normalizer: Tensor | float | None = None,
              horizon: int | None = None, is_level: ISLevel = "token", rollout_weights: Tensor | None = None
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """The GRPO objective to minimise, eq. 4: ``agg(w * PPO-clip + beta * k3 KL) - entropy_coef * agg(entropy)``.

    Args: ``logprobs`` (B, L) of the current policy (with gradient); ``old_logprobs`` (B, L) of the policy that
    sampled; ``advantages`` (B,) one per sequence; ``mask`` (B, L); ``ref_logprobs`` (B, L) of the frozen
    reference (needed when ``beta > 0``); ``entropy`` (B, L) token entropies of the current policy (needed when
    ``entropy_coef > 0``, the entropy-bonus baseline). ``aggregation``, ``normalizer``, ``horizon``: see
    :func:`aggregate` (the entropy term uses the same aggregation, as verl does). ``is_level``: token or sequence
    (GSPO) importance ratio, see :func:`log_ratio`. ``rollout_weights`` (B, L): the rollout-mismatch weights ``w``
    of :func:`rollout_weights` (None: 1), applied to the clipped term only, as TRL does.

    Returns ``(loss, metrics)``; metrics are this batch's token means (``pg_loss`` is the aggregated clip term):
    ``pg_loss``, ``kl``, ``entropy``, ``clip_frac_low``, ``clip_frac_high``, ``ratio``.
    """
    per_token, flags = policy_loss(logprobs, old_logprobs, advantages, clip_low=clip_low, clip_high=clip_high,
                                   is_level=is_level, mask=mask)
    if rollout_weights is not None:
        per_token = per_token * rollout_weights
    pg = aggregate(per_token, mask, aggregation, normalizer=normalizer, horizon=horizon)
    loss = pg
    metrics = {"pg_loss": pg.detach(), "clip_frac_low": masked_mean(flags["clipped_low"], mask),
               "clip_frac_high": masked_mean(flags["clipped_high"], mask),
               "ratio": masked_mean(flags["ratio"], mask)}
    if beta > 0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs (the frozen reference policy's log-probs)")
        kl = kl_k3(logprobs, ref_logprobs)
        loss = loss + beta * aggregate(kl, mask, aggregation, normalizer=normalizer, horizon=horizon)
        metrics["kl"] = masked_mean(kl.detach(), mask)
    if entropy_coef > 0:
        if entropy is None:
            raise ValueError("entropy_coef > 0 needs the token entropies of the current policy")
        loss = loss - entropy_coef * aggregate(entropy, mask, aggregation, normalizer=normalizer, horizon=horizon)
    if entropy is not None:
        metrics["entropy"] = masked_mean(entropy.detach(), mask)
    return loss, metrics
