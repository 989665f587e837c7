"""per_sample_grads and per_sample_grad_gram against a naive one-sample-at-a-time backward loop (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlcore.geometry import per_sample_grad_gram, per_sample_grads

F64 = torch.float64


class Block(nn.Module):
    """A tiny pre-norm transformer block (causal self-attention + MLP) with batch-first (B, T, d) inputs."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        h = self.norm1(x)
        q, k, v = (f(h).view(B, T, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = (q @ k.transpose(-1, -2)) / (d // self.heads) ** 0.5
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, d))
        return x + self.down(torch.tanh(self.up(self.norm2(x))))


def mlp(d_in: int, width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))


def mlp_loss(model, batch):
    x, y = batch
    return (model(x).squeeze(-1) - y) ** 2


def block_loss(model, x):
    out = model(x)
    return (out.sin() * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum((1, 2))


def make_case(kind, B, size, seed):
    torch.manual_seed(seed)
    if kind == "mlp":
        model = mlp(size, 2 * size).to(F64)
        return model, mlp_loss, (torch.randn(B, size, dtype=F64), torch.randn(B, dtype=F64))
    model = Block(size, heads=2).to(F64)
    return model, block_loss, torch.randn(B, 5, size, dtype=F64)


def sample(batch, i):
    return batch[i:i + 1] if isinstance(batch, torch.Tensor) else tuple(t[i:i + 1] for t in batch)


def naive_grads(model, loss_fn, batch, params):
    """One backward per sample: (B, P) flattened gradients of ``params``."""
    rows = []
    for i in range(len(batch if isinstance(batch, torch.Tensor) else batch[0])):
        grads = torch.autograd.grad(loss_fn(model, sample(batch, i)).sum(), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


CASES = [("mlp", 6, 3, 0), ("mlp", 4, 5, 1), ("block", 3, 4, 0), ("block", 4, 6, 2)]


@pytest.mark.parametrize("kind,B,size,seed", CASES)
def test_per_sample_grads_match_loop(kind, B, size, seed):
    model, loss_fn, batch = make_case(kind, B, size, seed)
    grads = per_sample_grads(model, loss_fn, batch)
    names = [n for n, _ in model.named_parameters()]
    assert list(grads) == names
    got = torch.cat([grads[n].reshape(B, -1) for n in names], 1)
    torch.testing.assert_close(got, naive_grads(model, loss_fn, batch, list(model.parameters())), rtol=0, atol=1e-10)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("form", ["auto", "ghost", "explicit"])
@pytest.mark.parametrize("kind,B,size,seed", CASES)
def test_gram_matches_loop(kind, B, size, seed, form):
    model, loss_fn, batch = make_case(kind, B, size, seed)
    gram = per_sample_grad_gram(model, loss_fn, batch, form=form)
    params = [p for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters()]
    flat = naive_grads(model, loss_fn, batch, params)
    torch.testing.assert_close(gram, flat @ flat.T, rtol=0, atol=1e-8)
    assert gram.dtype == F64 and all(p.grad is None for p in model.parameters())


def test_gram_of_chosen_layers_by_name_and_module():
    model, loss_fn, batch = make_case("block", 3, 4, seed=3)
    flat = naive_grads(model, loss_fn, batch, [model.q.weight, model.q.bias, model.down.weight])
    for layers in (["q", "down"], [model.q, model.down]):
        torch.testing.assert_close(per_sample_grad_gram(model, loss_fn, batch, layers=layers), flat @ flat.T,
                                   rtol=0, atol=1e-8)


def test_gram_skips_frozen_parameters_and_counts_shared_layers_once_per_call():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.head = nn.Linear(3, 3), nn.Linear(3, 1)

        def forward(self, x):
            return self.head(torch.tanh(self.inner(torch.tanh(self.inner(x)))))  # inner runs twice

    torch.manual_seed(0)
    model = Shared().to(F64)
    model.head.bias.requires_grad_(False)
    batch = (torch.randn(5, 2, 3, dtype=F64), torch.randn(5, 2, dtype=F64))
    trainable = [p for p in model.parameters() if p.requires_grad]
    flat = naive_grads(model, mlp_loss_seq, batch, trainable)
    torch.testing.assert_close(per_sample_grad_gram(model, mlp_loss_seq, batch), flat @ flat.T, rtol=0, atol=1e-8)
    grads = per_sample_grads(model, mlp_loss_seq, batch)
    assert "head.bias" not in grads
    torch.testing.assert_close(torch.cat([grads[n].reshape(5, -1) for n in grads], 1), flat, rtol=0, atol=1e-10)


def mlp_loss_seq(model, batch):
    x, y = batch
    return ((model(x).squeeze(-1) - y) ** 2).sum(-1)


def test_gram_is_consistent_with_per_sample_grads_in_float32():
    model, loss_fn, batch = make_case("mlp", 8, 4, seed=5)
    model = model.float()
    batch = tuple(t.float() for t in batch)
    flat = torch.cat([g.reshape(8, -1) for g in per_sample_grads(model, loss_fn, batch).values()], 1)
    gram = per_sample_grad_gram(model, loss_fn, batch)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, flat @ flat.T, rtol=1e-4, atol=1e-4)


def test_functional_weight_use_is_reported():
    attn = nn.MultiheadAttention(4, 1, batch_first=True)

    def loss(m, x):
        return m(x, x, x)[0].sum((1, 2))

    with pytest.raises(ValueError, match="never ran as modules"):
        per_sample_grad_gram(attn, loss, torch.randn(3, 2, 4))


def test_gram_rejects_bad_arguments():
    model, loss_fn, batch = make_case("mlp", 4, 3, seed=0)
    with pytest.raises(ValueError, match="not an nn.Linear"):
        per_sample_grad_gram(model, loss_fn, batch, layers=["1"])  # the Tanh
    with pytest.raises(ValueError, match="form"):
        per_sample_grad_gram(model, loss_fn, batch, form="fast")
    with pytest.raises(ValueError, match="per-sample losses"):
        per_sample_grad_gram(model, lambda m, b: mlp_loss(m, b).mean(), batch)
    seq_first = nn.Linear(3, 1).to(F64)
    with pytest.raises(ValueError, match="first dim must be the sample index"):
        per_sample_grad_gram(seq_first, lambda m, x: m(x.transpose(0, 1)).sum((0, 2)), torch.randn(4, 2, 3, dtype=F64))
