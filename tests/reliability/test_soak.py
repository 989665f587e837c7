"""Crash-and-resume soak (slow): SIGKILL real training processes at random moments, resume each, and check that every
checkpoint on disk loads and the final parameters equal an uninterrupted run bit for bit (CPU)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, run_cli

from rlcore.checkpoint import CheckpointManager

pytestmark = pytest.mark.slow

JOBS = {
    "odice": ["train", "odice", "--config", str(REPO / "configs/odice/demo.yaml"), "--set", "v_hidden=[32,32]",
              "--set", "policy_hidden=[32,32]", "--set", "batch_size=64", "--set", "max_steps=600",
              "--set", "eval_every=150", "--set", "eval_episodes=2", "--set", "log_every=25",
              "--set", "ckpt_every=40", "--set", "tensorboard=false", "--set", "progress=false"],
    "g2rl": ["train", "g2rl", "--config", str(REPO / "configs/g2rl/tiny-arith.yaml"), "--set", "model=tiny",
             "--set", "max_steps=8", "--set", "eval_every=4", "--set", "eval_limit=2", "--set", "eval_samples=2",
             "--set", "prompts_per_step=2", "--set", "group_size=4", "--set", "mini_batch_size=4",
             "--set", "micro_batch_size=4", "--set", "max_new_tokens=6", "--set", "ckpt_every=1",
             "--set", "tensorboard=false", "--set", "progress=false", "--set", "threads=1"],
}
KILLS = {"odice": 10, "g2rl": 10}


def _final_state(run_dir):
    step, state = CheckpointManager(run_dir / "checkpoints").load_latest()
    return step, state["algo"]


def _assert_equal(a, b, path="algo"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.timeout(3600)  # 21 trainings each
@pytest.mark.parametrize("job", list(JOBS))
def test_random_kills_then_resume_are_bit_identical(tmp_path, job):
    args = JOBS[job]
    reference = tmp_path / "reference"
    t0 = time.perf_counter()
    assert run_cli(*args, "--run-dir", str(reference), timeout=1800).returncode == 0
    duration = time.perf_counter() - t0
    rng = random.Random(1234)
    survived = 0
    for attempt in range(KILLS[job]):
        run_dir = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "rlcore", *args, "--run-dir", str(run_dir)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 0.9) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manager = CheckpointManager(run_dir / "checkpoints")
        for step in manager.steps():  # every checkpoint left behind loads
            assert manager.load(step)["step"] == step
        resume = ["--resume"] if manager.steps() else []  # killed before its first checkpoint: start afresh
        result = run_cli(*args, "--run-dir", str(run_dir), *resume, timeout=1800)
        assert result.returncode == 0, result.stderr[-2000:]
        step_a, a = _final_state(reference)
        step_b, b = _final_state(run_dir)
        assert step_a == step_b
        _assert_equal(a, b)
        survived += 1
    print(f"{job}: {survived}/{KILLS[job]} kills resumed bit-identically")
