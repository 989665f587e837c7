"""O-DICE's value objective as one pure function: its terms against naive loops, and its gradients with respect to
V(s) and V(s') against the derivatives worked out by hand, for every gradient rule, in float64."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.algorithms.odice.losses import value_objective

# K seeds, H heads, B transitions
SHAPES = [(1, 1, 1), (1, 2, 7), (3, 2, 5), (2, 1, 33)]


def f_star_scalar(y: float, divergence: str) -> float:
    if divergence == "pearson_chi2":
        return y * y / 4 + y if y >= -2 else -1.0
    return math.exp(y - 1)


def f_star_prime(y: float, divergence: str) -> float:
    """d f*(y) / dy: max(y/2 + 1, 0) (Pearson chi^2, flat below -2) or exp(y - 1)."""
    return max(y / 2 + 1, 0.0) if divergence == "pearson_chi2" else math.exp(y - 1)


def inputs(k, h, b, seed):
    g = torch.Generator().manual_seed(seed)
    return dict(
        rewards=torch.randn(k, 1, b, generator=g, dtype=torch.float64) * 2,
        discount_mask=0.99 * (torch.rand(k, 1, b, generator=g) > 0.3).double(),
        v=(torch.randn(k, h, b, generator=g, dtype=torch.float64) * 2).requires_grad_(True),
        v_next=(torch.randn(k, h, b, generator=g, dtype=torch.float64) * 2).requires_grad_(True),
        target_v=torch.randn(k, 1, b, generator=g, dtype=torch.float64) * 2,
        target_v_next=torch.randn(k, 1, b, generator=g, dtype=torch.float64) * 2,
    )


@pytest.mark.parametrize("rule", ["semi", "true", "orthogonal"])
@pytest.mark.parametrize("divergence", ["pearson_chi2", "reverse_kl"])
@pytest.mark.parametrize("shape", SHAPES)
def test_terms_and_gradients_match_hand_derivation(rule, divergence, shape):
    k, h, b = shape
    lam, eta = 0.6, 1.7
    x = inputs(k, h, b, seed=k * 100 + h * 10 + b)
    terms = value_objective(**x, lam=lam, eta=eta, divergence=divergence, grad_rule=rule)
    n = h * b
    r, m, v, vn, tv, tvn = (x[key].detach() for key in ("rewards", "discount_mask", "v", "v_next", "target_v",
                                                         "target_v_next"))
    dv = torch.zeros_like(v)
    dvn = torch.zeros_like(vn)
    for s in range(k):
        mean_term = forward_term = backward_term = 0.0
        for j in range(h):
            for i in range(b):
                nxt = vn[s, j, i] if rule == "true" else tvn[s, 0, i]
                delta = float(r[s, 0, i] + m[s, 0, i] * nxt - v[s, j, i])
                assert float(terms.residual[s, j, i].detach()) == pytest.approx(delta, rel=1e-12, abs=1e-12)
                mean_term += (1 - lam) * float(v[s, j, i]) / n
                forward_term += lam * f_star_scalar(delta, divergence) / n
                dv[s, j, i] = (1 - lam) / n - lam / n * f_star_prime(delta, divergence)
                if rule == "true":
                    dvn[s, j, i] = lam / n * float(m[s, 0, i]) * f_star_prime(delta, divergence)
                if rule == "orthogonal":
                    bwd = float(r[s, 0, i] + m[s, 0, i] * vn[s, j, i] - tv[s, 0, i])
                    backward_term += lam * eta * f_star_scalar(bwd, divergence) / n
                    dvn[s, j, i] = lam * eta / n * float(m[s, 0, i]) * f_star_prime(bwd, divergence)
        assert float(terms.mean_term[s].detach()) == pytest.approx(mean_term, rel=1e-12, abs=1e-12)
        assert float(terms.forward_term[s].detach()) == pytest.approx(forward_term, rel=1e-12, abs=1e-12)
        if rule == "orthogonal":
            assert float(terms.backward_term[s].detach()) == pytest.approx(backward_term, rel=1e-12, abs=1e-12)
    if rule != "orthogonal":
        assert terms.backward_term is None and terms.backward_residual is None
    grads = torch.autograd.grad(terms.loss(), [x["v"], x["v_next"]], allow_unused=True)
    got_v = grads[0]
    got_vn = grads[1] if grads[1] is not None else torch.zeros_like(vn)
    torch.testing.assert_close(got_v, dv, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_vn, dvn, rtol=1e-10, atol=1e-12)
    assert torch.isclose(terms.loss(), (terms.mean_term + terms.forward_term).sum()
                         + (terms.backward_term.sum() if terms.backward_term is not None else 0))


def test_semi_needs_no_online_next_value_and_true_no_target():
    x = inputs(2, 2, 4, seed=3)
    semi = value_objective(x["rewards"], x["discount_mask"], x["v"], None, None, x["target_v_next"], lam=0.5,
                           eta=1.0, divergence="pearson_chi2", grad_rule="semi")
    true = value_objective(x["rewards"], x["discount_mask"], x["v"], x["v_next"], None, None, lam=0.5, eta=1.0,
                           divergence="pearson_chi2", grad_rule="true")
    assert semi.residual.shape == true.residual.shape == (2, 2, 4)
    with pytest.raises(ValueError, match="grad_rule"):
        value_objective(**x, lam=0.5, eta=1.0, divergence="pearson_chi2", grad_rule="pcgrad")
