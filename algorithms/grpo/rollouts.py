"""A step's sampled responses as padded tensors, and the one forward pass that turns them into token statistics.

Rows are grouped: rows ``g*m .. g*m + m - 1`` are the m responses to prompt g. Prompts are left-padded and
responses right-padded, so ``[prompt | response]`` is one sequence per row and the hidden state at position
``P - 1 + t`` predicts response token t.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rlcore.geometry import token_stats
from rlcore.llm import final_hidden_states
from rlcore.rollout import Completion

HiddenFn = Callable[[Tensor, Tensor], Tensor]
"""(input_ids (B, L), attention_mask (B, L)) -> final hidden states (B, L, d)."""


class HiddenStates(nn.Module):
    """A causal LM seen as its final hidden states (the LM head's input).

    Wrapping this module (DDP, FSDP) makes the forward the trainer actually uses the one that synchronises
    gradients; the LM head is applied outside by :func:`rlcore.geometry.token_stats`, chunk by chunk.
    """

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return final_hidden_states(self.lm, input_ids, attention_mask)


@dataclasses.dataclass
class Rollouts:
    """N sampled sequences (grouped by prompt) and what the trainer attaches to them."""

    prompt_ids: Tensor
    """(N, P) prompt tokens, left-padded."""
    prompt_mask: Tensor
    """(N, P) bool, True on prompt tokens."""
    response_ids: Tensor
    """(N, C) response tokens (EOS included when it stopped), right-padded."""
    response_mask: Tensor
    """(N, C) bool, True on response tokens."""
    old_logprobs: Tensor | None = None
    """(N, C) log-probs under the sampling policy (from the trainer's old-policy pass)."""
    ref_logprobs: Tensor | None = None
    """(N, C) log-probs under the frozen reference policy (when the KL penalty is on)."""
    advantages: Tensor | None = None
    """(N,) one advantage per sequence."""
    keep: Tensor | None = None
    """(N,) bool, False for sequences left out of the loss (DAPO-style filtering)."""
    sampling_logprobs: Tensor | None = None
    """(N, C) log-probs the rollout engine reported for the tokens it sampled (0 on padding)."""
    rollout_weights: Tensor | None = None
    """(N, C) rollout/trainer mismatch weights of the clipped loss (``rollout_is``; None = 1)."""

    @classmethod
    def from_token_ids(cls, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int,
                       device: torch.device | str = "cpu") -> Rollouts:
        """Pad ``prompts[i] + responses[i]`` row by row into a batch."""
        if not prompts or len(prompts) != len(responses):
            raise ValueError(f"need one response per prompt and at least one, got {len(prompts)} and {len(responses)}")
        P = max(len(p) for p in prompts)
        C = max(max(len(r) for r in responses), 1)
        prompt = torch.full((len(prompts), P), pad_id, dtype=torch.long)
        response = torch.full((len(prompts), C), pad_id, dtype=torch.long)
        prompt_mask = torch.zeros(len(prompts), P, dtype=torch.bool)
        response_mask = torch.zeros(len(prompts), C, dtype=torch.bool)
        for i, (p, r) in enumerate(zip(prompts, responses)):
            prompt[i, P - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
            prompt_mask[i, P - len(p):] = True
            response[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
            response_mask[i, :len(r)] = True
        return cls(prompt.to(device), prompt_mask.to(device), response.to(device), response_mask.to(device))

    @classmethod
    def from_completions(cls, groups: Sequence[Sequence[Completion]], pad_id: int,
                         device: torch.device | str = "cpu") -> Rollouts:
        """Pad the completions of ``groups`` (one list per prompt) into a batch."""
        flat = [c for group in groups for c in group]
        out = cls.from_token_ids([c.prompt_token_ids for c in flat], [c.token_ids for c in flat], pad_id, device)
        sampling = torch.zeros(out.response_ids.shape, dtype=torch.float32)
        for i, c in enumerate(flat):
            sampling[i, :len(c.logprobs)] = torch.as_tensor(c.logprobs, dtype=torch.float32)
        out.sampling_logprobs = sampling.to(device)
        return out

    @classmethod
    def cat(cls, parts: Sequence[Rollouts], pad_id: int) -> Rollouts:
        """Rows of ``parts`` one after the other; prompts are left-padded (token ids with ``pad_id``) and the
        other (N, C) fields right-padded with 0 / False to the widest part. A field must be set in all or none."""
        out: dict[str, Tensor | None] = {}
        for f in dataclasses.fields(cls):
            values = [getattr(p, f.name) for p in parts]
            if all(v is None for v in values):
                out[f.name] = None
                continue
            if any(v is None for v in values):
                raise ValueError(f"Rollouts.cat: '{f.name}' is set in some parts only")
            width = max(v.shape[1] for v in values) if values[0].ndim == 2 else 0
            pad = pad_id if f.name.endswith("_ids") else 0
            left = f.name.startswith("prompt")
            out[f.name] = torch.cat([v if v.ndim == 1 else torch.nn.functional.pad(
                v, (width - v.shape[1], 0) if left else (0, width - v.shape[1]), value=pad) for v in values])
        return cls(**out)

    def __len__(self) -> int:
        return self.prompt_ids.shape[0]

    def select(self, rows: slice | Tensor) -> Rollouts:
        """The given rows, with the padding no row of them needs trimmed away."""
        picked = {f.name: None if (v := getattr(self, f.name)) is None else v[rows] for f in dataclasses.fields(self)}
        out = Rollouts(**picked)
        prompt_len = int(out.prompt_mask.sum(-1).max()) if len(out) else 0
        response_len = max(int(out.response_mask.sum(-1).max()) if len(out) else 0, 1)
        P = out.prompt_ids.shape[1]
        for name in ("prompt_ids", "prompt_mask"):
            setattr(out, name, getattr(out, name)[:, P - prompt_len:])
        for name in ("response_ids", "response_mask", "old_logprobs", "ref_logprobs", "sampling_logprobs",
                     "rollout_weights"):
            if getattr(out, name) is not None:
                setattr(out, name, getattr(out, name)[:, :response_len])
        return out

    def loss_mask(self) -> Tensor:
        """(N, C) response tokens that enter the loss."""
        return self.response_mask if self.keep is None else self.response_mask & self.keep[:, None]


class PassOutput(NamedTuple):
    logprobs: Tensor
    """(B, C) log p(response token) at the pass temperature."""
    entropy: Tensor
    """(B, C) token entropies."""
    features: Tensor | None
    """(B, d) G2RL Phi, when asked for."""
    pooled: Tensor | None
    """(B, d) mean final hidden state over the response tokens, when asked for."""


def sequence_pass(hidden_fn: HiddenFn, batch: Rollouts, lm_head_weight: Tensor, *, temperature: float = 1.0,
                  features: bool = False, pooled: bool = False, autocast: Callable | None = None) -> PassOutput:
    """One forward of ``[prompt | response]``: log-probs, entropies and (optionally) Phi and pooled hidden states.

    Gradients flow when ``hidden_fn`` runs with autograd (the training pass). The LM head is applied by
    :func:`rlcore.geometry.token_stats` in chunks and at least fp32, outside ``autocast`` (the backbone's
    mixed-precision context, if any).
    """
    input_ids = torch.cat([batch.prompt_ids, batch.response_ids], dim=1)
    attention = torch.cat([batch.prompt_mask, batch.response_mask], dim=1).long()
    with autocast() if autocast is not None else contextlib.nullcontext():
        hidden = hidden_fn(input_ids, attention)
    P, C = batch.prompt_ids.shape[1], batch.response_ids.shape[1]
    stats = token_stats(hidden[:, P - 1:P - 1 + C], batch.response_ids, batch.response_mask, lm_head_weight,
                        temperature=temperature, features=features)
    mean_hidden = None
    if pooled:
        weights = batch.response_mask.to(hidden.dtype).unsqueeze(-1)
        mean_hidden = ((hidden[:, P:] * weights).sum(1) / weights.sum(1).clamp_min(1)).float()
    return PassOutput(stats.logprobs, stats.entropy, stats.features, mean_hidden)
