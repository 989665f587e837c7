"""The Phi-proxy check (``phi_check_every``): do the cosines of G2RL's feature Phi follow those of the real
parameter gradients, on the model being trained?

G2RL (paper App. A.1) argues that each layer's gradient of a response's log-likelihood is a linear map of Phi, so
that spreading the Phi directions spreads the update directions; the map depends on the trajectory, so this is an
approximation. The check takes one group of a step, computes the exact per-sample gradient Gram matrix of each
response's mean token log-likelihood (the objective whose hidden-state gradient Phi is) over the Linear weights of
the policy's last K decoder layers with :func:`rlcore.geometry.per_sample_grad_gram` (ghost inner products: no
per-sample gradient is stored, parameters and their ``.grad`` are untouched), and correlates its cosines with the
Phi cosines over the pairs of responses (Pearson and Spearman). The same forward gives Phi. It runs in full
precision, outside any autocast, and costs about one forward and a partial backward of one group.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.errors import ConfigError
from rlcore.geometry import cosine_matrix, gram_cosines, pearson, per_sample_grad_gram, spearman
from rlcore.llm import lm_head_weight


def last_layer_linears(model: nn.Module, k: int) -> list[nn.Linear]:
    """The ``nn.Linear`` modules with a trainable parameter in the last ``k`` decoder layers of a causal LM (the
    longest ``nn.ModuleList`` of its decoder, e.g. ``model.layers`` of Qwen/Llama); LoRA adapters count as theirs."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    stacks = [m for m in decoder.modules() if isinstance(m, nn.ModuleList)]
    if not stacks:
        raise ConfigError("phi_check_every: the policy has no list of decoder layers to take gradients of")
    blocks = list(max(stacks, key=len))[-k:]
    linears = [m for b in blocks for m in b.modules()
               if isinstance(m, nn.Linear) and any(p.requires_grad for p in m.parameters(recurse=False))]
    if not linears:
        raise ConfigError(f"phi_check_every: the last {k} decoder layers have no trainable Linear layer")
    return linears


def distinct_group_rows(batch: Rollouts, group_size: int) -> list[int]:
    """Rows of the group with the most distinct responses, one row per distinct response (the first group on a
    tie). Identical responses have identical Phi and gradients, so their pairs would agree trivially."""
    best: list[int] = []
    lengths = batch.response_mask.sum(-1).tolist()
    ids = batch.response_ids.tolist()
    for start in range(0, len(batch), group_size):
        seen: dict[tuple[int, ...], int] = {}
        for row in range(start, min(start + group_size, len(batch))):
            seen.setdefault(tuple(ids[row][:lengths[row]]), row)
        if len(seen) > len(best):
            best = sorted(seen.values())
    return best


def phi_and_gram(model: nn.Module, batch: Rollouts, rows: list[int], layers: list[nn.Linear], *,
                 temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Phi (k, d) of ``rows`` of ``batch`` and the (k, k) Gram matrix of the per-sample gradients, with respect to
    the weights of ``layers``, of each row's mean token log-likelihood at ``temperature``; one forward, one
    backward that stops at the first of ``layers``."""
    weight = lm_head_weight(model)
    phi: list[Tensor] = []

    def mean_loglik(m: nn.Module, index: Tensor) -> Tensor:
        part = batch.select(index)
        out = sequence_pass(HiddenStates(m), part, weight, temperature=temperature, features=True)
        phi.append(out.features.detach())
        mask = part.response_mask.to(out.logprobs.dtype)
        return (out.logprobs * mask).sum(-1) / mask.sum(-1).clamp_min(1)

    index = torch.tensor(rows, device=batch.response_ids.device)
    gram = per_sample_grad_gram(model, mean_loglik, index, layers=layers)
    return phi[0], gram


def phi_check(model: nn.Module, batch: Rollouts, group_size: int, *, layers: int = 1, temperature: float = 1.0
              ) -> dict[str, Tensor]:
    """Correlations between gradient cosines and Phi cosines on one group of ``batch`` (rows grouped by prompt).

    Returns 0-d tensors ``phi_corr_pearson``, ``phi_corr_spearman`` (when defined), ``phi_check_pairs`` (response
    pairs compared) and ``phi_check_s`` (seconds the check took); an empty dict when no group has 3 distinct
    responses (fewer than 3 pairs).
    """
    start = time.perf_counter()
    rows = distinct_group_rows(batch, group_size)
    if len(rows) < 3:
        return {}
    phi, gram = phi_and_gram(model, batch, rows, last_layer_linears(model, layers), temperature=temperature)
    upper = torch.triu_indices(len(rows), len(rows), 1, device=gram.device).unbind()
    grad_cos = gram_cosines(gram.double())[upper]
    phi_cos = cosine_matrix(phi.double())[upper]
    out = {"phi_corr_pearson": pearson(phi_cos, grad_cos), "phi_corr_spearman": spearman(phi_cos, grad_cos)}
    out = {k: v.float() for k, v in out.items() if bool(torch.isfinite(v))}
    out["phi_check_pairs"] = torch.tensor(float(len(grad_cos)))
    out["phi_check_s"] = torch.tensor(time.perf_counter() - start)
    return out
