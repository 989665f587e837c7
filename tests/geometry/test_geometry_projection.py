"""project_orthogonal against a per-vector float64 loop, for tensors, sequences of tensors and seed batches."""

from __future__ import annotations

import pytest
import torch

from rlcore.geometry import project_orthogonal

F64 = torch.float64


def loop_reference(g: torch.Tensor, ref: torch.Tensor, eps: float = 1e-10, gate: str = "always"):
    """One vector at a time along the last dim, straight from the formula."""
    g2, r2 = torch.broadcast_tensors(g, ref)
    out, coefs = g2.clone().reshape(-1, g.shape[-1]), []
    for i, (gi, ri) in enumerate(zip(g2.reshape(-1, g.shape[-1]), r2.reshape(-1, g.shape[-1]))):
        dot = float(gi @ ri)
        c = dot / max(float(ri @ ri), eps)
        if gate == "conflict" and dot >= 0:
            c = 0.0
        out[i] = gi - c * ri
        coefs.append(c)
    return out.reshape(g2.shape), torch.tensor(coefs, dtype=F64).reshape(g2.shape[:-1])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", [(7,), (5, 7), (2, 3, 16)])
def test_tensor_form_matches_loop_and_is_orthogonal(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    g, ref = torch.randn(shape, generator=gen, dtype=F64), torch.randn(shape, generator=gen, dtype=F64)
    out, coef = project_orthogonal(g, ref, return_coef=True)
    expected, expected_coef = loop_reference(g, ref)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(coef, expected_coef, rtol=0, atol=1e-12)
    assert out.dtype == F64 and coef.shape == shape[:-1]
    # result orthogonal to ref; g - result parallel to ref (it is coef * ref)
    torch.testing.assert_close((out * ref).sum(-1), torch.zeros(shape[:-1], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(g - out, coef.unsqueeze(-1) * ref, rtol=0, atol=1e-12)
    # idempotent: projecting again changes nothing
    torch.testing.assert_close(project_orthogonal(out, ref), out, rtol=0, atol=1e-12)


def test_reference_broadcasts_over_leading_dims():
    gen = torch.Generator().manual_seed(3)
    g, ref = torch.randn(6, 5, generator=gen, dtype=F64), torch.randn(5, generator=gen, dtype=F64)
    out = project_orthogonal(g, ref)
    expected, _ = loop_reference(g, ref.expand(6, 5))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("container", [list, tuple])
@pytest.mark.parametrize("seed", [0, 5])
def test_sequence_equals_flattened_vector(container, seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 2), ()]
    gs = container(torch.randn(s, generator=gen, dtype=F64) for s in shapes)
    rs = container(torch.randn(s, generator=gen, dtype=F64) for s in shapes)
    out, coef = project_orthogonal(gs, rs, return_coef=True)
    flat, flat_coef = project_orthogonal(torch.cat([t.reshape(-1) for t in gs]),
                                         torch.cat([t.reshape(-1) for t in rs]), return_coef=True)
    assert type(out) is container and [tuple(t.shape) for t in out] == shapes
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in out]), flat, rtol=0, atol=1e-12)
    torch.testing.assert_close(coef, flat_coef, rtol=0, atol=1e-12)
    assert coef.shape == ()


@pytest.mark.parametrize("gate", ["always", "conflict"])
@pytest.mark.parametrize("shared_ref", [False, True])
def test_seed_batch_projects_each_seed_separately(gate, shared_ref):
    gen = torch.Generator().manual_seed(11)
    K, shapes = 4, [(3, 4), (5,), (1,)]
    gs = [torch.randn(K, *s, generator=gen, dtype=F64) for s in shapes]
    rs = [torch.randn(*(() if shared_ref else (K,)), *s, generator=gen, dtype=F64) for s in shapes]
    out, coef = project_orthogonal(gs, rs, gate=gate, batch_dims=1, return_coef=True)
    assert coef.shape == (K,)
    for k in range(K):
        one, one_coef = project_orthogonal([t[k] for t in gs], [r if shared_ref else r[k] for r in rs], gate=gate,
                                           return_coef=True)
        for got, want in zip(out, one):
            torch.testing.assert_close(got[k], want, rtol=0, atol=1e-12)
        torch.testing.assert_close(coef[k], one_coef, rtol=0, atol=1e-12)
    # the same layout as one stacked tensor with batch_dims=1
    stacked = project_orthogonal(torch.cat([t.reshape(K, -1) for t in gs], 1),
                                 torch.cat([r.reshape(-1) if shared_ref else r.reshape(K, -1) for r in rs], -1),
                                 gate=gate)
    torch.testing.assert_close(torch.cat([t.reshape(K, -1) for t in out], 1), stacked, rtol=0, atol=1e-12)
    # a single (K, ...) tensor with batch_dims=1 is the one-element sequence
    torch.testing.assert_close(project_orthogonal(gs[0], rs[0], gate=gate, batch_dims=1),
                               project_orthogonal([gs[0]], [rs[0]], gate=gate, batch_dims=1)[0], rtol=0, atol=0)


def test_zero_reference_is_floored_by_eps():
    g = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=F64)
    out, coef = project_orthogonal(g, torch.zeros(2, dtype=F64), return_coef=True)
    assert torch.equal(out, g) and torch.equal(coef, torch.zeros(2, dtype=F64))
    out_list = project_orthogonal([g], [torch.zeros_like(g)])
    assert torch.equal(out_list[0], g)


def test_tiny_reference_uses_eps_floor():
    g, ref = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([1e-6, 0.0], dtype=F64)
    _, coef = project_orthogonal(g, ref, eps=1e-10, return_coef=True)
    torch.testing.assert_close(coef, torch.tensor(1e-6 / 1e-10, dtype=F64))  # <g, r> / eps, not <g, r> / |r|^2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conflict_gate_matches_loop_and_leaves_agreeing_rows_unchanged(seed):
    gen = torch.Generator().manual_seed(seed)
    g, ref = torch.randn(32, 6, generator=gen, dtype=F64), torch.randn(32, 6, generator=gen, dtype=F64)
    out, coef = project_orthogonal(g, ref, gate="conflict", return_coef=True)
    expected, expected_coef = loop_reference(g, ref, gate="conflict")
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(coef, expected_coef, rtol=0, atol=1e-12)
    agree = (g * ref).sum(-1) >= 0
    assert 0 < agree.sum() < 32  # both cases present
    assert torch.equal(out[agree], g[agree])
    torch.testing.assert_close(out[~agree], project_orthogonal(g[~agree], ref[~agree]), rtol=0, atol=1e-12)
    assert ((out * ref).sum(-1)[~agree].abs() < 1e-12).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_is_preserved(dtype):
    g, ref = torch.randn(3, 4).to(dtype), torch.randn(3, 4).to(dtype)
    out, coef = project_orthogonal(g, ref, return_coef=True)
    assert out.dtype == dtype and coef.dtype == dtype
    assert [t.dtype for t in project_orthogonal([g], [ref])] == [dtype]


def test_bad_arguments_raise():
    g = torch.randn(4)
    with pytest.raises(ValueError, match="gate"):
        project_orthogonal(g, g, gate="sometimes")
    with pytest.raises(TypeError, match="both"):
        project_orthogonal(g, [g])
    with pytest.raises(ValueError, match="equal length"):
        project_orthogonal([g, g], [g])
    with pytest.raises(ValueError, match="trailing vector parts"):
        project_orthogonal([torch.randn(2, 3)], [torch.randn(2, 4)])
