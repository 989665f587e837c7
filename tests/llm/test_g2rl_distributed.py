"""Two CPU processes (torchrun, gloo) run 2 G2RL steps and end with identical parameters, equal to one process
running the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO  # noqa: E402
from g2rl_dist_worker import run  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from rlcore.logging import read_metrics  # noqa: E402

SETTINGS = ["model=tiny", "dataset=arith", "eval_dataset=", "arith_kinds=sum", "prompt_format=plain",
            "dataset_limit=16", "prompts_per_step=2", "group_size=4", "max_new_tokens=6", "mini_batch_size=4",
            "micro_batch_size=2", "lr=1e-3", "lr_schedule=constant", "warmup_ratio=0", "max_steps=2",
            "ckpt_every=2", "export_model=false", "tensorboard=false", "progress=false", "device=cpu", "threads=1",
            "reward_funcs=[math,g2rl_dist_worker:distinct_characters]"]  # rewards that vary: a reward_std to check


def test_two_processes_end_equal_and_match_one_process(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "llm" / "g2rl_dist_worker.py"), str(two / "run"), str(two), *SETTINGS]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        assert json.loads((two / f"rank{rank}.json").read_text()) == {"world_size": 2, "backend": "gloo"}
    rank0, rank1 = load_file(str(two / "rank0.safetensors")), load_file(str(two / "rank1.safetensors"))
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
    single, trainer = run(one / "run", one, SETTINGS)
    assert single.status == "finished" and trainer.dist.world_size == 1
    reference = trainer.trainable_state()
    initial = load_file(str(trainer.model_path / "model.safetensors"))
    moved = 0.0
    for k, v in reference.items():
        torch.testing.assert_close(rank0[k], v, atol=2e-6, rtol=1e-4)
        moved = max(moved, (v - initial[k]).abs().max().item())
    assert moved > 1e-4  # the 2 steps really trained
    assert (two / "run" / "metrics.jsonl").is_file() and not (two / "run" / "rank1").exists()
    # N processes log what one process logs: losses and rewards reduced over processes
    step1 = {run: read_metrics(run)[0] for run in (one / "run", two / "run")}
    for key in ("train/pg_loss", "train/reward", "train/reward_std", "train/grad_norm", "train/entropy",
                "train/accuracy"):
        assert step1[two / "run"][key] == pytest.approx(step1[one / "run"][key], rel=1e-4, abs=1e-6), key
    assert step1[one / "run"]["train/pg_loss"] != 0.0 and step1[one / "run"]["train/reward_std"] > 0.0
    meta = {run: json.loads((run / "meta.json").read_text()) for run in (one / "run", two / "run")}
    assert meta[one / "run"]["world_size"] == 1 and meta[two / "run"]["world_size"] == 2
