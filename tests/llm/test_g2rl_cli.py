"""`rlcore train g2rl|grpo` end to end on the tiny Qwen3: geometry logs, HF exports, kill -9 and exact resume,
one-line errors, and (slow) the outside contract on the warm-started tiny-arith preset."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO, run_cli  # noqa: E402

from rlcore.checkpoint import CheckpointManager  # noqa: E402
from rlcore.logging import read_metrics  # noqa: E402

PRESET = ["--config", "configs/g2rl/tiny-arith.yaml"]
FAST = ["--set", "model=tiny", "--set", "max_steps=3", "--set", "eval_limit=2", "--set", "eval_samples=2",
        "--set", "prompts_per_step=2", "--set", "group_size=4", "--set", "mini_batch_size=4", "--set",
        "micro_batch_size=4", "--set", "max_new_tokens=6", "--set", "ckpt_every=1", "--set", "eval_every=2",
        "--set", "tensorboard=false", "--set", "progress=false", "--set", "threads=1"]
GEOM = ("geom/mean_cos", "geom/neg_frac", "geom/mean_nu", "geom/rescued_frac", "train/frac_reward_zero_std",
        "train/reward_std")


def _final(run_dir):
    step, state = CheckpointManager(run_dir / "checkpoints").load_latest()
    return step, state["algo"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("g2rl") / "run"
    result = run_cli("train", "g2rl", *PRESET, *FAST, "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_run_logs_geometry_and_exports_hf_models(uninterrupted):
    records = read_metrics(uninterrupted)
    train = [r for r in records if "train/reward" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(k in r for r in train for k in GEOM)
    assert [r["step"] for r in records if "eval/pass@1" in r] == [2, 3]
    summary = json.loads((uninterrupted / "summary.json").read_text())
    assert summary["best_key"] == "eval/pass@1" and summary["last"]["step"] == 3
    for name in ("model", "best_model"):
        assert (uninterrupted / name / "config.json").is_file() and (uninterrupted / name / "tokenizer.json").is_file()
    from safetensors.torch import load_file

    exported = load_file(str(uninterrupted / "model" / "model.safetensors"))
    _, algo = _final(uninterrupted)
    assert torch.equal(exported["model.norm.weight"], algo["model"]["model.norm.weight"])


def test_kill9_and_resume_is_bit_identical(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rlcore", "train", "g2rl", *PRESET, *FAST, "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None and not latest.exists():
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = CheckpointManager(run_dir / "checkpoints").latest_step()
    assert killed_at is not None and killed_at < 3, "the kill came too late to test anything"
    result = run_cli("train", "g2rl", *PRESET, *FAST, "--run-dir", str(run_dir), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    (step_a, a), (step_b, b) = _final(uninterrupted), _final(run_dir)
    assert step_a == step_b == 3 and a["steps"] == b["steps"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, v in a["optimizer"]["state"][0].items():
        assert torch.equal(v, b["optimizer"]["state"][0][k]), k

    def history(path):
        return [(r["step"], r["train/reward"], r["geom/mean_cos"]) for r in read_metrics(path) if "train/reward" in r]

    assert history(uninterrupted) == history(run_dir)


@pytest.mark.parametrize("argv, words", [
    (["g2rl", *PRESET, "--set", "scaler=bogus"], ["scaler", "literal"]),
    (["grpo", "--config", "configs/grpo/tiny-arith.yaml", "--set", "mini_batch_size=5"], ["mini_batch_size=8"]),
    (["grpo", "--config", "configs/g2rl/tiny-arith.yaml"], ["is for 'g2rl'"]),
    (["g2rl", *PRESET, "--set", "dataset=nope.jsonl"], ["nope.jsonl"]),
])
def test_bad_input_is_one_line(argv, words, tmp_path, capsys, monkeypatch):
    from rlcore.cli import main

    monkeypatch.chdir(REPO)
    code = main(["train", *argv, "--set", "model=tiny", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_grpo_command(tmp_path):
    run_dir = tmp_path / "grpo"
    ok = run_cli("train", "grpo", "--config", "configs/grpo/tiny-arith.yaml", *FAST, "--set", "max_steps=1",
                 "--set", "eval_dataset=", "--set", "export_model=false", "--run-dir", str(run_dir))
    assert ok.returncode == 0, ok.stderr[-3000:]
    (record,) = [r for r in read_metrics(run_dir) if "train/reward" in r]
    assert "geom/mean_cos" in record and "shaping/shaping_delta" not in record


@pytest.mark.slow
def test_contract_command_on_the_warm_started_preset(tmp_path):
    """The outside check, as written: builds the warm start on first use (a few minutes on 2 cores)."""
    run_dir = tmp_path / "D"
    result = run_cli("train", "g2rl", "--config", "configs/g2rl/tiny-arith.yaml", "--set", "max_steps=2",
                     "--run-dir", str(run_dir), timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [r for r in read_metrics(run_dir) if "train/reward" in r]
    assert len(records) == 2 and all(k in r for r in records for k in GEOM)
