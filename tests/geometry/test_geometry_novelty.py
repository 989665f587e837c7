"""cosine_matrix, pairwise_stats, novelty_scores and scale_rewards against float64 loops and hand-computed groups."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.geometry import cosine_matrix, novelty_scores, pairwise_stats, scale_rewards

F64 = torch.float64


def random_group(G, m, d, seed, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(G, m, d, generator=gen, dtype=dtype)
    rewards = torch.randint(0, 2, (G, m), generator=gen).to(dtype) * 2 - 1
    mask = torch.rand(G, m, generator=gen) < 0.75
    return phi, rewards, mask


def loop_novelty(phi, rewards, mask, eps=1e-8):
    """nu per response from the equations of docs/g2rl.md "Novelty", one response and one peer at a time."""
    G, m, _ = phi.shape
    nu = torch.zeros(G, m, dtype=F64)
    for g in range(G):
        idx = [i for i in range(m) if mask[g, i]]
        for i in idx:
            peers = [j for j in idx if j != i]
            if not peers:
                nu[g, i] = 1.0
                continue
            norm = sum(math.exp(float(rewards[g, k])) for k in peers)
            total = 0.0
            for j in peers:
                a, b = phi[g, i], phi[g, j]
                cos = float(a @ b) / ((float(a.norm()) + eps) * (float(b.norm()) + eps))
                total += math.exp(float(rewards[g, j])) / norm * cos**2
            nu[g, i] = max(1.0 - total, 0.0)
    return nu


def loop_scale(rewards, novelty, mask, lam, mode, clip, eps=1e-8):
    out = torch.zeros_like(rewards, dtype=F64)
    for g in range(rewards.shape[0]):
        idx = [i for i in range(rewards.shape[1]) if mask[g, i]]
        if not idx:
            continue
        nus = [float(novelty[g, i]) for i in idx]
        low, high = min(nus), max(nus)
        for i in idx:
            r, nu = float(rewards[g, i]), float(novelty[g, i])
            degenerate = high - low <= eps
            nu_bar = (0.0 if mode == "literal" else 0.5) if degenerate else (nu - low) / (high - low)
            factor = {"literal": 1 + lam * r * nu_bar, "centered": 1 + lam * (2 * nu_bar - 1), "none": 1.0}[mode]
            out[g, i] = min(max(r * factor, -clip), clip)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 6), (3, 1, 2)])
def test_cosine_matrix_matches_loop(shape, seed):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    cos = cosine_matrix(x)
    flat = x.reshape(-1, *shape[-2:])
    expected = torch.tensor([[[float(a @ b) / ((float(a.norm()) + 1e-8) * (float(b.norm()) + 1e-8)) for b in grp]
                              for a in grp] for grp in flat], dtype=F64).reshape(*shape[:-1], shape[-2])
    torch.testing.assert_close(cos, expected, rtol=0, atol=1e-12)
    assert cos.dtype == F64 and (cos.abs() <= 1).all()


def test_cosine_of_zero_row_is_zero():
    cos = cosine_matrix(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
    assert torch.equal(cos[0], torch.zeros(2)) and torch.isfinite(cos).all()


def test_pairwise_stats_hand_computed_and_masked():
    cos = torch.tensor([[[1.0, 0.5, -0.2], [0.5, 1.0, -0.6], [-0.2, -0.6, 1.0]],
                        [[1.0, -0.4, 9.0], [-0.4, 1.0, 9.0], [9.0, 9.0, 1.0]]], dtype=F64)
    stats = pairwise_stats(cos[0])
    torch.testing.assert_close(stats.mean_cos, torch.tensor((0.5 - 0.2 - 0.6) / 3, dtype=F64))
    torch.testing.assert_close(stats.neg_frac, torch.tensor(2 / 3, dtype=F64))
    # second group: its third response is padding (its 9.0 entries must not count)
    masked = pairwise_stats(cos, torch.tensor([[True, True, True], [True, True, False]]))
    torch.testing.assert_close(masked.mean_cos, torch.tensor((2 * (0.5 - 0.2 - 0.6) - 2 * 0.4) / 8, dtype=F64))
    torch.testing.assert_close(masked.neg_frac, torch.tensor(6 / 8, dtype=F64))
    empty = pairwise_stats(torch.ones(1, 1, dtype=F64))
    assert empty.mean_cos == 0 and empty.neg_frac == 0


def test_novelty_hand_computed_group():
    # Phi_1 parallel to Phi_2, Phi_3 orthogonal to both; rewards +1, +1, -1.
    # nu_1 = 1 - e / (e + e^-1) = 1 / (1 + e^2) (the other correct peer explains it); likewise nu_2; nu_3 = 1.
    phi = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]], dtype=F64)
    nu = novelty_scores(phi, torch.tensor([[1.0, 1.0, -1.0]], dtype=F64))
    a = 1 / (1 + math.e**2)
    torch.testing.assert_close(nu, torch.tensor([[a, a, 1.0]], dtype=F64))
    # an incorrect peer carries e^-2 the weight of a correct one: swap which peer is parallel
    nu = novelty_scores(phi, torch.tensor([[1.0, -1.0, 1.0]], dtype=F64))
    torch.testing.assert_close(nu[0, 0], torch.tensor(1 / (1 + math.e**-2), dtype=F64))  # parallel peer incorrect


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(4, 5, 3), (2, 8, 16), (3, 2, 4)])
def test_novelty_matches_loop_with_ragged_groups(shape, seed):
    phi, rewards, mask = random_group(*shape, seed)
    mask[0] = True  # one full group
    if shape[0] > 2:
        mask[2] = False  # one empty group
        mask[1] = torch.arange(shape[1]) == 0  # one group with a single response
    phi_padded = phi.masked_fill(~mask.unsqueeze(-1), float("nan"))  # padding must not leak
    nu = novelty_scores(phi_padded, rewards.masked_fill(~mask, float("nan")), mask=mask)
    torch.testing.assert_close(nu, loop_novelty(phi, rewards, mask), rtol=0, atol=1e-12)
    assert nu.dtype == F64 and ((nu >= 0) & (nu <= 1)).all()
    assert (nu[~mask] == 0).all()


@pytest.mark.parametrize("seed", [3, 4])
def test_novelty_invariances(seed):
    phi, rewards, _ = random_group(3, 6, 5, seed)
    nu = novelty_scores(phi, rewards)
    torch.testing.assert_close(novelty_scores(phi * 7.5, rewards), nu, rtol=0, atol=1e-7)  # up to the eps floor
    torch.testing.assert_close(novelty_scores(phi * 7.5, rewards, eps=0), novelty_scores(phi, rewards, eps=0),
                               rtol=0, atol=1e-12)
    flipped = phi.clone()
    flipped[:, 2] = -flipped[:, 2]  # squared cosine ignores sign
    torch.testing.assert_close(novelty_scores(flipped, rewards), nu, rtol=0, atol=1e-12)
    torch.testing.assert_close(novelty_scores(phi, rewards + 10.0), nu, rtol=0, atol=1e-12)  # softmax shift
    assert torch.isfinite(novelty_scores(phi, rewards * 1000)).all()  # no overflow for large rewards


def test_novelty_anti_parallel_response_is_not_novel():
    phi = torch.tensor([[[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [0.0, 1.0]]], dtype=F64)
    nu = novelty_scores(phi, torch.ones(1, 4, dtype=F64))
    assert nu[0, 2] < nu[0, 3]  # opposition counts as "explained"; orthogonality is what scores


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_novelty_dtype_and_single_response(dtype):
    nu = novelty_scores(torch.randn(2, 1, 3, dtype=dtype), torch.ones(2, 1, dtype=dtype))
    assert nu.dtype == dtype and torch.equal(nu, torch.ones(2, 1, dtype=dtype))


def test_novelty_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(G, m, d\)"):
        novelty_scores(torch.randn(4, 3), torch.randn(4))
    with pytest.raises(ValueError, match="mask"):
        novelty_scores(torch.randn(2, 3, 4), torch.randn(2, 3), mask=torch.ones(3, 2, dtype=torch.bool))


def test_scale_rewards_hand_computed():
    r = torch.tensor([[1.0, 1.0, -1.0, -1.0]], dtype=F64)
    nu = torch.tensor([[0.2, 0.6, 1.0, 0.2]], dtype=F64)  # nu_bar = 0, 0.5, 1, 0
    torch.testing.assert_close(scale_rewards(r, nu, 1.0), torch.tensor([[1.0, 1.5, 0.0, -1.0]], dtype=F64))
    torch.testing.assert_close(scale_rewards(r, nu, 0.5, mode="centered"),
                               torch.tensor([[0.5, 1.0, -1.5, -0.5]], dtype=F64))
    torch.testing.assert_close(scale_rewards(r, nu, 1.0, mode="none"), r)
    torch.testing.assert_close(scale_rewards(r * 2, nu, 2.0, clip=3.0), torch.tensor([[2.0, 3.0, 3.0, -2.0]],
                                                                                          dtype=F64))


def test_scale_rewards_signs_for_incorrect_responses():
    r = -torch.ones(1, 5, dtype=F64)
    nu = torch.linspace(0, 1, 5, dtype=F64).unsqueeze(0)
    literal, centered = scale_rewards(r, nu, 1.0), scale_rewards(r, nu, 0.5, mode="centered")
    assert (literal >= -1).all() and (literal.diff() > 0).all()  # eq. 12: more novel, less penalty
    assert (centered.diff() < 0).all() and centered[0, -1] < -1 < centered[0, 0]  # prose: more novel, more penalty


@pytest.mark.parametrize("mode", ["literal", "centered"])
def test_scale_rewards_degenerate_groups(mode):
    r = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]], dtype=F64)
    nu = torch.tensor([[0.3, 0.3, 0.3], [0.1, 0.9, 0.5]], dtype=F64)
    mask = torch.tensor([[True, True, True], [False, True, False]])  # all-equal nu; a single response
    out = scale_rewards(r, nu, 1.0, mode=mode, mask=mask)
    torch.testing.assert_close(out, torch.tensor([[1.0, -1.0, 1.0], [0.0, 1.0, 0.0]], dtype=F64))
    assert torch.isfinite(scale_rewards(r, nu, 1.0, mode=mode, mask=torch.zeros_like(mask))).all()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mode", ["literal", "centered", "none"])
def test_scale_rewards_matches_loop_with_masks(mode, seed):
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(6, 7, generator=gen, dtype=F64) * 2
    nu = torch.rand(6, 7, generator=gen, dtype=F64)
    mask = torch.rand(6, 7, generator=gen) < 0.7
    out = scale_rewards(r.masked_fill(~mask, float("nan")), nu.masked_fill(~mask, float("nan")), 0.8, mode=mode,
                        clip=2.5, mask=mask)
    torch.testing.assert_close(out, loop_scale(r, nu, mask, 0.8, mode, 2.5), rtol=0, atol=1e-12)
    assert (out.abs() <= 2.5).all() and out.dtype == F64


def test_all_correct_group_gets_signal_after_standardisation():
    phi, _, _ = random_group(1, 8, 4, seed=7)
    r = torch.ones(1, 8, dtype=F64)
    shaped = scale_rewards(r, novelty_scores(phi, r), 1.0)
    adv = (shaped - shaped.mean(-1, keepdim=True)) / (shaped.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
    assert adv.abs().max() > 0.5 and abs(float(adv.sum())) < 1e-9
    assert (shaped.abs() <= 3).all()


def test_scale_rewards_rejects_bad_arguments():
    r = torch.ones(2, 3)
    with pytest.raises(ValueError, match="mode"):
        scale_rewards(r, r, 1.0, mode="clipped")
    with pytest.raises(ValueError, match="lam"):
        scale_rewards(r, r, -0.1)
    with pytest.raises(ValueError, match=r"\(G, m\)"):
        scale_rewards(r, r[:, :2], 1.0)
