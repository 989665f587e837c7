"""GRPO's reward statistics under TRL's names (train/reward_std, train/frac_reward_zero_std), by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from rlcore.algorithms.grpo.rewards import Scores
from rlcore.algorithms.grpo.shaping import Groups
from rlcore.algorithms.grpo.step import reward_std, round_metrics


def test_reward_std_and_zero_std_groups_match_a_hand_computation():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(2, 3, dtype=torch.bool),
                    texts=[["a"] * 3] * 2)
    scores = Scores(names=["math"], per_function=rewards.reshape(-1, 1).double(), total=rewards.reshape(-1),
                    correct=(rewards > 0).reshape(-1))
    batch = SimpleNamespace(response_mask=torch.ones(6, 4))
    metrics = round_metrics(scores, groups, rewards, batch, torch.zeros(6, dtype=torch.bool), {}, {})
    values = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
    mean = sum(values) / 6
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)  # over the step's responses, n - 1 as TRL
    assert math.isclose(float(reward_std(rewards)), std, rel_tol=1e-6)
    assert float(reward_std(torch.tensor([0.5]))) == 0.0  # one response: no spread, not NaN
    assert float(metrics["frac_reward_zero_std"]) == 0.5  # the first group has no reward variance
    assert not any(k.startswith("geom/") for k in metrics), "reward statistics are not geometry diagnostics"
    assert math.isclose(float(metrics["accuracy"]), 4 / 6, rel_tol=1e-6)
