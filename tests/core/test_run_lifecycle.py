"""The life of a run on the toy loop, through real `rlcore train` processes: a stop signal keeps the work, a
resume continues exactly and honestly, time-based checkpoints, TensorBoard history, and the stop-signal rules."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import REPO, run_cli

from rlcore.checkpoint import CheckpointManager
from rlcore.cli import main
from rlcore.logging import read_metrics

QUIET = ["--set", "tensorboard=false", "--set", "progress=false"]
# ckpt_every is past the last step: before the stop, the run has no step-based checkpoint at all
LONG = ["--set", "max_steps=1500", "--set", "log_every=10", "--set", "eval_every=50", "--set", "ckpt_every=2000"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rlcore", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_lines(proc: subprocess.Popen, path, lines: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") >= lines:
            return
        time.sleep(0.002)
    raise AssertionError(f"{path} never reached {lines} lines (exit code {proc.poll()})")


def _final(run_dir):
    step, state = CheckpointManager(run_dir / "checkpoints").load_latest()
    return step, state["algo"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    result = run_cli("train", "toy", "--run-dir", str(run_dir), *LONG, *QUIET)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_stop_signal_keeps_the_work_and_resume_is_bit_identical(tmp_path, uninterrupted, signum):
    lines = random.randint(2, 40)  # a random step before the first ckpt_every (about 10 steps a metrics line)
    run_dir = tmp_path / "run"
    proc = _start("train", "toy", "--run-dir", str(run_dir), *LONG, *QUIET)
    try:
        _wait_for_lines(proc, run_dir / "metrics.jsonl", lines)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr
    stopped = CheckpointManager(run_dir / "checkpoints").latest_step()
    assert stopped is not None and stopped < 1500, (lines, stopped, stderr)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["step"] == stopped
    last_line = stderr.strip().splitlines()[-1]
    assert f"stopped at step {stopped} of 1500 by {signal.Signals(signum).name}" in last_line
    resume = shlex.split(last_line.split("resume with: ", 1)[1])
    assert resume == ["rlcore", "train", "toy", "--run-dir", str(run_dir.resolve()), "--resume"]
    before = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert before and json.loads(before[-1])["step"] <= stopped

    result = run_cli(*resume[1:], *QUIET)
    assert result.returncode == 0, result.stderr
    assert f"resumed {run_dir.resolve()} from step {stopped}" in result.stdout
    after = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert after[:len(before)] == before, "every metrics line written before the stop is kept as it was"
    (step_a, a), (step_b, b) = _final(uninterrupted), _final(run_dir)
    assert step_a == step_b == 1500
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])

    def history(path):
        return [(r["step"], r.get("train/loss"), r.get("eval/mse")) for r in read_metrics(path)]

    assert history(uninterrupted) == history(run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"


def test_time_based_checkpoints(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "toy", "--run-dir", str(run_dir), "--set", "max_steps=400", "--set", "ckpt_every=1000",
                 "--set", "ckpt_minutes=0.0003", "--set", "keep_checkpoints=1000", *QUIET])
    assert code == 0, capsys.readouterr().err
    steps = CheckpointManager(run_dir / "checkpoints").steps()
    assert len(steps) >= 3 and steps[-1] == 400, steps  # every ~20 ms, and the last step
    code = main(["train", "toy", "--run-dir", str(tmp_path / "off"), "--set", "max_steps=400", "--set",
                 "ckpt_every=1000", "--set", "ckpt_minutes=0", *QUIET])
    assert code == 0 and CheckpointManager(tmp_path / "off" / "checkpoints").steps() == [400]


def _kill9_after_checkpoint(run_dir, args, step):
    proc = _start("train", "toy", "--run-dir", str(run_dir), *args)
    try:
        manager = CheckpointManager(run_dir / "checkpoints")
        deadline = time.time() + 120
        while (manager.latest_step() or 0) < step and time.time() < deadline and proc.poll() is None:
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_resume_after_kill9_drops_only_lines_past_the_checkpoint_and_tensorboard_keeps_every_eval(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["--set", "max_steps=600", "--set", "log_every=10", "--set", "eval_every=50", "--set", "ckpt_every=50",
            "--set", "progress=false"]
    run_dir = tmp_path / "run"
    _kill9_after_checkpoint(run_dir, args, 100)
    killed_at = CheckpointManager(run_dir / "checkpoints").latest_step()
    assert killed_at is not None and killed_at < 600, "the kill came too late to test anything"
    records = read_metrics(run_dir)
    past = sum(r["step"] > killed_at for r in records)
    result = run_cli("train", "toy", "--run-dir", str(run_dir), "--resume", *args)
    assert result.returncode == 0, result.stderr
    if past:
        assert f"dropped {past} metric lines logged after step {killed_at}" in result.stdout
    assert [r for r in read_metrics(run_dir) if r["step"] <= killed_at] == [r for r in records
                                                                            if r["step"] <= killed_at]
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/mse")] == list(range(50, 601, 50))
    assert [e.step for e in events.Scalars("train/loss")] == list(range(10, 601, 10))


def test_resume_is_refused_without_a_checkpoint_or_a_run_directory(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert main(["train", "toy", "--run-dir", str(tmp_path / "folder"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "not a run directory (no config.yaml)" in err and len(err.strip().splitlines()) == 1
    run_dir = tmp_path / "early"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("algo: toy\nmax_steps: 10\n")
    assert main(["train", "toy", "--run-dir", str(run_dir), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint to resume from" in err and len(err.strip().splitlines()) == 1
    fresh = shlex.split(err.split("start it afresh with: ", 1)[1])
    assert main([*fresh[1:], *QUIET]) == 0  # the suggested command works
    assert CheckpointManager(run_dir / "checkpoints").steps() == [10]


_SIGNALS = textwrap.dedent("""
    import os, signal, sys, time
    from rlcore.stop import StopSignals
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # relayed at once (a sweep or torchrun passing the stop on): the same stop
        time.sleep(0.1)
        print("still running", stop.signum == signal.SIGINT, flush=True)
        if sys.argv[1] == "again":
            time.sleep(1.2)
            os.kill(os.getpid(), signal.SIGINT)  # a second stop request: the process ends at once
            time.sleep(5)
        print("survived", flush=True)
""")


@pytest.mark.parametrize("mode", ["once", "again"])
def test_second_signal_exits_at_once(mode):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _SIGNALS, mode], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "still running True" in result.stdout, result.stderr
    if mode == "once":
        assert result.returncode == 0 and "survived" in result.stdout
    else:
        assert result.returncode == -signal.SIGINT and "survived" not in result.stdout
        assert time.perf_counter() - start < 5
