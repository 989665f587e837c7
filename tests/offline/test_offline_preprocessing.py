"""Reward scaling, AntMaze rewards, observation normalisation (with checkpoint round trip) and the sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from offline_helpers import episodic_arrays

from rlcore.checkpoint import load_state, save_state
from rlcore.envs.offline import (
    DatasetSampler,
    ObservationNormalizer,
    OfflineDataset,
    antmaze_rewards,
    scale_rewards_by_return_range,
)
from rlcore.errors import DataError


def dataset(seed=0, lengths=(5, 3, 7, 4), ends=("terminal", "timeout", "terminal", "none"), obs_dim=4):
    return OfflineDataset.from_arrays(**episodic_arrays(list(lengths), list(ends), obs_dim=obs_dim, seed=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_return_range_scaling_against_a_loop(seed):
    ds = dataset(seed)
    returns, total = [], 0.0
    for i, (r, t, o) in enumerate(zip(ds.rewards.astype(np.float64), ds.terminals, ds.timeouts)):
        total += r
        if t or o or i == len(ds) - 1:  # the data's last row closes the last episode
            returns.append(total)
            total = 0.0
    factor = 1000.0 / (max(returns) - min(returns))
    scaled = scale_rewards_by_return_range(ds)
    np.testing.assert_allclose(scaled.rewards, ds.rewards * factor, rtol=1e-6)
    assert scaled.metadata["reward_scale"] == pytest.approx(factor)
    new_returns = scaled.episode_returns()
    assert new_returns.max() - new_returns.min() == pytest.approx(1000.0, rel=1e-5)
    np.testing.assert_array_equal(scaled.observations, ds.observations)


def test_return_range_scaling_needs_a_range():
    one = dataset(lengths=(5,), ends=("terminal",))
    with pytest.raises(DataError, match="return range is 0"):
        scale_rewards_by_return_range(one)


def test_antmaze_rewards():
    ds = dataset().replace(rewards=np.array([0, 1] * 9 + [0, 0, 1], dtype=np.float32)[:19])
    odice = antmaze_rewards(ds, "penalty")
    np.testing.assert_array_equal(odice.rewards, np.where(ds.rewards == 1, 0.0, -3.0))
    np.testing.assert_array_equal(antmaze_rewards(ds, "shift").rewards, ds.rewards - 1.0)
    with pytest.raises(DataError, match="AntMaze rewards must be 0 or 1"):
        antmaze_rewards(dataset(), "penalty")
    with pytest.raises(ValueError, match="unknown antmaze reward mode"):
        antmaze_rewards(ds, "other")


def test_observation_normalizer_numpy_torch_and_checkpoint(tmp_path):
    ds = dataset(obs_dim=6)
    norm = ObservationNormalizer.from_dataset(ds)
    obs64 = ds.observations.astype(np.float64)
    mean, std = obs64.mean(axis=0), obs64.std(axis=0) + 1e-3
    np.testing.assert_allclose(norm(ds.observations), (obs64 - mean) / std, rtol=1e-5, atol=1e-6)
    as_tensor = norm(torch.from_numpy(ds.observations.copy()))
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), norm(ds.observations), rtol=1e-6)
    normalized = norm.normalize_dataset(ds)
    np.testing.assert_allclose(normalized.observations.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.next_observations, norm(ds.next_observations))

    save_state({"obs_norm": norm.state_dict()}, tmp_path / "ckpt")
    restored = ObservationNormalizer.from_state_dict(load_state(tmp_path / "ckpt")["obs_norm"])
    np.testing.assert_array_equal(restored(ds.observations), norm(ds.observations))
    seen = []
    wrapped = restored.wrap(lambda obs: seen.append(obs) or np.zeros((len(obs), 1), np.float32))
    wrapped(ds.observations[:3])
    np.testing.assert_array_equal(seen[0], norm(ds.observations[:3]))


def test_sampler_is_uniform_deterministic_and_resumable():
    ds = dataset()
    sampler = DatasetSampler(ds, batch_size=64, seed=7)
    batch = sampler.sample()
    assert batch["observations"].shape == (64, 4) and batch["terminals"].dtype == torch.float32
    # rows stay aligned: each sampled row is a row of the dataset
    obs = torch.from_numpy(ds.observations.copy())
    rows = (batch["observations"][:, None, :] == obs[None]).all(-1).float().argmax(1)
    torch.testing.assert_close(batch["rewards"], torch.from_numpy(ds.rewards.copy())[rows])
    torch.testing.assert_close(batch["next_observations"], torch.from_numpy(ds.next_observations.copy())[rows])

    state = sampler.state_dict()
    expected = [sampler.sample()["actions"] for _ in range(3)]
    other = DatasetSampler(ds, batch_size=64, seed=123)
    other.load_state_dict(state)
    for want in expected:
        torch.testing.assert_close(other.sample()["actions"], want)

    counts = torch.zeros(len(ds))
    big = DatasetSampler(ds, batch_size=19_000, seed=0)
    idx = (big.sample()["observations"][:, None, :] == obs[None]).all(-1).float().argmax(1)
    counts += torch.bincount(idx, minlength=len(ds))
    expected_count = 19_000 / len(ds)
    assert torch.all((counts - expected_count).abs() < 5 * expected_count**0.5)  # uniform within 5 sigma
