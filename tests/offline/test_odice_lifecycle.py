"""O-DICE runs keep their best policy and their history: `--checkpoint best` is the evaluation summary.json calls
best, and a resume may change how a run goes on but not the experiment."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_cli

from rlcore.checkpoint import CheckpointManager

DEMO = str(REPO / "configs/odice/demo.yaml")
TINY = ["--config", DEMO, "--set", "v_hidden=[32,32]", "--set", "policy_hidden=[32,32]", "--set", "batch_size=64",
        "--set", "tensorboard=false", "--set", "progress=false", "--set", "eval_episodes=2", "--set", "log_every=50"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """300 steps evaluated every 50 and checkpointed only at the end: on this data the score peaks early."""
    run_dir = tmp_path_factory.mktemp("odice") / "run"
    result = run_cli("train", "odice", "--run-dir", str(run_dir), *TINY, "--set", "max_steps=300", "--set",
                     "eval_every=50", "--set", "ckpt_every=1000")
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_checkpoint_best_evaluates_the_step_and_score_summary_calls_best(trained):
    summary = json.loads((trained / "summary.json").read_text())
    best = CheckpointManager(trained / "checkpoints").best
    scores = {r["step"]: r["eval/normalized_score"] for r in map(json.loads, (trained / "metrics.jsonl").open())
              if "eval/normalized_score" in r}
    assert summary["best"]["step"] == best["step"] == max(scores, key=scores.get)
    assert best["metric"] == summary["best"]["metrics"]["eval/normalized_score"] == max(scores.values())
    assert best["step"] != 300, "the best evaluation must not be the last one for this test to mean anything"
    result = run_cli("eval", "odice", "--run-dir", str(trained), "--checkpoint", "best")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert out["checkpoint_step"] == summary["best"]["step"]
    # the same policy, the same evaluation episodes: the same score, to the last bit (CPU)
    assert out["results"]["seed0"]["normalized_score_mean"] == best["metric"]


def test_resume_refuses_to_change_the_experiment(trained, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    config, meta = (run_dir / "config.yaml").read_bytes(), (run_dir / "meta.json").read_bytes()
    result = run_cli("train", "odice", "--run-dir", str(run_dir), "--resume", "--set", "lam=0.5")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "lam 0.6 -> 0.5" in result.stderr and "--force-config" in result.stderr
    assert (run_dir / "config.yaml").read_bytes() == config and (run_dir / "meta.json").read_bytes() == meta

    longer = run_cli("train", "odice", "--run-dir", str(run_dir), "--resume", "--set", "max_steps=350",
                     "--set", "eval_every=25")
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert f"resumed {run_dir} from step 300" in longer.stdout
    forced = run_cli("train", "odice", "--run-dir", str(run_dir), "--resume", "--set", "lam=0.5", "--set",
                     "max_steps=375", "--force-config")
    assert forced.returncode == 0, forced.stderr[-2000:]
    saved = json.loads((run_dir / "meta.json").read_text())
    assert saved["argv"] == json.loads(meta)["argv"], "the original command line stays"
    assert [(r["step"], r["changed"]) for r in saved["resumes"]] == [
        (300, {"eval_every": [50, 25], "max_steps": [300, 350]}),
        (350, {"lam": [0.6, 0.5], "max_steps": [350, 375]})]
    assert "--force-config" in saved["resumes"][1]["argv"]
    assert "lam: 0.5" in (run_dir / "config.yaml").read_text()
