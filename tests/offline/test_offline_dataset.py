"""OfflineDataset, D4RL qlearning semantics, and the readers (HDF5, shared files, Minari, legacy d4rl names)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from conftest import shared_data
from offline_helpers import episodic_arrays, write_file

from rlcore.envs.offline import OfflineDataset, concatenate, load_dataset, qlearning_dataset
from rlcore.envs.offline.hdf5 import read_hdf5
from rlcore.envs.offline.provenance import provenance
from rlcore.envs.offline.validation import check_arrays
from rlcore.errors import DataError


def reference_qlearning(arrays, max_episode_steps=None):
    """A plain transliteration of D4RL's qlearning_dataset loop (with next_observations used when present)."""
    has_next = "next_observations" in arrays
    n = len(arrays["rewards"])
    rows = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals")}
    episode_step = 0
    for i in range(n if has_next else n - 1):
        if "timeouts" in arrays:
            final = bool(arrays["timeouts"][i])
        else:
            final = episode_step == max_episode_steps - 1
        if final:
            episode_step = 0
            continue
        if arrays["terminals"][i]:
            episode_step = 0
        rows["observations"].append(arrays["observations"][i])
        rows["actions"].append(arrays["actions"][i])
        rows["rewards"].append(arrays["rewards"][i])
        rows["next_observations"].append(arrays["next_observations"][i] if has_next else arrays["observations"][i + 1])
        rows["terminals"].append(bool(arrays["terminals"][i]))
        episode_step += 1
    return {k: np.array(v) for k, v in rows.items()}


def assert_matches_reference(ds, ref):
    for key, value in ref.items():
        np.testing.assert_array_equal(getattr(ds, key), value, err_msg=key)


@pytest.mark.parametrize("next_observations", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qlearning_semantics_match_d4rl_loop(next_observations, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=7).tolist()
    ends = rng.choice(["terminal", "timeout"], size=7).tolist()
    ends[-1] = "none"  # data cut mid-episode, as at the end of D4RL files
    arrays = check_arrays(episodic_arrays(lengths, ends, seed=seed, next_observations=next_observations), "x")
    ds = qlearning_dataset(arrays, "x")
    assert_matches_reference(ds, reference_qlearning(arrays))
    # episodes: each original episode minus its timeout step; a 1-step timeout episode vanishes entirely
    expected = [n - (e == "timeout") for n, e in zip(lengths, ends)]
    if not next_observations:
        expected[-1] -= 1
    expected = [n for n in expected if n > 0]
    assert ds.episode_lengths().tolist() == expected
    assert ds.metadata["dropped_timeout_steps"] == ends.count("timeout")


def test_qlearning_hand_built_example():
    # episode A: 3 steps ending in a terminal; episode B: 3 steps, the last a timeout; episode C: 2 steps, cut
    obs = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    arrays = {"observations": obs, "actions": np.zeros((8, 1), np.float32),
              "rewards": np.arange(8, dtype=np.float32),
              "terminals": np.array([0, 0, 1, 0, 0, 0, 0, 0], bool),
              "timeouts": np.array([0, 0, 0, 0, 0, 1, 0, 0], bool)}
    ds = qlearning_dataset(arrays, "hand")
    # no next_observations: row 7 (no successor) and the timeout row 5 are dropped
    assert ds.rewards.tolist() == [0, 1, 2, 3, 4, 6]
    assert ds.terminals.tolist() == [False, False, True, False, False, False]
    assert ds.timeouts.tolist() == [False, False, False, False, True, True]
    np.testing.assert_array_equal(ds.next_observations[:, 0], [1, 2, 3, 4, 5, 7])
    assert ds.episode_returns().tolist() == [3.0, 7.0, 6.0]
    assert [s.stop for s in ds.episodes()] == [3, 5, 6]


def test_files_without_timeouts_split_like_d4rl():
    arrays = episodic_arrays([4, 9, 5], ["terminal", "none", "none"], next_observations=False)
    del arrays["timeouts"]
    arrays = check_arrays(arrays, "old")
    ds = qlearning_dataset(arrays, "old", max_episode_steps=4)
    assert_matches_reference(ds, reference_qlearning(arrays, max_episode_steps=4))
    with pytest.raises(DataError, match="no key 'timeouts'.*task"):
        qlearning_dataset(arrays, "old")


def test_episode_helpers_and_trajectory():
    ds = OfflineDataset.from_arrays(**episodic_arrays([3, 5, 2], ["terminal", "timeout", "terminal"]))
    naive, total = [], 0.0
    for r, t, o in zip(ds.rewards.tolist(), ds.terminals, ds.timeouts):
        total += r
        if t or o:
            naive.append(total)
            total = 0.0
    np.testing.assert_allclose(ds.episode_returns(), naive, rtol=1e-6)
    assert ds.episode_lengths().tolist() == [3, 5, 2]
    second = ds.trajectory(1)
    assert len(second) == 5 and second.metadata["trajectory"] == 1
    np.testing.assert_array_equal(second.observations, ds.observations[3:8])
    assert ds.trajectory(-1).metadata["trajectory"] == 2
    with pytest.raises(DataError, match="has 3 episodes; trajectory index 5 is out of range"):
        ds.trajectory(5)
    # rows without an end flag belong to the episode that the next flag closes (the last row always closes one)
    merged = OfflineDataset.from_arrays(**episodic_arrays([3, 5, 2], ["terminal", "none", "none"]))
    assert merged.episode_lengths().tolist() == [3, 7]


def test_dataset_is_read_only_and_typed():
    ds = OfflineDataset.from_arrays(**episodic_arrays([4], ["terminal"]))
    assert ds.observations.dtype == np.float32 and ds.terminals.dtype == bool
    with pytest.raises(ValueError):
        ds.rewards[0] = 1.0
    with pytest.raises(DataError, match="both a terminal and a timeout"):
        ds.replace(timeouts=ds.terminals)


def test_concatenate_keeps_episodes_apart():
    a = OfflineDataset.from_arrays(**episodic_arrays([3, 4], ["terminal", "none"], seed=1))
    b = OfflineDataset.from_arrays(**episodic_arrays([5], ["timeout"], seed=2))
    mixed = concatenate([a, b])
    assert mixed.episode_lengths().tolist() == [3, 4, 5]
    assert mixed.timeouts[6]  # a's cut episode is closed where b starts
    np.testing.assert_allclose(mixed.episode_returns(), np.concatenate([a.episode_returns(), b.episode_returns()]),
                               rtol=1e-6)
    with pytest.raises(DataError, match="different sizes"):
        concatenate([a, OfflineDataset.from_arrays(**episodic_arrays([2], ["terminal"], obs_dim=5))])


def test_hdf5_reader_with_and_without_next_observations(tmp_path):
    arrays = episodic_arrays([6, 4, 5], ["terminal", "timeout", "none"], obs_dim=11, act_dim=3)
    with_next = load_dataset(write_file(tmp_path / "a.hdf5", arrays, {"note": "made in a test"}))
    assert (with_next.obs_dim, with_next.act_dim) == (11, 3)
    assert len(with_next) == 15 - 1 and with_next.num_episodes == 3
    assert with_next.metadata["note"] == "made in a test" and with_next.metadata["source_steps"] == 15
    del arrays["next_observations"]
    without = load_dataset(write_file(tmp_path / "b.hdf5", arrays))
    assert len(without) == 15 - 1 - 1  # the last row has no successor
    same = ~without.terminals  # after a terminal the next row starts a new episode, not the true next state
    np.testing.assert_array_equal(without.next_observations[same], with_next.next_observations[:-1][same])
    checked = load_dataset(tmp_path / "a.hdf5", task="hopper-medium-v2")
    assert checked.metadata["task"] == "hopper-medium-v2"


def test_d4rl_name_resolves_to_cached_file(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "d4rl", None)  # make `import d4rl` fail as it does without mujoco-py
    monkeypatch.setenv("RLCORE_OFFLINE", "1")  # downloads: tests/offline/test_download.py
    with pytest.raises(DataError, match=r"hopper_medium-v2.hdf5 is missing\) and downloads are off"):
        load_dataset("hopper-medium-v2")
    write_file(tmp_path / "hopper_medium-v2.hdf5", episodic_arrays([5, 5], ["terminal", "timeout"], 11, 3))
    ds = load_dataset("hopper-medium-v2")
    assert ds.metadata["task"] == "hopper-medium-v2" and len(ds) == 9


def test_legacy_d4rl_package_is_used_when_it_imports(monkeypatch):
    arrays = episodic_arrays([5, 5], ["terminal", "timeout"], obs_dim=11, act_dim=3, next_observations=False)
    arrays["infos/qpos"] = np.zeros((10, 6))
    fake_gym = types.SimpleNamespace(make=lambda name: types.SimpleNamespace(get_dataset=lambda: arrays))
    monkeypatch.setitem(sys.modules, "d4rl", types.ModuleType("d4rl"))
    monkeypatch.setitem(sys.modules, "gym", fake_gym)
    ds = load_dataset("hopper-medium-v2")
    assert ds.metadata["source"] == "d4rl:hopper-medium-v2" and len(ds) == 9  # the last row is the timeout
    assert_matches_reference(ds, reference_qlearning(check_arrays(arrays, "d4rl")))


def test_unknown_name_is_a_clear_error():
    with pytest.raises(DataError, match="dataset 'no-such-thing' not found"):
        load_dataset("no-such-thing")


def test_embedded_default_dataset():
    ds = load_dataset("pendulum-scripted-v0")
    assert (ds.obs_dim, ds.act_dim, len(ds), ds.num_episodes) == (3, 1, 9950, 50)
    again = load_dataset("pendulum-scripted-v0")
    np.testing.assert_array_equal(ds.actions, again.actions)  # generated deterministically
    assert np.abs(ds.actions).max() <= 2.0 and ds.actions.std() > 0.5  # noisy, clipped torques


# ------------------------------------------------------------------------------------------------------------------
# the shared real files


def test_shared_pendulum_expert_file():
    ds = load_dataset(shared_data("offline", "imitation_pendulum_expert_d4rl_layout.hdf5"), task="pendulum-expert-v0")
    assert ds.num_episodes == 56 and len(ds) == 11200 - 56
    raw, _ = read_hdf5(shared_data("offline", "imitation_pendulum_expert_d4rl_layout.hdf5"))
    full_returns = raw["rewards"].reshape(56, 200).sum(axis=1)
    assert full_returns.mean() == pytest.approx(-189.4, abs=0.05)
    # each trajectory lost only its final (timeout) step
    np.testing.assert_allclose(ds.episode_returns(), full_returns - raw["rewards"].reshape(56, 200)[:, -1], rtol=1e-5)
    np.testing.assert_array_equal(ds.trajectory(3).observations, raw["observations"][600:799])


def test_shared_door_file_matches_adroit_sizes():
    ds = load_dataset(shared_data("offline", "door_human_demos_d4rl_layout.hdf5"), task="door-human-v1")
    assert (ds.obs_dim, ds.act_dim, ds.num_episodes) == (39, 28, 25)
    assert ds.metadata["file_source"].startswith("aravindr93/hand_dapg")


def test_shared_cartpole_file_is_rejected_as_discrete():
    with pytest.raises(DataError, match="discrete actions"):
        load_dataset(shared_data("offline", "imitation_cartpole_expert_d4rl_layout.hdf5"))


# ------------------------------------------------------------------------------------------------------------------
# Minari


def test_minari_local_dataset(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari", reason="the minari extra is not installed")
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    buffers, expected_returns = [], []
    for i, length in enumerate([20, 12]):
        obs, _ = env.reset(seed=i)
        rows = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        for _ in range(length):
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(("observations", "actions", "rewards", "terminations", "truncations"),
                                  (obs, action, reward, terminated, truncated)):
                rows[key].append(value)
        expected_returns.append(sum(rows["rewards"][:-1]))
        buffers.append(EpisodeBuffer(id=i, observations=np.array(rows["observations"]),
                                     actions=np.array(rows["actions"]), rewards=rows["rewards"],
                                     terminations=rows["terminations"], truncations=rows["truncations"], infos={}))
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers("test/pendulum-v0", buffers, env=env, algorithm_name="random")
    for name in ("test/pendulum-v0", "minari:test/pendulum-v0", str(tmp_path / "test" / "pendulum-v0")):
        ds = load_dataset(name)
        assert ds.metadata["format"] == "minari" and ds.metadata["env_id"] == "Pendulum-v1"
        # both episodes end without a terminal (time limit; data cut), so their last step is dropped
        assert ds.episode_lengths().tolist() == [19, 11]
        np.testing.assert_allclose(ds.episode_returns(), expected_returns, rtol=1e-5)
        found = provenance(ds)  # what data.json records: id and version, never D4RL's data
        assert (found["source"], found["id"], found["version"]) == ("minari", "test/pendulum-v0", 0)
        assert found["minari_version"] == minari.__version__ and found["d4rl_compatible"] is False


@pytest.mark.parametrize("module", ["dataset", "registry", "readers", "collect", "evaluation", "sampler", "simulator"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"rlcore.envs.offline.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
