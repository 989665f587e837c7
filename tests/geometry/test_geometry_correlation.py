"""Pearson and Spearman correlations and Gram cosines against hand computations, numpy and brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlcore.geometry import average_ranks, cosine_matrix, gram_cosines, pearson, spearman

F64 = torch.float64


def naive_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties averaged, by counting: rank_i = #{v_j < v_i} + (#{v_j == v_i} + 1) / 2."""
    return [sum(v < x for v in values) + (sum(v == x for v in values) + 1) / 2 for x in values]


def test_hand_values():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    y = torch.tensor([2.0, 1.0, 4.0, 3.0], dtype=F64)
    # centred: x -1.5 -0.5 0.5 1.5, y -0.5 -1.5 1.5 0.5; sum dx dy = 0.75 + 0.75 + 0.75 + 0.75 = 3, sums of squares 5
    torch.testing.assert_close(pearson(x, y), torch.tensor(0.6, dtype=F64))
    torch.testing.assert_close(spearman(x, y), torch.tensor(0.6, dtype=F64))  # already ranks
    torch.testing.assert_close(pearson(x, -3 * x + 1), torch.tensor(-1.0, dtype=F64))
    torch.testing.assert_close(spearman(x, x.exp()), torch.tensor(1.0, dtype=F64))  # monotone, not linear
    assert pearson(x, x.exp()) < 1
    assert average_ranks(torch.tensor([5.0, 1.0, 5.0, 5.0, 0.0])).tolist() == [4.0, 2.0, 4.0, 4.0, 1.0]
    assert average_ranks(torch.tensor([3, 1, 2])).dtype == torch.float32


def test_undefined_is_nan():
    assert math.isnan(pearson(torch.ones(4), torch.arange(4.0)).item())
    assert math.isnan(spearman(torch.arange(4.0), torch.full((4,), 2.0)).item())
    assert math.isnan(pearson(torch.ones(1), torch.ones(1)).item())
    with pytest.raises(ValueError, match="1-D"):
        pearson(torch.ones(3), torch.ones(4))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [3, 10, 45])
def test_against_numpy_and_a_rank_loop(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=F64)
    y = 0.5 * x + torch.randn(n, generator=g, dtype=F64)
    y[: n // 3] = torch.round(y[: n // 3])  # some ties
    if n > 3:
        x[-2:] = x[0]
    torch.testing.assert_close(pearson(x, y), torch.tensor(np.corrcoef(x.numpy(), y.numpy())[0, 1], dtype=F64))
    rx, ry = naive_ranks(x.tolist()), naive_ranks(y.tolist())
    assert average_ranks(x).tolist() == rx and average_ranks(y).tolist() == ry
    torch.testing.assert_close(spearman(x, y), torch.tensor(np.corrcoef(rx, ry)[0, 1], dtype=F64))
    assert -1 <= spearman(x, y) <= 1


@pytest.mark.parametrize("shape", [(5, 3), (4, 16)])
def test_gram_cosines_equal_the_cosines_of_the_vectors(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(7), dtype=F64)
    x[1] = 0  # a zero vector has cosine 0 with everything (itself included)
    got = gram_cosines(x @ x.T)
    for i in range(shape[0]):
        for j in range(shape[0]):
            ni, nj = x[i].norm().item(), x[j].norm().item()
            expected = 0.0 if ni * nj == 0 else (x[i] @ x[j]).item() / (ni * nj)
            assert abs(got[i, j].item() - expected) < 1e-12
    off = ~torch.eye(shape[0], dtype=torch.bool)
    torch.testing.assert_close(got[off], cosine_matrix(x)[off])
