"""G2RL's sequence feature Phi, with token log-probs and entropies, from one chunked pass over the LM head.

Phi (eqs. 5-8 and 14, docs/g2rl.md "The feature Phi") is T times the gradient of log p(y_t) with respect to the final
hidden state h_t, averaged over the response tokens. It needs no backward pass: with ``W = lm_head.weight``
(V, d) and ``p_t = softmax(z_t / T)``, ``phi_t = W^T (e(y_t) - p_t)``, and by the histogram identity the mean over
tokens is ``W^T (e_bar - p_bar)`` with ``e_bar`` the token-count histogram and ``p_bar`` the mean probability
vector, both per sequence. ``p_bar`` is accumulated chunk by chunk alongside the log-probs and entropies a GRPO
old-policy pass computes anyway, so Phi costs one (V -> d) product per sequence on top of it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

CHUNK_ELEMENTS = {"cpu": 2**22, "accelerator": 2**26}
"""Default size of one (B, chunk, V) block: 16 MiB in fp32 on CPU (reused buffers, efficient GEMMs), 256 MiB on
GPUs (fewer kernel launches). A pass without autograd holds at most three such blocks."""

_BLOCK_ELEMENTS = 2**22  # entries of W converted to fp32 at a time when W is in half precision


class TokenStats(NamedTuple):
    """Per-token and per-sequence statistics of one LM-head pass; entries at masked positions are 0."""

    logprobs: Tensor
    """(B, L) log p(y_t) at temperature T (differentiable)."""
    entropy: Tensor
    """(B, L) entropy of p_t in nats (differentiable)."""
    features: Tensor | None
    """(B, d) G2RL feature Phi (no gradient); None when the pass was asked not to compute it."""


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _times_weight(delta: Tensor, weight: Tensor) -> Tensor:
    """``delta @ weight`` in delta's dtype, converting a lower-precision (V, d) ``weight`` a block at a time."""
    if weight.dtype == delta.dtype:
        return delta @ weight
    block = max(1, _BLOCK_ELEMENTS // weight.shape[1])
    out = delta.new_zeros(delta.shape[0], weight.shape[1])
    for start in range(0, weight.shape[0], block):
        out.addmm_(delta[:, start:start + block], weight[start:start + block].to(delta.dtype))
    return out


def default_chunk_size(batch: int, vocab: int, device: torch.device) -> int:
    """Positions per chunk so that a (B, chunk, V) block holds about ``CHUNK_ELEMENTS[device.type]`` entries."""
    return max(1, CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS["accelerator"]) // max(1, batch * vocab))


def _exp_shifted(z: Tensor, out: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """``e = exp(z - max)`` over the last dim (into ``out`` if given), its sum and the max: p = e / sum."""
    top = z.detach().amax(-1, keepdim=True)  # any constant shift gives the same softmax and gradients
    e = torch.sub(z, top, out=out).exp_()
    return e, e.sum(-1, keepdim=True), top


def token_stats(hidden: Tensor | None, tokens: Tensor, mask: Tensor | None, lm_head_weight: Tensor, *,
                logits: Tensor | None = None, bias: Tensor | None = None, temperature: float = 1.0,
                chunk_size: int | None = None, features: bool = True) -> TokenStats:
    """Token log-probs, token entropies and G2RL's Phi from ONE pass over the LM-head distribution.

    Args:
        hidden: (B, L, d) final hidden states (after the final norm); ``hidden[:, t]`` predicts ``tokens[:, t]``.
            Unused (may be None) when ``logits`` are given.
        tokens: (B, L) integer token ids; positions where ``mask`` is False are never read (padding may hold -100).
        mask: (B, L) bool, True on response tokens (EOS included); None means every position.
        lm_head_weight: W (V, d), ``lm_head.weight`` (the input embedding when embeddings are tied).
        logits: optional (B, L, V) finite logits ``hidden @ W^T + b`` the caller already has (e.g. from the HF
            forward); then they are used as they are (never modified) and the LM head is not recomputed.
        bias: optional (V,) LM-head bias, only with ``hidden``. It changes p_t but adds no term of its own to
            Phi (the Jacobian of the logits with respect to h is W whatever the bias).
        temperature: T > 0; ``p_t = softmax(z_t / T)``. Use the temperature of the log-prob computation.
        chunk_size: sequence positions per chunk; default :func:`default_chunk_size`.
        features: False skips Phi (no probability accumulation, no (V -> d) product; ``features`` is None), for
            passes that need only log-probs and entropies (a GRPO training or reference pass).

    Returns ``TokenStats(logprobs (B, L), entropy (B, L), features (B, d) or None)``. Logits are computed (from
    ``hidden``) in the inputs' dtype like the model's own LM head, one chunk of positions at a time, and every
    softmax, sum and product downstream runs in at least float32: half/bfloat16 inputs give float32 outputs, float32
    and float64 inputs keep their dtype. At most a few (B, chunk, V) blocks exist at once, never (B, L, V)
    probabilities. ``logprobs`` equals ``log_softmax(logits / T, -1).gather(-1, tokens[..., None])``; a sequence
    with no masked token gets Phi = 0. Without autograd the extra memory is O(B * chunk * V); with autograd
    (log-probs of the current policy) every chunk is kept for the backward pass, as any implementation must.

    >>> w, h = torch.randn(11, 4), torch.randn(2, 5, 4)
    >>> stats = token_stats(h, torch.randint(11, (2, 5)), None, w, chunk_size=2)
    >>> [tuple(x.shape) for x in stats]
    [(2, 5), (2, 5), (2, 4)]
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if tokens.ndim != 2 or tokens.is_floating_point():
        raise ValueError(f"tokens must be a (B, L) integer tensor, got {tuple(tokens.shape)} {tokens.dtype}")
    B, L = tokens.shape
    V, d = lm_head_weight.shape
    if L == 0:
        raise ValueError("tokens must have at least one position")
    if logits is not None:
        if logits.shape != (B, L, V):
            raise ValueError(f"logits must be (B, L, V) = {(B, L, V)}, got {tuple(logits.shape)}")
        if bias is not None:
            raise ValueError("bias is only used with hidden states; precomputed logits already include it")
        compute = logits.dtype
    else:
        if hidden is None or hidden.shape != (B, L, d):
            raise ValueError(f"hidden must be (B, L, d) = {(B, L, d)}, got "
                             f"{None if hidden is None else tuple(hidden.shape)}")
        compute = torch.promote_types(hidden.dtype, lm_head_weight.dtype)
        head = lm_head_weight.to(compute)
    if mask is None:
        mask = torch.ones(B, L, dtype=torch.bool, device=tokens.device)
    elif mask.shape != (B, L):
        raise ValueError(f"mask must be (B, L) = {(B, L)}, got {tuple(mask.shape)}")
    mask = mask.bool()
    acc = _accumulation_dtype(compute)
    device = tokens.device
    safe_tokens = tokens.masked_fill(~mask, 0).long()
    weights = mask.to(acc)
    chunk = max(1, min(L, chunk_size or default_chunk_size(B, V, device)))
    # Without autograd, (B, chunk, V) buffers are reused by every chunk with in-place ops (on CPU a fresh block per
    # op costs more in page faults than the arithmetic): one for exp(z - max), one for logits that must be computed,
    # scaled or cast. With autograd every op makes a new tensor.
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden, logits, lm_head_weight, bias))
    block = B * chunk * V
    own_logits = logits is None or logits.dtype != acc or temperature != 1
    exp_buffer = None if needs_grad else torch.empty(block, dtype=acc, device=device)
    z_buffer = None if needs_grad or not own_logits else torch.empty(block, dtype=acc, device=device)

    logprob_chunks, entropy_chunks = [], []
    prob_sum = torch.zeros(B, 1, V, dtype=acc, device=device) if features else None
    for start in range(0, L, chunk):
        width = min(chunk, L - start)
        span, shape = slice(start, start + width), (B, width, V)
        z_buf, e_buf = (None if b is None else b[:B * width * V].view(shape) for b in (z_buffer, exp_buffer))
        if logits is not None:
            z = logits[:, span]
        else:
            rows = hidden[:, span].reshape(-1, d).to(compute)  # one GEMM for the whole chunk
            into = z_buf.view(-1, V) if z_buf is not None and compute == acc else None
            z = torch.matmul(rows, head.T, out=into)
            if bias is not None:
                z.add_(bias.to(compute))  # in place on a fresh product (the matmul's backward does not need it)
            z = z.view(shape)
        if z.dtype != acc or temperature != 1:
            z = torch.div(z, temperature, out=z_buf) if z_buf is not None else z.to(acc) / temperature
        # z is read-only from here on (it may be the caller's logits)
        e, total, top = _exp_shifted(z, e_buf)
        log_total = total.log()
        logprob_chunks.append((z.gather(-1, safe_tokens[:, span, None]) - top - log_total).squeeze(-1))
        mean_shifted = torch.linalg.vecdot(e, z).unsqueeze(-1) / total - top  # sum_v p_v (z_v - max)
        entropy_chunks.append((log_total - mean_shifted).squeeze(-1))  # H = lse - sum_v p_v z_v
        if prob_sum is not None:  # += sum_t m_t p_t
            prob_sum.baddbmm_(weights[:, None, span] / total.detach().view(B, 1, width), e.detach())

    phi = None
    if prob_sum is not None:
        counts = torch.zeros(B, V, dtype=acc, device=device).scatter_add_(1, safe_tokens, weights)
        delta = (counts - prob_sum.squeeze(1)) / weights.sum(-1, keepdim=True).clamp_min(1)
        phi = _times_weight(delta, lm_head_weight.detach())
    zero = torch.zeros((), dtype=acc, device=device)
    return TokenStats(torch.where(mask, torch.cat(logprob_chunks, 1), zero),
                      torch.where(mask, torch.cat(entropy_chunks, 1), zero), phi)


def sequence_features(hidden: Tensor | None, tokens: Tensor, mask: Tensor | None, lm_head_weight: Tensor, *,
                      logits: Tensor | None = None, bias: Tensor | None = None, temperature: float = 1.0,
                      chunk_size: int | None = None) -> Tensor:
    """G2RL's Phi per sequence, (B, d): the mean over masked t of ``W^T (e(y_t) - p_t)``, eq. 8 with alpha = 1.

    Equals T times the mean over response tokens of d log p(y_t) / d h_t. The LM-head bias has no direct effect on
    Phi (it enters only through p_t). Same arguments, precision and memory as :func:`token_stats`, whose
    ``features`` this returns (one code path); use ``token_stats`` when the log-probs are needed too.

    >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> sequence_features(None, torch.tensor([[0]]), None, w, logits=torch.zeros(1, 1, 2))
    tensor([[ 0.5000, -0.5000]])
    """
    return token_stats(hidden, tokens, mask, lm_head_weight, logits=logits, bias=bias, temperature=temperature,
                       chunk_size=chunk_size).features
