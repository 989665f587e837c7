"""token_stats / sequence_features against a full-softmax float64 reference and autograd to the hidden states."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rlcore.geometry import sequence_features, token_stats

F64 = torch.float64


def make_inputs(B, L, d, V, seed, dtype=F64, bias=False):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, d, generator=gen, dtype=dtype)
    weight = torch.randn(V, d, generator=gen, dtype=dtype) / d**0.5
    tokens = torch.randint(0, V, (B, L), generator=gen)
    mask = torch.rand(B, L, generator=gen) < 0.7
    mask[0] = True
    if B > 2:
        mask[1] = False  # a sequence with no response token
    b = torch.randn(V, generator=gen, dtype=dtype) if bias else None
    return hidden, tokens, mask, weight, b


def full_softmax_reference(hidden, tokens, mask, weight, bias=None, temperature=1.0):
    """Every (B, L, V) tensor at once, phi_t in the gather form W[y_t] - p_t W, then the masked mean."""
    return reference_from_logits(hidden @ weight.T + (0 if bias is None else bias), tokens, mask, weight, temperature)


def reference_from_logits(logits, tokens, mask, weight, temperature=1.0):
    logp = torch.log_softmax(logits / temperature, -1)
    p = logp.exp()
    safe = tokens.masked_fill(~mask, 0)
    token_logp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    entropy = -(p * logp).sum(-1)
    phi_t = weight[safe] - p @ weight
    m = mask.to(logits.dtype).unsqueeze(-1)
    features = (phi_t * m).sum(1) / m.sum(1).clamp_min(1)
    return token_logp * mask, entropy * mask, features


def autograd_features(hidden, tokens, mask, weight, bias=None, temperature=1.0):
    """T * mean over response tokens of d log p(y_t) / d h_t, by backprop (log p(y_t) depends on h_t only)."""
    h = hidden.detach().requires_grad_(True)
    logp = torch.log_softmax((h @ weight.T + (0 if bias is None else bias)) / temperature, -1)
    token_logp = logp.gather(-1, tokens.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    (grad,) = torch.autograd.grad((token_logp * mask).sum(), h)
    return temperature * grad.sum(1) / mask.sum(1, keepdim=True).clamp_min(1).to(hidden.dtype)


CASES = [(2, 5, 4, 11), (3, 9, 6, 17), (1, 1, 3, 2)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_size", [1, 4, None])
@pytest.mark.parametrize("shape", CASES)
def test_token_stats_matches_references(shape, chunk_size, temperature, seed):
    hidden, tokens, mask, weight, _ = make_inputs(*shape, seed)
    padded_tokens = tokens.masked_fill(~mask, -100)  # padding ids are never read
    stats = token_stats(hidden, padded_tokens, mask, weight, temperature=temperature, chunk_size=chunk_size)
    ref_logp, ref_entropy, ref_phi = full_softmax_reference(hidden, tokens, mask, weight, temperature=temperature)
    torch.testing.assert_close(stats.logprobs, ref_logp, rtol=0, atol=1e-12)
    torch.testing.assert_close(stats.entropy, ref_entropy, rtol=0, atol=1e-12)
    torch.testing.assert_close(stats.features, ref_phi, rtol=0, atol=1e-12)
    torch.testing.assert_close(stats.features, autograd_features(hidden, tokens, mask, weight, None, temperature),
                               rtol=0, atol=1e-12)
    assert all(t.dtype == F64 for t in stats)
    assert (stats.logprobs[~mask] == 0).all() and (stats.entropy[~mask] == 0).all()


@pytest.mark.parametrize("temperature", [1.0, 1.3])
@pytest.mark.parametrize("seed", [2, 3])
def test_given_logits_are_used_and_match(temperature, seed):
    hidden, tokens, mask, weight, bias = make_inputs(3, 7, 5, 13, seed, bias=True)
    logits = hidden @ weight.T + bias
    from_logits = token_stats(None, tokens, mask, weight, logits=logits, temperature=temperature, chunk_size=2)
    from_hidden = token_stats(hidden, tokens, mask, weight, bias=bias, temperature=temperature, chunk_size=3)
    expected_logp = torch.log_softmax(logits / temperature, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(from_logits.logprobs, expected_logp * mask, rtol=0, atol=1e-12)
    for a, b in zip(from_logits, from_hidden):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(from_logits.features,
                               autograd_features(hidden, tokens, mask, weight, bias, temperature), rtol=0, atol=1e-12)
    # the logits really are the source: shifting them per position changes nothing (softmax), scaling does
    shifted = token_stats(hidden, tokens, mask, weight, logits=logits + torch.randn(3, 7, 1, dtype=F64))
    torch.testing.assert_close(shifted.features, token_stats(None, tokens, mask, weight, logits=logits).features)
    assert not torch.allclose(token_stats(None, tokens, mask, weight, logits=2 * logits).features,
                              from_logits.features)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_caller_logits_are_not_modified(temperature):
    hidden, tokens, mask, weight, _ = make_inputs(2, 4, 3, 5, seed=0)
    logits = hidden @ weight.T
    before = logits.clone()
    stats = token_stats(None, tokens, mask, weight, logits=logits, temperature=temperature, chunk_size=1)
    assert torch.equal(logits, before)
    torch.testing.assert_close(stats.features, full_softmax_reference(hidden, tokens, mask, weight, None,
                                                                      temperature)[2], rtol=0, atol=1e-12)


def test_bias_enters_only_through_probabilities():
    hidden, tokens, mask, weight, bias = make_inputs(2, 6, 4, 9, seed=4, bias=True)
    with_bias = sequence_features(hidden, tokens, mask, weight, bias=bias)
    torch.testing.assert_close(with_bias, full_softmax_reference(hidden, tokens, mask, weight, bias)[2], rtol=0,
                               atol=1e-12)
    assert not torch.allclose(with_bias, sequence_features(hidden, tokens, mask, weight))


def test_sequence_features_is_token_stats_features():
    hidden, tokens, mask, weight, _ = make_inputs(3, 8, 5, 7, seed=5)
    assert torch.equal(sequence_features(hidden, tokens, mask, weight, chunk_size=3),
                       token_stats(hidden, tokens, mask, weight, chunk_size=3).features)
    all_positions = sequence_features(hidden, tokens, None, weight)
    torch.testing.assert_close(all_positions, full_softmax_reference(hidden, tokens, torch.ones_like(mask),
                                                                     weight)[2], rtol=0, atol=1e-12)


def test_logprobs_and_entropy_are_differentiable_features_are_not():
    hidden, tokens, mask, weight, _ = make_inputs(2, 6, 4, 9, seed=6)
    h = hidden.clone().requires_grad_(True)
    stats = token_stats(h, tokens, mask, weight, chunk_size=2)
    assert not stats.features.requires_grad
    for with_grad, without in zip(stats, token_stats(hidden, tokens, mask, weight, chunk_size=2)):
        torch.testing.assert_close(with_grad, without, rtol=0, atol=1e-12)  # the in-place path agrees
    (grad,) = torch.autograd.grad(stats.logprobs.sum() + 0.1 * stats.entropy.sum(), h)
    h_ref = hidden.clone().requires_grad_(True)
    ref_logp, ref_entropy, _ = full_softmax_reference(h_ref, tokens, mask, weight)
    (expected,) = torch.autograd.grad(ref_logp.sum() + 0.1 * ref_entropy.sum(), h_ref)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)
    # through given logits too, at a temperature
    logits = (hidden @ weight.T).requires_grad_(True)
    stats = token_stats(None, tokens, mask, weight, logits=logits, temperature=0.8, chunk_size=4)
    (grad,) = torch.autograd.grad((stats.logprobs - stats.entropy).sum(), logits)
    ref_logits = logits.detach().clone().requires_grad_(True)
    ref_logp, ref_entropy, _ = reference_from_logits(ref_logits, tokens, mask, weight, temperature=0.8)
    (expected,) = torch.autograd.grad((ref_logp - ref_entropy).sum(), ref_logits)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_accumulates_in_float32(half):
    hidden, tokens, mask, weight, _ = make_inputs(2, 16, 8, 300, seed=7, dtype=torch.float32)
    h, w = hidden.to(half), weight.to(half)
    stats = token_stats(h, tokens, mask, w, chunk_size=5)
    assert all(t.dtype == torch.float32 for t in stats)
    # the float64 reference from the same half-precision logits the chunked pass computes
    expected = reference_from_logits((h @ w.T).double(), tokens, mask, w.double())
    for got, want in zip(stats, expected):
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)
    assert token_stats(hidden, tokens, mask, weight).features.dtype == torch.float32


class LargestAllocation(TorchDispatchMode):
    """Records the largest storage (in elements) that any op allocates, ignoring views of the given inputs."""

    def __init__(self, *inputs: torch.Tensor):
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in inputs}
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.known:
                self.largest = max(self.largest, t.untyped_storage().nbytes() // t.element_size())
        return out


@pytest.mark.parametrize("use_logits", [False, True])
def test_never_holds_more_than_a_chunk_of_probabilities(use_logits):
    B, L, d, V, chunk = 3, 40, 8, 101, 4
    hidden, tokens, mask, weight, _ = make_inputs(B, L, d, V, seed=8)
    logits = hidden @ weight.T if use_logits else None
    with LargestAllocation(hidden, tokens, mask, weight, *([] if logits is None else [logits])) as spy:
        features = sequence_features(hidden, tokens, mask, weight, logits=logits, chunk_size=chunk,
                                     temperature=0.9)
    assert spy.largest <= B * chunk * V < B * L * V
    torch.testing.assert_close(features, full_softmax_reference(hidden, tokens, mask, weight, temperature=0.9)[2],
                               rtol=0, atol=1e-12)


def test_default_chunk_covers_long_sequences():
    hidden, tokens, mask, weight, _ = make_inputs(2, 300, 4, 7, seed=9)
    torch.testing.assert_close(sequence_features(hidden, tokens, mask, weight),
                               full_softmax_reference(hidden, tokens, mask, weight)[2], rtol=0, atol=1e-12)


def test_bad_arguments_raise():
    hidden, tokens, mask, weight, bias = make_inputs(2, 4, 3, 5, seed=0, bias=True)
    with pytest.raises(ValueError, match="temperature"):
        token_stats(hidden, tokens, mask, weight, temperature=0.0)
    with pytest.raises(ValueError, match="hidden"):
        token_stats(hidden[:, :, :2], tokens, mask, weight)
    with pytest.raises(ValueError, match="hidden"):
        token_stats(None, tokens, mask, weight)
    with pytest.raises(ValueError, match="logits"):
        token_stats(None, tokens, mask, weight, logits=torch.randn(2, 4, 6, dtype=F64))
    with pytest.raises(ValueError, match="bias"):
        token_stats(None, tokens, mask, weight, logits=hidden @ weight.T, bias=bias)
    with pytest.raises(ValueError, match="mask"):
        token_stats(hidden, tokens, mask[:, :2], weight)
    with pytest.raises(ValueError, match="integer"):
        token_stats(hidden, tokens.double(), mask, weight)
