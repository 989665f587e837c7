"""prepare_data: every form of the data (arrays, an OfflineDataset, an HDF5 file, a name) goes through the same
preparation and gives the same batches and updates; data preparation knows no algorithm by name; every run
records where its data came from (data.json)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from conftest import REPO
from offline_helpers import episodic_arrays

from rlcore.algorithms.iql import IQLConfig
from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.algorithms.offline import prepare_data
from rlcore.algorithms.offline.data import reward_transform
from rlcore.envs.offline import DatasetSampler, OfflineDataset, collect, get_task, load_dataset, save_dataset
from rlcore.envs.offline.hdf5 import write_hdf5
from rlcore.envs.offline.provenance import file_digest, provenance

SMALL = dict(v_hidden=[16, 16], policy_hidden=[16, 16], batch_size=32)


@pytest.fixture(scope="module")
def pendulum_arrays():
    """Raw D4RL-layout arrays of 6 noisy Pendulum episodes, as a user might hold them (float64 rewards)."""
    raw = collect("Pendulum-v1", "scripted", episodes=6, noise=0.5, seed=3).arrays()
    return {k: np.asarray(v) for k, v in raw.items() if k != "next_observations"}


def _updates(prepared, cfg, steps=4):
    algo = ODICE(cfg, prepared.dataset.obs_dim, prepared.dataset.act_dim, dtype=torch.float64)
    sampler = DatasetSampler(prepared.dataset, cfg.batch_size, seed=cfg.seed)
    out = []
    for _ in range(steps):
        batch = {k: v.double() for k, v in sampler.sample().items()}
        out.append({k: float(v) for k, v in algo.update(batch).items()})
    return out


@pytest.mark.parametrize("normalize_obs", [False, True])
def test_arrays_file_and_dataset_give_identical_batches_and_updates(pendulum_arrays, tmp_path, normalize_obs):
    path = write_hdf5(tmp_path / "pendulum.hdf5", pendulum_arrays)
    cfg = ODICEConfig(env="Pendulum-v1", ref_min_return=-1200.0, ref_max_return=-150.0, seed=5,
                      normalize_obs=normalize_obs, reward_transform="return_range", **SMALL)
    from_arrays = prepare_data(cfg, dataset=pendulum_arrays, progress=False)
    from_file = prepare_data(cfg, dataset=path, progress=False)
    from_config = prepare_data(dataclasses.replace(cfg, dataset=str(path)), progress=False)
    from_object = prepare_data(cfg, dataset=load_dataset(pendulum_arrays), progress=False)
    for other in (from_file, from_config, from_object):
        for key, value in from_arrays.dataset.arrays().items():
            np.testing.assert_array_equal(value, other.dataset.arrays()[key], err_msg=key)
        np.testing.assert_array_equal(from_arrays.behaviour_returns, other.behaviour_returns)
    assert from_arrays.dataset.metadata["reward_scale"] == from_file.dataset.metadata["reward_scale"]
    assert len(from_arrays.dataset) == len(pendulum_arrays["rewards"]) - 6  # qlearning: timeout steps dropped
    assert _updates(from_arrays, cfg) == _updates(from_file, cfg)


def test_reward_transform_comes_from_the_config_class():
    locomotion, antmaze = get_task("hopper-medium-v2"), get_task("antmaze-umaze-v2")
    assert reward_transform(ODICEConfig(), antmaze) == "antmaze"
    assert reward_transform(IQLConfig(), antmaze) == "antmaze_iql"
    assert reward_transform(IQLConfig(), locomotion) == reward_transform(ODICEConfig(), locomotion) == "return_range"
    assert reward_transform(ODICEConfig(), "Pendulum-v1") == "none"
    assert reward_transform(IQLConfig(reward_transform="none"), antmaze) == "none"

    @dataclasses.dataclass
    class Plugin(ODICEConfig):
        auto_reward_transform = {}  # noqa: RUF012 (a plugin's class attribute, as TD3+BC's)

    assert reward_transform(Plugin(), locomotion) == "none"
    source = (REPO / "algorithms" / "offline" / "data.py").read_text()
    assert not any(f'"{name}"' in source for name in ("odice", "iql", "bc")), "data preparation names no algorithm"


def test_data_json_records_generated_file_with_policy_and_seed(tmp_path):
    path = save_dataset(collect("Pendulum-v1", "scripted", episodes=2, seed=7, noise=0.1), tmp_path / "gen.hdf5")
    cfg = ODICEConfig(env="Pendulum-v1", dataset=str(path), **SMALL)
    prepared = prepare_data(cfg, tmp_path / "run", progress=False)
    written = json.loads((tmp_path / "run" / "data.json").read_text())
    assert written == prepared.provenance
    assert written["source"] == "generated" and written["seed"] == 7 and written["policy"].startswith("scripted")
    assert written["created_by"].startswith("rlcore.envs.offline.collect")
    assert written["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert written["size_bytes"] == path.stat().st_size
    embedded = prepare_data(ODICEConfig(task="pendulum-scripted-v0", **SMALL), progress=False).provenance
    assert embedded["source"] == "generated" and embedded["name"] == "pendulum-scripted-v0" and embedded["seed"] == 0


def test_provenance_of_user_arrays_and_files(pendulum_arrays, tmp_path):
    ds = load_dataset(pendulum_arrays)
    assert provenance(ds) == {"source": "user", "form": "arrays", "transitions": len(ds), "episodes": 6,
                              "obs_dim": 3, "act_dim": 1}
    assert provenance(load_dataset(ds))["form"] == "arrays"  # an OfflineDataset keeps its own metadata
    bare = OfflineDataset.from_arrays(**ds.arrays())
    assert provenance(load_dataset(bare))["form"] == "dataset" and bare.metadata == {}  # the caller's is untouched
    other = write_hdf5(tmp_path / "mine.hdf5", pendulum_arrays)
    mine = provenance(load_dataset(other))
    assert mine["source"] == "user" and mine["path"] == str(other.resolve()) and "sha256" in mine


def test_a_d4rl_file_is_recognised_by_name_and_hashed_once(tmp_path):
    arrays = episodic_arrays([5, 5], ["terminal", "timeout"], obs_dim=11, act_dim=3)
    path = write_hdf5(tmp_path / "hopper_medium-v2.hdf5", arrays)  # a file as D4RL ships it (no rlcore attrs)
    found = provenance(load_dataset(path, task="hopper-medium-v2"), d4rl_name="hopper-medium-v2")
    assert found["source"] == "d4rl" and found["d4rl_name"] == "hopper-medium-v2"
    assert found["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = tmp_path / "hopper_medium-v2.hdf5.sha256"
    cached = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**cached, "sha256": "cached"}))  # the cache is read, not the file
    assert file_digest(path)["sha256"] == "cached"
    os.utime(path, ns=(cached["mtime_ns"] + 10**9, cached["mtime_ns"] + 10**9))  # touched: hashed again
    assert file_digest(path)["sha256"] == found["sha256"]


def test_minari_mujoco_ports_are_not_d4rl(tmp_path, monkeypatch):
    ds = load_dataset({"observations": np.zeros((4, 11)), "actions": np.zeros((4, 3)), "rewards": np.zeros(4),
                       "terminals": np.zeros(4, bool), "timeouts": np.array([0, 0, 0, 1], bool)})
    ds = dataclasses.replace(ds, metadata={"format": "minari", "source": "minari:mujoco/hopper/medium-v0",
                                           "minari_id": "mujoco/hopper/medium-v0", "minari_version": "0.5.4"})
    found = provenance(ds)
    assert found["source"] == "minari" and found["id"] == "mujoco/hopper/medium-v0" and found["version"] == 0
    assert found["d4rl_compatible"] is False and found["d4rl_counterpart"] == "hopper-medium-v2"


def test_multi_seed_sampler_state_round_trip():
    data = load_dataset("pendulum-scripted-v0")
    a = DatasetSampler(data, 8, [1, 2])
    a.sample()
    b = DatasetSampler(data, 8, [1, 2])
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(x, y) for x, y in zip(a.sample().values(), b.sample().values()))
    with pytest.raises(ValueError, match="generators"):
        DatasetSampler(data, 8, [1, 2, 3]).load_state_dict(a.state_dict())
