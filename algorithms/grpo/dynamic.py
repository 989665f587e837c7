"""DAPO's dynamic sampling (Yu et al., 2025, section 3.2): fill each step with groups that carry a signal.

A group whose rewards are all equal gets zero advantages everywhere and no policy gradient. With
``dynamic_sampling`` the trainer samples further rounds of ``prompts_per_step`` prompts until the step holds
``prompts_per_step`` informative groups or ``max_gen_batches`` rounds were generated (verl's
``max_num_gen_batches``), and trains on the first ``prompts_per_step`` informative ones in sampling order.

"Informative" is decided on the *shaped* rewards, the ones the advantages come from: with plain GRPO these are
the verifier's rewards (DAPO's rule), with G2RL a group that the scaler gave unequal rewards (a "rescued" group)
counts as informative, because it does carry a gradient. When the rounds run out, the batch is completed with
uninformative groups that stay out of the loss (``Rollouts.keep``), so a step keeps its size and its number of
optimiser steps, and mini-batches without any token in the loss are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlcore.algorithms.grpo.optimise import gather_rollouts
from rlcore.algorithms.grpo.rollouts import Rollouts
from rlcore.algorithms.grpo.shaping import flat_groups
from rlcore.distributed import Distributed

if TYPE_CHECKING:
    from rlcore.algorithms.grpo.step import Round


def informative_groups(shaped: Tensor) -> Tensor:
    """(G, m) shaped rewards -> (G,) bool: the group's rewards are not all equal."""
    return ~flat_groups(shaped)


def enough(informative: Sequence[Tensor], per_step: int) -> bool:
    """Whether the rounds so far (each a (G,) bool over the step's global groups) hold ``per_step``
    informative groups."""
    return int(sum(int(x.sum()) for x in informative)) >= per_step


def pick_groups(informative: Tensor, per_step: int) -> tuple[Tensor, Tensor]:
    """Which of the generated groups (all rounds, in sampling order) form the step's batch.

    Returns ``(chosen, trained)``: ``chosen`` the indices of ``per_step`` groups, the first informative groups
    in order and, when there are fewer, the first uninformative ones after them; ``trained`` (per_step,) bool, the
    chosen groups that enter the loss (the informative ones).

    >>> pick_groups(torch.tensor([False, True, False, True, True]), 2)
    (tensor([1, 3]), tensor([True, True]))
    >>> pick_groups(torch.tensor([False, True, False]), 2)
    (tensor([1, 0]), tensor([ True, False]))
    """
    if informative.numel() < per_step:
        raise ValueError(f"{informative.numel()} groups generated, fewer than the {per_step} a step needs")
    order = torch.cat([informative.nonzero().flatten(), (~informative).nonzero().flatten()])
    chosen = order[:per_step]
    return chosen, informative[chosen]


def assemble_rounds(rounds: list[Round], informative: list[Tensor], *, dist: Distributed, pad_id: int,
                    per_step: int) -> tuple[Rollouts, dict[str, Tensor]]:
    """The step's global batch of ``per_step`` groups from its generation rounds (``informative``: (G,) bool per
    round over all processes' groups, in rank order), and the metrics ``train/gen_rounds`` and
    ``train/dropped_frac`` (share of the generated groups not trained on). Sets each round's ``trained``."""
    m = rounds[0].shaped.shape[-1]
    flags = torch.cat(informative)
    everything = Rollouts.cat([gather_rollouts(r.batch, dist, pad_id) for r in rounds], pad_id)
    chosen, trained = pick_groups(flags, per_step)
    rows = (chosen[:, None] * m + torch.arange(m, device=chosen.device)).reshape(-1)
    batch = everything.select(rows.to(everything.prompt_ids.device))
    in_loss = trained.repeat_interleave(m).to(batch.prompt_ids.device)
    batch.keep = in_loss if batch.keep is None else batch.keep & in_loss
    trained_groups = torch.zeros_like(flags)
    trained_groups[chosen[trained]] = True
    G = rounds[0].shaped.shape[0]
    for k, r in enumerate(rounds):  # this process's groups of round k: a contiguous block in rank order
        start = k * G * dist.world_size + dist.rank * G
        mine = trained_groups[start:start + G].repeat_interleave(m).to(r.batch.prompt_ids.device)
        r.trained = mine & r.batch.loss_mask().any(-1)
    dropped = 1 - trained.sum() / flags.numel()
    return batch, {"train/gen_rounds": torch.tensor(float(len(rounds))), "train/dropped_frac": dropped.float()}
