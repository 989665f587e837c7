"""The offline training runner and CLI: data preparation, end-to-end runs, resume, evaluation, presets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REPO, run_cli

from rlcore.algorithm import ALGORITHMS
from rlcore.algorithms.odice import ODICEConfig
from rlcore.algorithms.offline.data import prepare_data
from rlcore.checkpoint import CheckpointManager
from rlcore.config import load_config
from rlcore.envs.offline import DatasetSampler, collect, load_dataset, save_dataset
from rlcore.errors import ConfigError, DataError
from rlcore.logging import read_metrics

TINY = ["--set", "v_hidden=[32,32]", "--set", "policy_hidden=[32,32]", "--set", "batch_size=64",
        "--set", "tensorboard=false", "--set", "progress=false", "--set", "eval_episodes=2"]
DEMO = str(REPO / "configs/odice/demo.yaml")


@pytest.fixture(scope="module")
def hopper_file(tmp_path_factory):
    """A small Hopper dataset in D4RL layout, from random actions (seconds to make)."""
    path = tmp_path_factory.mktemp("data") / "hopper_random.hdf5"
    save_dataset(collect("Hopper-v5", "random", episodes=8, seed=0), path)
    return path


def test_prepare_embedded_pendulum_scales_actions_and_scores_behaviour():
    data = prepare_data(ODICEConfig(task="pendulum-scripted-v0", dataset="pendulum-scripted-v0"))
    raw = load_dataset("pendulum-scripted-v0")
    assert np.abs(data.dataset.actions).max() <= 1.0
    np.testing.assert_allclose(data.dataset.actions * 2.0, raw.actions, atol=1e-6)
    np.testing.assert_allclose(data.actions.to_env(data.dataset.actions), raw.actions, atol=1e-6)
    np.testing.assert_array_equal(data.dataset.rewards, raw.rewards)  # no transform for pendulum
    assert data.behaviour_score() == pytest.approx(76.2, abs=0.1)
    assert data.normalizer is None


def test_locomotion_rewards_are_scaled_by_return_range(hopper_file):
    cfg = ODICEConfig(task="hopper-medium-v2", dataset=str(hopper_file), normalize_obs=True)
    data = prepare_data(cfg)
    raw = load_dataset(hopper_file, task="hopper-medium-v2")
    returns = raw.episode_returns()
    np.testing.assert_allclose(data.dataset.rewards, raw.rewards * 1000 / (returns.max() - returns.min()), rtol=1e-5)
    assert data.normalizer is not None
    np.testing.assert_allclose(data.dataset.observations.mean(0), 0, atol=1e-4)
    assert data.actions.identity


def test_single_trajectory_il_has_zero_rewards(hopper_file):
    cfg = ODICEConfig(task="hopper-expert-v2", dataset=str(hopper_file), il_mode="single_trajectory", il_trajectory=2)
    data = prepare_data(cfg)
    raw = load_dataset(hopper_file, task="hopper-expert-v2")
    assert len(data.dataset) == raw.episode_lengths()[2]
    assert not data.dataset.rewards.any()
    assert data.behaviour_returns[0] == pytest.approx(raw.episode_returns()[2])
    with pytest.raises(DataError, match="out of range"):
        prepare_data(ODICEConfig(task="hopper-expert-v2", dataset=str(hopper_file), il_mode="single_trajectory",
                                 il_trajectory=99))


def test_discriminator_il_rewards_prefer_expert_data(tmp_path):
    expert = tmp_path / "expert.hdf5"
    mixed = tmp_path / "mixed.hdf5"
    save_dataset(collect("Pendulum-v1", "scripted", episodes=4, seed=1), expert)
    save_dataset(collect("Pendulum-v1", "random", episodes=8, seed=2), mixed)
    cfg = ODICEConfig(env="Pendulum-v1", dataset=str(mixed), il_mode="discriminator", expert_dataset=str(expert),
                      expert_trajectories=2, disc_steps=300, disc_hidden=[32, 32])
    data = prepare_data(cfg, tmp_path / "run", progress=False)
    raw_mixed = load_dataset(mixed)
    n_mixed = len(raw_mixed)
    assert len(data.dataset) == n_mixed + load_dataset(expert).episode_lengths()[:2].sum()
    assert data.dataset.rewards[n_mixed:].mean() > data.dataset.rewards[:n_mixed].mean() + 0.5
    cached = prepare_data(cfg, tmp_path / "run", progress=False)  # reuses the saved rewards
    np.testing.assert_array_equal(cached.dataset.rewards, data.dataset.rewards)


def test_bad_data_inputs_are_clear(hopper_file):
    with pytest.raises(ConfigError, match="no task or environment"):
        prepare_data(ODICEConfig(dataset=str(hopper_file)))
    with pytest.raises(DataError, match="observations of size 11"):
        prepare_data(ODICEConfig(env="Pendulum-v1", dataset=str(hopper_file)))
    with pytest.raises(ConfigError, match="expert_dataset"):
        ODICEConfig(il_mode="discriminator")


def test_multi_seed_sampler_matches_single_seed_samplers():
    data = load_dataset("pendulum-scripted-v0")
    multi = DatasetSampler(data, 16, [3, 5], torch.device("cpu"))
    singles = [DatasetSampler(data, 16, seed=s) for s in (3, 5)]
    for _ in range(3):
        batch = multi.sample()
        for k, single in enumerate(singles):
            expected = single.sample()
            for key in expected:
                assert torch.equal(batch[key][k], expected[key])


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in REPO.glob("configs/*/*.yaml")
                                         if p.parent.name in ("odice", "iql", "bc")))
def test_every_offline_preset_loads(path):
    text = (REPO / path).read_text()
    algo = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("algo:")][0]
    overrides = ["expert_dataset=expert.hdf5"] if "il_mode: discriminator" in text else []
    cfg = load_config(ALGORITHMS.get(algo).config, REPO / path, overrides=overrides, algo=algo)
    assert cfg.task is not None
    assert "Sources" in text or "#" in text.splitlines()[0], "every preset says where its numbers come from"


def test_preset_algorithms_match_folders():
    """Every preset folder configs/<name>/ belongs to a registered algorithm, and its presets say `algo: <name>`."""
    folders = [p for p in (REPO / "configs").iterdir() if p.is_dir() and p.name not in ("ablations", "accelerate")]
    assert {"odice", "iql", "bc"} <= {p.name for p in folders}
    for folder in folders:
        assert folder.name in ALGORITHMS, folder
        for preset in folder.glob("*.yaml"):
            assert f"\nalgo: {folder.name}\n" in "\n" + preset.read_text(), preset


# ---------------------------------------------------------------------------------------------------------------
# end to end through the CLI


def _scores(run_dir):
    return [r["eval/normalized_score"] for r in read_metrics(run_dir) if "eval/normalized_score" in r]


SMALL_NETS = {"odice": ["v_hidden=[64,64]"], "bc": [], "iql": ["hidden=[64,64]"]}


@pytest.mark.parametrize("algo", ["odice", *(pytest.param(a, marks=pytest.mark.slow) for a in ("bc", "iql"))])
def test_short_training_improves_over_first_evaluation(tmp_path, algo):
    run_dir = tmp_path / algo
    nets = [arg for a in SMALL_NETS[algo] + ["policy_hidden=[64,64]"] for arg in ("--set", a)]
    result = run_cli("train", algo, "--config", DEMO.replace("odice/demo", f"{algo}/demo"), "--run-dir",
                     str(run_dir), "--set", "tensorboard=false", "--set", "progress=false", *nets,
                     "--set", "max_steps=3000", "--set", "eval_every=500", "--set", "eval_episodes=5",
                     timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = _scores(run_dir)
    assert len(scores) == 6
    assert max(scores[1:]) > scores[0] + 20, scores
    assert "behaviour data 76.2" in result.stdout
    assert (run_dir / "learning_curves.png").is_file()


def test_vectorised_seeds_log_per_seed_results_and_eval_and_collect_work(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "odice", "--config", DEMO, "--run-dir", str(run_dir), "--seeds", "0,1", *TINY,
                     "--set", "max_steps=200", "--set", "eval_every=100")
    assert result.returncode == 0, result.stderr[-2000:]
    last = [r for r in read_metrics(run_dir) if "eval/normalized_score" in r][-1]
    assert {"eval/normalized_score/seed0", "eval/normalized_score/seed1"} <= set(last)
    assert last["eval/normalized_score"] == pytest.approx(
        (last["eval/normalized_score/seed0"] + last["eval/normalized_score/seed1"]) / 2)
    ev = run_cli("eval", "odice", "--run-dir", str(run_dir), "--episodes", "2")
    assert ev.returncode == 0, ev.stderr
    out = json.loads(ev.stdout[ev.stdout.index("{"):])
    assert set(out["results"]) == {"seed0", "seed1"} and out["checkpoint_step"] == 200
    data_file = tmp_path / "collected.hdf5"
    col = run_cli("data", "collect", "--env", "Pendulum-v1", "--policy", str(run_dir), "--episodes", "2",
                  "--out", str(data_file))
    assert col.returncode == 0, col.stderr
    collected = load_dataset(data_file)
    assert collected.num_episodes == 2 and np.abs(collected.actions).max() <= 2.0


def _final_policy(run_dir):
    _, state = CheckpointManager(run_dir / "checkpoints").load_latest()
    return state["algo"]["policy"], state["algo"]["value"]


@pytest.mark.parametrize("kill_after_lines", [pytest.param(2, marks=pytest.mark.slow), 9])
def test_kill9_and_resume_is_bit_identical(tmp_path, kill_after_lines):
    args = ["--config", DEMO, *TINY, "--set", "max_steps=400", "--set", "eval_every=100", "--set", "log_every=20",
            "--set", "ckpt_every=30"]
    full = tmp_path / "full"
    assert run_cli("train", "odice", "--run-dir", str(full), *args).returncode == 0
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rlcore", "train", "odice", "--run-dir", str(run_dir), *args],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            metrics = run_dir / "metrics.jsonl"
            if metrics.exists() and metrics.read_text().count("\n") >= kill_after_lines:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (CheckpointManager(run_dir / "checkpoints").latest_step() or 0) < 400
    resumed = run_cli("train", "odice", "--run-dir", str(run_dir), "--resume", *args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for a, b in zip(_final_policy(full), _final_policy(run_dir)):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    assert _scores(full) == _scores(run_dir)


def test_cli_bad_inputs(tmp_path):
    result = run_cli("train", "odice", "--dataset", str(tmp_path / "missing.hdf5"), "--env", "Pendulum-v1",
                     "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = run_cli("train", "odice", "--task", "hopper-medum-v2", "--run-dir", str(tmp_path / "r2"))
    assert result.returncode == 2 and "hopper-medium-v2" in result.stderr, result.stderr
    result = run_cli("train", "odice", "--config", DEMO, "--seeds", "0,0", "--run-dir", str(tmp_path / "r3"))
    assert result.returncode == 2 and "distinct" in result.stderr
    result = run_cli("eval", "odice", "--run-dir", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "config.yaml" in result.stderr


def test_divergence_stops_the_run_naming_step_and_metrics(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "odice", "--config", DEMO, "--run-dir", str(run_dir), *TINY, "--set", "v_lr=1e30",
                     "--set", "policy_lr=1e30", "--set", "max_steps=200", "--set", "log_every=10")
    assert result.returncode == 3, result.stderr[-1000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "non-finite value in" in line and "v_grad_norm" in line and " at step " in line
    summary = json.loads((run_dir / "summary.json").read_text())  # the run says how it ended
    assert summary["status"] == "failed" and summary["error"].startswith("NonFiniteError: non-finite value in")
