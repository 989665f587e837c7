"""End-to-end behaviour of `rlcore train` on the toy loop: run directory, metrics, resume, NaN guard."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, run_cli

from rlcore.checkpoint import CheckpointManager
from rlcore.logging import read_metrics

FAST = ["--set", "tensorboard=false", "--set", "progress=false"]


def test_run_directory_contents(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "toy", "--run-dir", str(run_dir), "--set", "max_steps=60", "--set", "ckpt_every=20")
    assert result.returncode == 0, result.stderr
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "metrics.jsonl", "tb", "checkpoints", "summary.json"} <= names
    meta = json.loads((run_dir / "meta.json").read_text())
    assert "torch" in meta["versions"] and "git_revision" in meta
    records = read_metrics(run_dir)
    assert all("step" in r for r in records)
    assert any("train/loss" in r for r in records) and any("eval/mse" in r for r in records)
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tb").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["last"]["step"] == 60 and summary["best"]["metrics"]["eval/score"] <= 0
    # the loss went down: the loop really trains
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses[-1] < losses[0]
    # the saved config reloads and reruns
    again = run_cli("train", "toy", "--config", str(run_dir / "config.yaml"), "--run-dir", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr


def test_refuses_to_overwrite_a_run(tmp_path):
    args = ["train", "toy", "--run-dir", str(tmp_path / "r"), "--set", "max_steps=20", *FAST]
    assert run_cli(*args).returncode == 0
    result = run_cli(*args)
    assert result.returncode == 2 and "pass --resume" in result.stderr


def test_nan_stops_run_and_keeps_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "r"
    result = run_cli("train", "toy", "--run-dir", str(run_dir), "--set", "nan_at_step=37", "--set",
                     "ckpt_every=10", "--set", "log_every=5", *FAST)
    assert result.returncode == 3, result.stderr
    assert "non-finite value in loss at step 37" in result.stderr
    assert "step_000000030" in result.stderr
    assert CheckpointManager(run_dir / "checkpoints").steps()[-1] == 30
    assert len(result.stderr.strip().splitlines()) == 1


def _final_params(run_dir):
    manager = CheckpointManager(run_dir / "checkpoints")
    step, state = manager.load_latest()
    return step, state["algo"]["model"], state["algo"]["optimizer"]


def _train_losses(run_dir):
    return [(r["step"], r["train/loss"]) for r in read_metrics(run_dir) if "train/loss" in r]


SOAK = ["--set", "max_steps=1500", "--set", "log_every=10", "--set", "ckpt_every=7", "--set", "eval_every=50"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    result = run_cli("train", "toy", "--run-dir", str(run_dir), *SOAK, *FAST)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("kill_after_lines", [1, *(pytest.param(n, marks=pytest.mark.slow) for n in (17, 60, 120))])
def test_kill9_and_resume_is_bit_identical(tmp_path, uninterrupted, kill_after_lines):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rlcore", "train", "toy", "--run-dir", str(run_dir), *SOAK, *FAST]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if metrics.exists() and metrics.read_text().count("\n") >= kill_after_lines:
                break
            time.sleep(0.002)
        time.sleep(random.Random(kill_after_lines).random() * 0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = CheckpointManager(run_dir / "checkpoints").latest_step()
    assert killed_at is None or killed_at < 1500, "the kill came too late to test anything"
    result = run_cli("train", "toy", "--run-dir", str(run_dir), "--resume", *SOAK, *FAST)
    assert result.returncode == 0, result.stderr
    step_a, model_a, opt_a = _final_params(uninterrupted)
    step_b, model_b, opt_b = _final_params(run_dir)
    assert step_a == step_b == 1500
    for k in model_a:
        assert torch.equal(model_a[k], model_b[k]), k
    assert torch.equal(opt_a["state"][0]["exp_avg"], opt_b["state"][0]["exp_avg"])
    assert _train_losses(uninterrupted) == _train_losses(run_dir)
    assert os.path.exists(run_dir / "summary.json")
