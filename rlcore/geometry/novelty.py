"""G2RL's groupwise exploration score and reward rescaling, eqs. 9-13 (docs/g2rl.md: "Novelty", "Reward scaling")."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from rlcore.geometry.similarity import cosine_matrix, pair_mask

ScaleMode = Literal["literal", "centered", "none"]
SCALE_MODES = get_args(ScaleMode)


def _valid(mask: Tensor | None, like: Tensor) -> Tensor:
    if mask is None:
        return torch.ones(like.shape, dtype=torch.bool, device=like.device)
    if mask.shape != like.shape:
        raise ValueError(f"mask must have shape {tuple(like.shape)} (groups, responses), got {tuple(mask.shape)}")
    return mask.bool()


def novelty_scores(features: Tensor, rewards: Tensor, eps: float = 1e-8, mask: Tensor | None = None) -> Tensor:
    """G2RL novelty ``nu_i = max(1 - sum_{j != i} w_ij cos(Phi_i, Phi_j)^2, 0)``, eqs. 9-11.

    features: (G, m, d) sequence features Phi; rewards: (G, m); mask: optional (G, m) bool for ragged groups.
    Returns nu: (G, m) in [0, 1], dtype promoted from features and rewards.

    ``w_ij`` is the softmax of the rewards over the *other* valid responses j of the group (temperature 1), so
    higher-reward peers dominate and response i's own reward does not enter. It is computed shift-stably; the
    paper's ``+eps`` in the softmax denominator only guards the empty case, handled exactly here: a response with
    no valid peer (m = 1) gets nu = 1, which ``scale_rewards`` then treats as a degenerate group. ``eps`` is the
    norm floor of the cosine (``cosine_matrix``). Masked-out responses neither give nor receive weight and get 0.
    The squared cosine ignores sign, and nu is unchanged when all Phi are rescaled by one positive factor.

    >>> phi = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> novelty_scores(phi, torch.tensor([[1.0, 1.0, 1.0]]))
    tensor([[0.5000, 1.0000, 0.5000]])
    """
    if features.ndim != 3 or rewards.shape != features.shape[:2]:
        raise ValueError(f"features must be (G, m, d) and rewards (G, m); got {tuple(features.shape)} and "
                         f"{tuple(rewards.shape)}")
    dtype = torch.promote_types(features.dtype, rewards.dtype)
    valid = _valid(mask, rewards)
    features = features.to(dtype).masked_fill(~valid.unsqueeze(-1), 0)
    rewards = rewards.to(dtype).masked_fill(~valid, 0)
    peers = pair_mask(valid)  # (G, m, m): j is a valid peer of valid i
    logits = rewards.unsqueeze(-2).expand(peers.shape).masked_fill(~peers, float("-inf"))
    shift = logits.amax(-1, keepdim=True)
    weights = (logits - torch.where(peers.any(-1, keepdim=True), shift, 0)).exp()
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
    explained = (weights * cosine_matrix(features, eps).square()).sum(-1)
    return torch.where(valid, (1 - explained).clamp_min(0), 0)


def scale_rewards(rewards: Tensor, novelty: Tensor, lam: float | Tensor, mode: ScaleMode = "literal",
                  clip: float | None = 3.0, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """G2RL reward shaping, eqs. 12-13: (G, m) rewards and novelty -> (G, m) shaped rewards.

    ``nu_bar`` is nu min-max normalised over the valid responses of each group. Modes:

    - ``literal`` (eq. 12, default): ``r * (1 + lam * r * nu_bar)``; with r = +-1 this is ``r + lam * nu_bar``;
    - ``centered`` (the paper's prose, docs/g2rl.md "Reward scaling"): ``r * (1 + lam * (2 * nu_bar - 1))``;
    - ``none``: ``r`` (plain GRPO through the same code path).

    The result is clipped to [-clip, clip] (``clip=None`` skips it). A degenerate group, whose nu range is at
    most ``eps`` (all nu equal, or a single valid response), gets ``nu_bar = 0`` for ``literal`` and 0.5 for
    ``centered``, so it is shaped by nothing but its rewards (this explicit case replaces the usual ``+eps`` in
    the min-max denominator, so the most novel response of a group always gets exactly 1). Masked-out entries
    (``mask`` (G, m) bool) are left out of the min-max and return 0.

    >>> scale_rewards(torch.tensor([[1.0, 1.0, -1.0]]), torch.tensor([[0.2, 0.6, 1.0]]), lam=0.5)
    tensor([[ 1.0000,  1.2500, -0.5000]])
    """
    if mode not in SCALE_MODES:
        raise ValueError(f"mode must be one of {SCALE_MODES}, got {mode!r}")
    if not isinstance(lam, Tensor) and lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    if rewards.ndim != 2 or novelty.shape != rewards.shape:
        raise ValueError(f"rewards and novelty must both be (G, m); got {tuple(rewards.shape)} and "
                         f"{tuple(novelty.shape)}")
    dtype = torch.promote_types(rewards.dtype, novelty.dtype)
    valid = _valid(mask, rewards)
    r = rewards.to(dtype).masked_fill(~valid, 0)
    nu = novelty.to(dtype)
    if mode == "none":
        shaped = r
    else:
        low = nu.masked_fill(~valid, float("inf")).amin(-1, keepdim=True)
        high = nu.masked_fill(~valid, float("-inf")).amax(-1, keepdim=True)
        spread = high - low
        degenerate = ~(spread > eps)  # also catches groups without any valid entry (inf - inf = nan)
        nu_bar = torch.where(degenerate, 0.0 if mode == "literal" else 0.5,
                             (nu - low) / torch.where(degenerate, 1, spread))
        factor = 1 + lam * (r * nu_bar if mode == "literal" else 2 * nu_bar - 1)
        shaped = r * factor
    if clip is not None:
        shaped = shaped.clamp(-clip, clip)
    return torch.where(valid, shaped, 0)
