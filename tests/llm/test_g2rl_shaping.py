"""G2RL and EVOL-style shaping through the trainer's hook: advantages change as docs/g2rl.md "Reward scaling" says."""

from __future__ import annotations

import pytest
import torch

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.algorithms.g2rl.shaping import EvolShaper, G2RLShaper, semantic_novelty_rewards
from rlcore.algorithms.grpo.losses import group_advantages
from rlcore.algorithms.grpo.shaping import Groups, advantages_from, geometry_diagnostics
from rlcore.errors import ConfigError
from rlcore.geometry import novelty_scores

F64 = torch.float64


def _groups(rewards: torch.Tensor, seed: int = 0, d: int = 6) -> Groups:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(*rewards.shape, d, generator=g, dtype=F64)
    return Groups(rewards=rewards.to(F64), correct=rewards > 0, answered=torch.ones(rewards.shape, dtype=torch.bool),
                  texts=[["x"] * rewards.shape[1]] * rewards.shape[0], features=features,
                  novelty=novelty_scores(features, rewards.to(F64)))


ALL_RIGHT, ALL_WRONG, MIXED = [1.0] * 5, [-1.0] * 5, [1.0, -1.0, 1.0, -1.0, -1.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaler_none_is_grpo(seed):
    groups = _groups(torch.tensor([ALL_RIGHT, ALL_WRONG, MIXED]), seed)
    adv, shaped, _ = advantages_from(groups, G2RLShaper("none", lam=1.0))
    torch.testing.assert_close(shaped, groups.rewards)
    torch.testing.assert_close(adv, group_advantages(groups.rewards))
    assert torch.equal(adv[:2], torch.zeros(2, 5, dtype=F64))  # GRPO: no signal from uniform groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_literal_scaler_rescues_uniform_groups(seed):
    groups = _groups(torch.tensor([ALL_RIGHT, ALL_WRONG, MIXED]), seed)
    adv, shaped, _ = advantages_from(groups, G2RLShaper("literal", lam=1.0))
    nu = groups.novelty
    for row in (0, 1):  # uniform groups now carry signal: zero-sum, ordered by novelty (r~ = r + lam nu_bar)
        assert adv[row].abs().max() > 0.5
        torch.testing.assert_close(adv[row].sum(), torch.tensor(0.0, dtype=F64))
        assert torch.equal(adv[row].argsort(), nu[row].argsort())
    right, wrong = groups.rewards[2] > 0, groups.rewards[2] < 0
    assert adv[2][right].min() > adv[2][wrong].max()  # lam < 2: every correct response beats every incorrect one
    torch.testing.assert_close(shaped, groups.rewards + 1.0 * (nu - nu.amin(-1, keepdim=True))
                               / (nu.amax(-1, keepdim=True) - nu.amin(-1, keepdim=True)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_centered_scaler_punishes_novel_errors(seed):
    groups = _groups(torch.tensor([ALL_RIGHT, ALL_WRONG]), seed)
    adv, _, _ = advantages_from(groups, G2RLShaper("centered", lam=0.5))
    nu = groups.novelty
    assert torch.equal(adv[0].argsort(), nu[0].argsort())  # correct: more novel, more reward
    assert torch.equal(adv[1].argsort(), nu[1].argsort().flip(0))  # incorrect: more novel, more penalty (prose)
    literal, _, _ = advantages_from(groups, G2RLShaper("literal", lam=0.5))
    assert torch.equal(literal[1].argsort(), nu[1].argsort())  # literal eq. 12: more novel, less penalty


def test_degenerate_groups_and_clip():
    rewards = torch.tensor([ALL_RIGHT, MIXED], dtype=F64)
    flat = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(2, 5, dtype=torch.bool),
                  texts=[["x"] * 5] * 2, novelty=torch.full((2, 5), 0.3, dtype=F64))
    for scaler in ("literal", "centered"):  # all nu equal: nu_bar = 0 (literal) / 0.5 (centered): factor 1
        adv, shaped, _ = advantages_from(flat, G2RLShaper(scaler, lam=0.7))
        torch.testing.assert_close(shaped, rewards)
        torch.testing.assert_close(adv, group_advantages(rewards))
    groups = _groups(torch.tensor([ALL_RIGHT, ALL_WRONG, MIXED]), 4)
    _, shaped, _ = advantages_from(groups, G2RLShaper("literal", lam=10.0, clip=3.0))
    assert shaped.abs().max() <= 3.0 and (shaped == 3.0).any()


def test_geometry_diagnostics_hand_values():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
    features = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]])
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(2, 3, dtype=torch.bool),
                    texts=[["a"] * 3] * 2, features=features, novelty=torch.tensor([[0.1, 0.2, 0.3], [0.5] * 3]))
    shaped = rewards + torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    diag = geometry_diagnostics(groups, shaped)
    # group 1 pairs: 1, -1, -1; group 2: 0, 1/sqrt2, 1/sqrt2 -> mean (2/sqrt2 - 1)/6, negatives 2 of 6
    torch.testing.assert_close(diag["mean_cos"], torch.tensor((2 / 2 ** 0.5 - 1) / 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(diag["neg_frac"], torch.tensor(2 / 6))
    torch.testing.assert_close(diag["mean_nu"], torch.tensor(0.35))
    assert "zero_var_frac" not in diag and diag["rescued_frac"] == 1.0  # train/frac_reward_zero_std has it
    assert geometry_diagnostics(groups, rewards)["rescued_frac"] == 0.0


def test_semantic_novelty_rewards_follow_evol_rl():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(3, 6, 4, generator=g)
    correct = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    valid = torch.ones(3, 6, dtype=torch.bool)
    valid[2, 5] = False
    r = semantic_novelty_rewards(emb, correct, valid)
    assert ((r[correct] >= 0.5) & (r[correct] <= 1.0)).all()
    wrong = ~correct & valid
    assert ((r[wrong] >= -1.0) & (r[wrong] <= -0.5)).all()
    assert r[1, 0] == 1.0 and r[2, 5] == -1.0  # a lone correct response; an invalid one
    for row, members in ((0, correct[0]), (0, ~correct[0])):  # min-max within each set: spans the whole range
        vals = r[row][members]
        assert torch.isclose(vals.max() - vals.min(), torch.tensor(0.5))
    # identical embeddings: ties get the middle of their range
    tied = semantic_novelty_rewards(torch.ones(1, 4, 3), torch.tensor([[1, 1, 0, 0]], dtype=torch.bool),
                                    torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(tied, torch.tensor([[0.75, 0.75, -0.75, -0.75]]))


def test_evol_shaper_uses_pooled_hidden_states():
    rewards = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    pooled = torch.tensor([[[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 1.0]]])
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(1, 4, dtype=torch.bool),
                    texts=[["a"] * 4], pooled_hidden=pooled)
    shaper = EvolShaper()
    assert shaper.needs_pooled_hidden and not shaper.needs_features
    shaped, _ = shaper(groups)
    torch.testing.assert_close(shaped, semantic_novelty_rewards(pooled, groups.correct, groups.answered))


def test_g2rl_config_defaults_and_errors():
    assert G2RLConfig().effective_lam == 1.0 and G2RLConfig(scaler="centered").effective_lam == 0.5
    assert G2RLConfig(scaler="centered", lam=0.3).effective_lam == 0.3
    cfg = G2RLConfig()
    assert (cfg.reward_clip, cfg.beta, cfg.lr, cfg.group_size, cfg.prompts_per_step) == (3.0, 0.001, 5e-7, 16, 16)
    assert (cfg.clip_eps, cfg.aggregation, cfg.adv_std, cfg.temperature) == (0.2, "token_mean", "population", 1.0)
    with pytest.raises(ConfigError, match="lam"):
        G2RLConfig(lam=-1.0)
    with pytest.raises(ConfigError, match="mini_batch_size"):
        G2RLConfig(prompts_per_step=3, group_size=5, mini_batch_size=4)
