"""Collection (policies, noise, step/episode budgets), atomic files, mixing, agent zips, run-dir policies, CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from conftest import run_cli, shared_data

from rlcore.envs.offline import (
    PendulumSwingUp,
    SB3Actor,
    collect,
    load_dataset,
    mix_files,
    save_dataset,
)
from rlcore.envs.offline import hdf5 as hdf5_module
from rlcore.envs.offline.hdf5 import read_hdf5, write_hdf5
from rlcore.errors import UserError


def pendulum_reward(obs, action):
    angle = np.arctan2(obs[:, 1], obs[:, 0])
    return -(angle**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * action[:, 0] ** 2)


def test_collect_episodes_records_consistent_transitions():
    ds = collect("Pendulum-v1", "random", episodes=3, seed=4)
    assert len(ds) == 600 and ds.episode_lengths().tolist() == [200, 200, 200]
    assert ds.timeouts.sum() == 3 and not ds.terminals.any()
    for s in ds.episodes():  # each step starts where the previous one ended
        np.testing.assert_array_equal(ds.observations[s][1:], ds.next_observations[s][:-1])
    np.testing.assert_allclose(ds.rewards, pendulum_reward(ds.observations, ds.actions), rtol=1e-4, atol=1e-4)
    assert ds.metadata["env_id"] == "Pendulum-v1" and ds.metadata["policy"] == "random"
    again = collect("Pendulum-v1", "random", episodes=3, seed=4)
    np.testing.assert_array_equal(again.actions, ds.actions)
    other = collect("Pendulum-v1", "random", episodes=3, seed=5)
    assert not np.array_equal(other.observations, ds.observations)


def test_collect_steps_cuts_the_last_episode_only():
    one = collect("Pendulum-v1", "scripted", steps=450, num_envs=1, seed=0)
    four = collect("Pendulum-v1", "scripted", steps=450, num_envs=4, seed=0)
    assert len(four) == 450 and four.episode_lengths().tolist() == [200, 200, 50]
    assert four.timeouts[-1] and four.timeouts.sum() == 3
    np.testing.assert_array_equal(one.observations, four.observations)  # deterministic policy: batching is invisible


def test_action_noise_is_gaussian_and_clipped():
    ds = collect("Pendulum-v1", "scripted", episodes=4, noise=0.5, seed=0)
    clean = PendulumSwingUp()(ds.observations)
    inside = np.abs(ds.actions) < 2.0
    diff = (ds.actions - clean)[inside]
    assert abs(diff.mean()) < 0.05 and diff.std() == pytest.approx(0.5, rel=0.1)
    assert np.abs(ds.actions).max() <= 2.0 and (~inside).any()


def test_save_load_round_trip(tmp_path):
    ds = collect("Pendulum-v1", "scripted", episodes=2, noise=0.1, seed=9)
    path = save_dataset(ds, tmp_path / "p.hdf5")
    arrays, attrs = read_hdf5(path)
    for key, value in ds.arrays().items():
        np.testing.assert_array_equal(arrays[key], value)
    assert attrs["env_id"] == "Pendulum-v1" and attrs["seed"] == 9 and attrs["noise"] == 0.1
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # usual permissions, not those of a private temp file
    loaded = load_dataset(path, task="pendulum-scripted-v0")
    assert len(loaded) == 398 and loaded.num_episodes == 2  # timeout steps dropped (qlearning semantics)
    np.testing.assert_allclose(loaded.episode_returns(), ds.episode_returns() - ds.rewards[ds.timeouts], rtol=1e-5)


def test_failed_writes_leave_no_file(tmp_path, monkeypatch):
    def crashing_policy(observations):
        raise RuntimeError("policy crashed")

    out = tmp_path / "out.hdf5"
    with pytest.raises(RuntimeError):
        save_dataset(collect("Pendulum-v1", crashing_policy, episodes=1), out)
    assert not out.exists()

    monkeypatch.setattr(hdf5_module, "_encode", lambda value: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        write_hdf5(out, {"rewards": np.zeros(3)}, {"note": "x"})
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_mix_files(tmp_path):
    a = save_dataset(collect("Pendulum-v1", "random", steps=300, seed=0), tmp_path / "a.hdf5")
    b = save_dataset(collect("Pendulum-v1", "scripted", episodes=2, seed=1), tmp_path / "b.hdf5")
    summary = mix_files([a, b], tmp_path / "ab.hdf5")
    assert summary["steps"] == 700 and summary["parts"] == [300, 400]
    mixed, attrs = read_hdf5(tmp_path / "ab.hdf5")
    first, _ = read_hdf5(a)
    np.testing.assert_array_equal(mixed["observations"][:300], first["observations"])
    assert attrs["mixture_of"] == [str(a), str(b)] and attrs["env_id"] == "Pendulum-v1"
    assert load_dataset(tmp_path / "ab.hdf5").num_episodes == 4
    with pytest.raises(UserError, match="also an input"):
        mix_files([a, b], a)
    c = save_dataset(collect("MountainCarContinuous-v0", "random", steps=50), tmp_path / "c.hdf5")
    with pytest.raises(UserError, match="different environments \\(MountainCarContinuous-v0, Pendulum-v1\\)"):
        mix_files([a, c], tmp_path / "ac.hdf5")


# ------------------------------------------------------------------------------------------------------------------
# Stable-Baselines3 actors


def fake_agent(tmp_path, obs_dim=5, act_dim=2, log_std_bias=0.0, use_sde=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"actor.latent_pi.0": (16, obs_dim), "actor.latent_pi.2": (16, 16), "actor.mu": (act_dim, 16),
              "actor.log_std": (act_dim, 16)}
    state = {}
    for name, shape in shapes.items():
        state[f"{name}.weight"] = torch.randn(shape, generator=g) * 0.5
        state[f"{name}.bias"] = torch.randn(shape[0], generator=g) * 0.1
    state["actor.log_std.bias"] += log_std_bias
    state["critic.qf0.0.weight"] = torch.zeros(3, 3)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = tmp_path / "agent.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("policy.pth", buffer.getvalue())
        z.writestr("data", json.dumps({"use_sde": use_sde, "policy_class": {":serialized:": "not read"}}))
    return path, {k: v.double().numpy() for k, v in state.items()}


def numpy_actor(w, obs):
    h = np.maximum(obs @ w["actor.latent_pi.0.weight"].T + w["actor.latent_pi.0.bias"], 0)
    h = np.maximum(h @ w["actor.latent_pi.2.weight"].T + w["actor.latent_pi.2.bias"], 0)
    return h @ w["actor.mu.weight"].T + w["actor.mu.bias"], h @ w["actor.log_std.weight"].T + w["actor.log_std.bias"]


@pytest.mark.parametrize("seed", [0, 1])
def test_sb3_actor_matches_a_numpy_forward(tmp_path, seed):
    path, weights = fake_agent(tmp_path, seed=seed)
    obs = np.random.default_rng(seed).normal(size=(7, 5)).astype(np.float32)
    mean, _ = numpy_actor(weights, obs.astype(np.float64))
    np.testing.assert_allclose(SB3Actor.load(path)(obs), np.tanh(mean), rtol=1e-5, atol=1e-6)


def test_sb3_actor_samples_its_own_clamped_gaussian(tmp_path):
    path, weights = fake_agent(tmp_path, log_std_bias=-1.5)
    obs = np.tile(np.random.default_rng(0).normal(size=(1, 5)), (20_000, 1)).astype(np.float32)
    mean, log_std = numpy_actor(weights, obs[:1].astype(np.float64))
    pre_tanh = np.arctanh(np.clip(SB3Actor.load(path, stochastic=True, seed=3)(obs), -1 + 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(pre_tanh.mean(0), mean[0], atol=0.02)
    np.testing.assert_allclose(pre_tanh.std(0), np.exp(np.clip(log_std[0], -20, 2)), rtol=0.05)
    wide, weights = fake_agent(tmp_path, log_std_bias=10.0)  # log_std above 2 is clamped to 2
    _, log_std = numpy_actor(weights, obs[:1].astype(np.float64))
    assert (log_std > 2).all()
    spread = np.arctanh(np.clip(SB3Actor.load(wide, stochastic=True)(obs), -1 + 1e-7, 1 - 1e-7)).std(0)
    assert np.all(spread < np.exp(2.0) * 1.1)


def test_sb3_zip_errors(tmp_path):
    path, _ = fake_agent(tmp_path, use_sde=True)
    with pytest.raises(UserError, match="gSDE"):
        SB3Actor.load(path)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("data", "{}")
    with pytest.raises(UserError, match="has no policy.pth"):
        SB3Actor.load(empty)
    wrong, _ = fake_agent(tmp_path, obs_dim=5)
    with pytest.raises(UserError, match="takes observations of size 5 .* environment has 3"):
        collect("Pendulum-v1", str(wrong), episodes=1)


def test_shared_agent_loads():
    actor = SB3Actor.load(shared_data("agents", "tqc-hopper", "Hopper-v3.zip"))
    assert (actor.obs_dim, actor.act_dim) == (11, 3)
    assert np.abs(actor(np.zeros((2, 11), np.float32))).max() <= 1.0


# ------------------------------------------------------------------------------------------------------------------
# policies of our own runs


def test_run_dir_policy_needs_a_registered_loader(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("algo: nosuchalgo\nseed: 0\n")
    with pytest.raises(UserError, match="unknown algorithm 'nosuchalgo'.*registered: .*odice"):
        collect("Pendulum-v1", str(tmp_path), episodes=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        collect("Pendulum-v1", str(tmp_path / "empty"), episodes=1)
    with pytest.raises(UserError, match="is not 'random', 'scripted', an existing .zip agent or a run directory"):
        collect("Pendulum-v1", str(tmp_path / "missing"), episodes=1)


def test_run_dir_policy_is_loaded_by_the_algorithms_spec(tmp_path):
    from rlcore.algorithm import ALGORITHMS

    calls = []

    def load_policy(run_dir, checkpoint):
        calls.append((run_dir, checkpoint))
        return lambda obs: np.full((len(obs), 1), 0.5, dtype=np.float32)

    ALGORITHMS.register("fakealgo", dataclasses.replace(ALGORITHMS.get("toy"), name="fakealgo",
                                                        load_policy=load_policy))
    (tmp_path / "config.yaml").write_text("algo: fakealgo\n")
    ds = collect("Pendulum-v1", str(tmp_path), episodes=1)
    assert np.all(ds.actions == 0.5) and ds.metadata["policy"] == f"run:{tmp_path}"
    assert calls == [(tmp_path, "latest")]


# ------------------------------------------------------------------------------------------------------------------
# command line


def test_cli_collect_mix_info(tmp_path):
    a, b, ab = (str(tmp_path / n) for n in ("a.hdf5", "b.hdf5", "ab.hdf5"))
    r = run_cli("data", "collect", "--env", "Pendulum-v1", "--policy", "scripted", "--episodes", "2", "--noise",
                "0.2", "--seed", "3", "--out", a, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "2 episodes" in r.stdout
    save_dataset(collect("Pendulum-v1", "random", steps=250), b)
    r = run_cli("data", "mix", a, b, "--out", ab)
    assert r.returncode == 0 and "650 steps from 400 + 250" in r.stdout, r.stderr
    r = run_cli("data", "info", ab, "--task", "pendulum-scripted-v0", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["source_steps"] == 650 and info["episodes"] == 4 and info["obs_dim"] == 3
    assert info["metadata"]["mixture_of"] == [a, b] and info["normalized_return_max"] > info["normalized_return_min"]
    r = run_cli("data", "info", a, "--json")  # collected with --env: a gymnasium id, no reference scores to use
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["metadata"]["task"] == "Pendulum-v1" and "normalized_return_mean" not in info


def test_cli_collect_errors_are_one_line_and_leave_no_file(tmp_path):
    out = tmp_path / "x.hdf5"
    r = run_cli("data", "collect", "--env", "Hopper-v5", "--policy", "scripted", "--steps", "10", "--out", str(out))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: no scripted controller for 'Hopper-v5'; scripted controllers exist for Pendulum-v1"]
    assert not out.exists()
