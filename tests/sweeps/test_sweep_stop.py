"""SIGTERM to a running sweep (`rlcore ablate`, through the command line only): every training stops after its
current update with a checkpoint, and starting the sweep again finishes each run exactly as an uninterrupted
sweep does."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time

import torch
import yaml
from conftest import REPO, run_cli

from rlcore.checkpoint import CheckpointManager
from rlcore.logging import read_metrics

# ckpt_every is past the last step: a run stopped early has no step-based checkpoint to fall back on
SETTINGS = {"max_steps": 2000, "eval_every": 500, "ckpt_every": 5000, "log_every": 10, "tensorboard": False}


def _spec(tmp_path):
    spec = {"base": str(REPO / "configs/toy/demo.yaml"), "set": SETTINGS, "seeds": [0, 1], "metric": "eval/score",
            "backend": "process", "workers": 2}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _runs(out):
    return sorted(p.parent for p in out.rglob("config.yaml"))


def test_sigterm_to_a_sweep_keeps_every_run_and_the_rerun_is_bit_identical(tmp_path):
    spec = _spec(tmp_path)
    full = run_cli("ablate", str(spec), "--out", str(tmp_path / "full"), "--no-report")
    assert full.returncode == 0, full.stderr

    out = tmp_path / "stopped"
    lines = random.randint(2, 30)  # a random moment, well before the runs' first ckpt_every
    proc = subprocess.Popen([sys.executable, "-m", "rlcore", "ablate", str(spec), "--out", str(out), "--no-report"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            files = list(out.rglob("metrics.jsonl"))
            if len(files) == 2 and all(f.read_text().count("\n") >= lines for f in files):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0, stderr
    runs = _runs(out)
    assert len(runs) == 2
    before = {}
    for run in runs:
        step = CheckpointManager(run / "checkpoints").latest_step()
        summary = json.loads((run / "summary.json").read_text())
        assert step is not None and step < 2000 and summary == {**summary, "status": "stopped", "step": step}, run
        before[run] = (run / "metrics.jsonl").read_text().splitlines()
        assert json.loads(before[run][-1])["step"] <= step

    again = run_cli("ablate", str(spec), "--out", str(out), "--no-report")
    assert again.returncode == 0 and "2/2 runs finished" in again.stdout, again.stderr
    for run, reference in zip(runs, _runs(tmp_path / "full")):
        assert run.relative_to(out) == reference.relative_to(tmp_path / "full")
        assert (run / "metrics.jsonl").read_text().splitlines()[:len(before[run])] == before[run]
        (step_a, a), (step_b, b) = [CheckpointManager(r / "checkpoints").load_latest() for r in (reference, run)]
        assert step_a == step_b == 2000
        for k in a["algo"]["model"]:
            assert torch.equal(a["algo"]["model"][k], b["algo"]["model"][k]), (run, k)
        strip = [{k: v for k, v in r.items() if not k.startswith("time")} for r in read_metrics(reference)]
        assert [{k: v for k, v in r.items() if not k.startswith("time")} for r in read_metrics(run)] == strip


def test_sigint_stops_a_sweep_started_in_the_background_by_a_script(tmp_path):
    """A script's `rlcore ablate ... &` inherits SIGINT ignored; the sweep still stops on it, like on SIGTERM, and
    prints the command that continues it, which then finishes every run."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": str(REPO / "configs/toy/demo.yaml"), "seeds": [0, 1],
                                    "set": {**SETTINGS, "max_steps": 400}, "backend": "process", "workers": 2}))
    out, err, pid = tmp_path / "out", tmp_path / "err.txt", tmp_path / "pid"
    script = (f"{shlex.quote(sys.executable)} -m rlcore ablate {shlex.quote(str(spec))} --out {shlex.quote(str(out))} "
              f"--no-report 2> {shlex.quote(str(err))} & echo $! > {shlex.quote(str(pid))}; wait $!; echo $? >> "
              f"{shlex.quote(str(pid))}")
    shell = subprocess.Popen(["bash", "-c", script], cwd=REPO)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and shell.poll() is None:
            files = list(out.rglob("metrics.jsonl"))
            if len(files) == 2 and all(f.read_text().count("\n") >= 2 for f in files):
                break
            time.sleep(0.05)
        os.kill(int(pid.read_text().split()[0]), signal.SIGINT)
        shell.wait(timeout=120)
    finally:
        shell.kill()
    assert pid.read_text().split()[1] == "130", err.read_text()
    text = err.read_text()
    assert "stopped by SIGINT" in text, text
    command = text.split("continue with: ", 1)[1].splitlines()[0]
    assert shlex.split(command) == ["rlcore", "ablate", str(spec), "--out", str(out), "--no-report"]
    again = run_cli(*shlex.split(command)[1:])
    assert again.returncode == 0 and "2/2 runs finished" in again.stdout, again.stderr
