"""GRPO's pure functions against hand-computed values and naive float64 loops."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.algorithms.grpo.losses import (
    aggregate,
    group_advantages,
    grpo_loss,
    kl_k3,
    loss_units,
    policy_loss,
    rollout_weights,
)

F64 = torch.float64


def test_group_advantages_hand_values():
    r = torch.tensor([[1.0, -1.0, -1.0, -1.0]], dtype=F64)
    # mean -0.5; population var 0.75; unbiased var 1.0
    pop = group_advantages(r, eps=0.0)
    torch.testing.assert_close(pop, torch.tensor([[1.5, -0.5, -0.5, -0.5]], dtype=F64) / math.sqrt(0.75))
    unb = group_advantages(r, std="unbiased", eps=0.0)
    torch.testing.assert_close(unb, torch.tensor([[1.5, -0.5, -0.5, -0.5]], dtype=F64))
    torch.testing.assert_close(group_advantages(r, std="none"), torch.tensor([[1.5, -0.5, -0.5, -0.5]], dtype=F64))
    # eps inside the root (paper) vs outside (verl/TRL)
    inside = group_advantages(r, eps=0.25)
    torch.testing.assert_close(inside, torch.tensor([[1.5, -0.5, -0.5, -0.5]], dtype=F64) / math.sqrt(1.0))
    outside = group_advantages(r, std="unbiased", eps=0.5, eps_inside=False)
    torch.testing.assert_close(outside, torch.tensor([[1.5, -0.5, -0.5, -0.5]], dtype=F64) / 1.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("std", ["population", "unbiased", "none"])
def test_group_advantages_match_a_loop(seed, std):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(5, 7, generator=g, dtype=F64)
    got = group_advantages(r, std=std, eps=1e-6)
    for i in range(5):
        row = r[i].tolist()
        mean = sum(row) / 7
        var = sum((x - mean) ** 2 for x in row) / (6 if std == "unbiased" else 7)
        spread = 1.0 if std == "none" else math.sqrt(var + 1e-6)
        for j in range(7):
            assert abs(got[i, j].item() - (row[j] - mean) / spread) < 1e-12
    assert torch.allclose(got.sum(-1), torch.zeros(5, dtype=F64), atol=1e-12)


def test_equal_rewards_give_zero_advantages_and_m1_is_finite():
    for std in ("population", "unbiased", "none"):
        assert torch.equal(group_advantages(torch.ones(3, 4), std=std), torch.zeros(3, 4))
        assert torch.equal(group_advantages(torch.tensor([[2.0]]), std=std), torch.zeros(1, 1))


def test_policy_loss_hand_values():
    old = torch.zeros(1, 4, dtype=F64)
    logp = torch.log(torch.tensor([[0.7, 1.1, 1.5, 0.9]], dtype=F64))  # ratios 0.7, 1.1, 1.5, 0.9
    loss, flags = policy_loss(logp, old, torch.tensor([2.0], dtype=F64), clip_low=0.2)
    # A > 0: -min(rho A, clip(rho) A): 0.7 -> -1.4 (unclipped min), 1.1 -> -2.2, 1.5 -> -2.4 (clipped), 0.9 -> -1.8
    torch.testing.assert_close(loss, torch.tensor([[-1.4, -2.2, -2.4, -1.8]], dtype=F64))
    assert flags["clipped_high"].tolist() == [[0, 0, 1, 0]] and flags["clipped_low"].sum() == 0
    loss, flags = policy_loss(logp, old, torch.tensor([-1.0], dtype=F64), clip_low=0.2, clip_high=0.28)
    # A < 0: 0.7 -> clip 0.8 gives 0.8 (max of 0.7, 0.8), 1.1 -> 1.1, 1.5 -> 1.5 (unclipped), 0.9 -> 0.9
    torch.testing.assert_close(loss, torch.tensor([[0.8, 1.1, 1.5, 0.9]], dtype=F64))
    assert flags["clipped_low"].tolist() == [[1, 0, 0, 0]]
    # clip-high: ratio 1.25 is inside (1 - 0.2, 1 + 0.28) for A > 0
    loss, _ = policy_loss(torch.log(torch.tensor([[1.25]], dtype=F64)), torch.zeros(1, 1, dtype=F64),
                          torch.tensor([1.0], dtype=F64), clip_low=0.2, clip_high=0.28)
    torch.testing.assert_close(loss, torch.tensor([[-1.25]], dtype=F64))


def test_policy_loss_gradient_is_the_policy_gradient_at_ratio_one():
    logp = torch.randn(3, 5, dtype=F64, requires_grad=True)
    adv = torch.randn(3, dtype=F64)
    loss, _ = policy_loss(logp, logp.detach(), adv)
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, -adv[:, None].expand(3, 5))


def test_kl_k3_hand_values_and_gradient():
    logp = torch.tensor([[0.0, -1.0]], dtype=F64, requires_grad=True)
    ref = torch.tensor([[0.0, 0.0]], dtype=F64)
    kl = kl_k3(logp, ref)
    torch.testing.assert_close(kl, torch.tensor([[0.0, math.e - 2]], dtype=F64))  # d = 1: e - 1 - 1
    kl.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, 1 - math.e]], dtype=F64))  # d/dlogp = 1 - e^d
    assert (kl_k3(torch.randn(50, dtype=F64), torch.randn(50, dtype=F64)) >= 0).all()


def test_aggregations_hand_values():
    v = torch.tensor([[1.0, 3.0, 9.0], [5.0, 7.0, 9.0]], dtype=F64)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(aggregate(v, mask, "token_mean"), torch.tensor(3.0, dtype=F64))  # (1+3+5)/3
    torch.testing.assert_close(aggregate(v, mask, "seq_mean"), torch.tensor(3.5, dtype=F64))  # (2 + 5)/2
    torch.testing.assert_close(aggregate(v, mask, "constant", horizon=4), torch.tensor(9 / 8, dtype=F64))
    with pytest.raises(ValueError, match="horizon"):
        aggregate(v, mask, "constant")


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean", "constant"])
def test_micro_batches_with_global_normalizer_sum_to_the_batch_loss(mode):
    g = torch.Generator().manual_seed(3)
    v = torch.randn(6, 5, generator=g, dtype=F64)
    mask = torch.rand(6, 5, generator=g) > 0.3
    mask[:, 0] = True
    whole = aggregate(v, mask, mode, horizon=5)
    units = loss_units(mask, mode)
    parts = sum(aggregate(v[i:i + 2], mask[i:i + 2], mode, normalizer=units, horizon=5) for i in range(0, 6, 2))
    torch.testing.assert_close(parts, whole)


def test_grpo_loss_composes_the_terms():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 6, generator=g, dtype=F64) - 2
    old = logp + 0.3 * torch.randn(4, 6, generator=g, dtype=F64)
    ref = logp + 0.3 * torch.randn(4, 6, generator=g, dtype=F64)
    ent = torch.rand(4, 6, generator=g, dtype=F64)
    adv = torch.randn(4, generator=g, dtype=F64)
    mask = torch.rand(4, 6, generator=g) > 0.2
    loss, metrics = grpo_loss(logp, old, adv, mask, ref_logprobs=ref, entropy=ent, beta=0.1, entropy_coef=0.01,
                              clip_low=0.2, clip_high=0.3, aggregation="seq_mean")
    pg, _ = policy_loss(logp, old, adv, clip_low=0.2, clip_high=0.3)
    expected = (aggregate(pg, mask, "seq_mean") + 0.1 * aggregate(kl_k3(logp, ref), mask, "seq_mean")
                - 0.01 * aggregate(ent, mask, "seq_mean"))
    torch.testing.assert_close(loss, expected)
    assert set(metrics) == {"pg_loss", "kl", "entropy", "clip_frac_low", "clip_frac_high", "ratio"}
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(logp, old, adv, mask, beta=0.1)


def test_sequence_ratio_hand_values():
    """GSPO: one ratio per sequence, exp of the mean log-ratio over its response tokens, clipped as a whole."""
    old = torch.zeros(2, 3, dtype=F64)
    logp = torch.tensor([[0.3, 0.1, 5.0], [-0.4, -0.2, -0.3]], dtype=F64)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    adv = torch.tensor([2.0, -1.0], dtype=F64)
    loss, flags = policy_loss(logp, old, adv, clip_low=0.2, is_level="sequence", mask=mask)
    # row 0: mean(0.3, 0.1) = 0.2, rho = e^0.2 = 1.2214 > 1.2 with A > 0 -> clipped: -1.2 * 2 on every token
    # row 1: mean(-0.4, -0.2, -0.3) = -0.3, rho = e^-0.3 = 0.7408 < 0.8 with A < 0 -> clipped: 0.8 on every token
    torch.testing.assert_close(loss, torch.tensor([[-2.4] * 3, [0.8] * 3], dtype=F64))
    torch.testing.assert_close(flags["ratio"][:, 0], torch.tensor([math.exp(0.2), math.exp(-0.3)], dtype=F64))
    assert flags["clipped_high"].tolist() == [[1, 1, 1], [0, 0, 0]] and flags["clipped_low"][1].tolist() == [1, 1, 1]
    # inside the clip range the gradient of each token's loss is -A * rho / len (through the mean)
    logp = torch.tensor([[0.1, -0.1, 0.0]], dtype=F64, requires_grad=True)
    loss, _ = policy_loss(logp, torch.zeros(1, 3, dtype=F64), torch.tensor([2.0], dtype=F64), is_level="sequence",
                          mask=torch.tensor([[True, True, False]]))
    (loss * torch.tensor([[1.0, 1.0, 0.0]], dtype=F64)).sum().backward()  # the masked token's loss is dropped
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, -2.0, 0.0]], dtype=F64))  # rho = 1, 2 tokens x 1/2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequence_ratio_matches_a_loop(seed):
    g = torch.Generator().manual_seed(seed)
    B, L = 4, 7
    logp = torch.randn(B, L, generator=g, dtype=F64) * 0.3
    old = torch.randn(B, L, generator=g, dtype=F64) * 0.3
    mask = torch.rand(B, L, generator=g) > 0.3
    mask[:, 0] = True
    adv = torch.randn(B, generator=g, dtype=F64)
    loss, _ = policy_loss(logp, old, adv, clip_low=0.2, clip_high=0.28, is_level="sequence", mask=mask)
    for i in range(B):
        diffs = [(logp[i, t] - old[i, t]).item() for t in range(L) if mask[i, t]]
        rho = math.exp(sum(diffs) / len(diffs))
        a = adv[i].item()
        expected = -min(rho * a, min(max(rho, 0.8), 1.28) * a)
        torch.testing.assert_close(loss[i], torch.full((L,), expected, dtype=F64))
    # the token level is unchanged by the new argument
    torch.testing.assert_close(policy_loss(logp, old, adv, is_level="token", mask=mask)[0],
                               policy_loss(logp, old, adv)[0])
    with pytest.raises(ValueError, match="mask"):
        policy_loss(logp, old, adv, is_level="sequence")
    with pytest.raises(ValueError, match="is_level"):
        policy_loss(logp, old, adv, is_level="sentence", mask=mask)


def test_rollout_weights_hand_values():
    old = torch.zeros(2, 3, dtype=F64)
    sampling = torch.log(torch.tensor([[0.5, 4.0, 1.0], [0.25, 1.0, 1.0]], dtype=F64))  # w = 2, 0.25, (pad); 4, 1
    mask = torch.tensor([[True, True, False], [True, True, True]])
    truncate = rollout_weights(old, sampling, mask, mode="truncate", cap=3.0)
    torch.testing.assert_close(truncate, torch.tensor([[2.0, 0.25, 1.0], [3.0, 1.0, 1.0]], dtype=F64))
    masked = rollout_weights(old, sampling, mask, mode="mask", cap=3.0)
    torch.testing.assert_close(masked, torch.tensor([[2.0, 0.25, 1.0], [0.0, 1.0, 1.0]], dtype=F64))
    # sequence level: the product of the token ratios, 2 * 0.25 = 0.5 and 4 * 1 * 1 = 4 (capped / masked)
    seq = rollout_weights(old, sampling, mask, mode="truncate", cap=3.0, level="sequence")
    torch.testing.assert_close(seq, torch.tensor([[0.5] * 3, [3.0] * 3], dtype=F64))
    seq = rollout_weights(old, sampling, mask, mode="mask", cap=3.0, level="sequence")
    torch.testing.assert_close(seq, torch.tensor([[0.5] * 3, [0.0] * 3], dtype=F64))
    nan = rollout_weights(old, torch.full((2, 3), float("nan"), dtype=F64), mask, cap=3.0)
    assert torch.equal(nan, torch.ones(2, 3, dtype=F64))  # an unscored token gets no correction


def test_grpo_loss_applies_rollout_weights_to_the_clipped_term_only():
    g = torch.Generator().manual_seed(5)
    logp = torch.randn(3, 5, generator=g, dtype=F64) - 2
    old = logp + 0.3 * torch.randn(3, 5, generator=g, dtype=F64)
    ref = logp + 0.3 * torch.randn(3, 5, generator=g, dtype=F64)
    adv = torch.randn(3, generator=g, dtype=F64)
    mask = torch.rand(3, 5, generator=g) > 0.2
    w = torch.rand(3, 5, generator=g, dtype=F64) * 2
    for level in ("token", "sequence"):
        loss, _ = grpo_loss(logp, old, adv, mask, ref_logprobs=ref, beta=0.1, rollout_weights=w, is_level=level)
        pg, _ = policy_loss(logp, old, adv, is_level=level, mask=mask)
        expected = aggregate(pg * w, mask) + 0.1 * aggregate(kl_k3(logp, ref), mask)
        torch.testing.assert_close(loss, expected)
    plain, _ = grpo_loss(logp, old, adv, mask)
    torch.testing.assert_close(grpo_loss(logp, old, adv, mask, rollout_weights=torch.ones(3, 5, dtype=F64))[0], plain)
