"""GRPO across two "nodes" on 127.0.0.1 (one CPU process each, gloo), launched as on a cluster with
``torchrun --nnodes 2 --node_rank R`` and with ``accelerate launch`` and the shipped multi-node config: the same
step-1 ``train/pg_loss`` and ``train/reward`` as one process, and the same final parameters."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from test_g2rl_distributed import SETTINGS  # noqa: E402

from rlcore.logging import read_metrics  # noqa: E402

# rewards that vary with the sampled tokens: non-zero advantages, so the 2 steps move the parameters
REWARD = "def first_token(completion_ids, **kw):\n    return [float(c[0] % 7) for c in completion_ids]\n"
ARGS = [a for s in [*SETTINGS, "reward_funcs=[multinode_reward:first_token]", "log_every=1",
                                    "export_model=true"] for a in ("--set", s)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_command(launcher: str, rank: int, port: int) -> list[str]:
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank),
                "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port)]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "configs/accelerate/multi-node-cpu.yaml"), "--machine_rank", str(rank),
            "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]


def _train(prefix: list[str], run_dir: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([*prefix, "-m", "rlcore", "train", "grpo", "--run-dir", str(run_dir), *ARGS], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _step1(run_dir: Path) -> dict:
    return next(r for r in read_metrics(run_dir) if r["step"] == 1 and "train/pg_loss" in r)


@pytest.mark.slow  # three tiny trainings, about a minute and a half on 2 cores
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_nodes_match_one_process(tmp_path, launcher):
    (tmp_path / "multinode_reward.py").write_text(REWARD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    port = _free_port()
    nodes = [_train(_node_command(launcher, rank, port), tmp_path / "two", env) for rank in (0, 1)]
    logs = [node.communicate(timeout=500)[0] for node in nodes]
    for node, log in zip(nodes, logs):
        assert node.returncode == 0, log[-3000:]
    one = _train([sys.executable], tmp_path / "one", env)
    log = one.communicate(timeout=300)[0]
    assert one.returncode == 0, log[-3000:]

    two_step, one_step = _step1(tmp_path / "two"), _step1(tmp_path / "one")
    assert one_step["train/pg_loss"] != 0.0 and one_step["train/reward"] > 0  # a step that really trains
    assert two_step["train/reward"] == pytest.approx(one_step["train/reward"], rel=1e-6)
    assert two_step["train/pg_loss"] == pytest.approx(one_step["train/pg_loss"], rel=1e-4, abs=1e-7)
    two, one_params = (load_file(str(tmp_path / d / "model" / "model.safetensors")) for d in ("two", "one"))
    assert two.keys() == one_params.keys()
    for k, v in one_params.items():
        torch.testing.assert_close(two[k], v, atol=2e-6, rtol=1e-4)
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["steps"] == 2
    assert not (tmp_path / "two" / "rank1").exists()  # only node 0's process writes the run
