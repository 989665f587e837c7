"""vllm_mode=server without vLLM: the trainer's client and the server code of ``rlcore vllm-serve`` around a
transformers engine (``_hf_test_server``, a test double: same HTTP API and weight push, HF generate instead of
vLLM). The same checks against real vLLM are in test_vllm_server.py (``make test-vllm``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO, run_cli  # noqa: E402

from rlcore.cli import main  # noqa: E402
from rlcore.errors import UserError  # noqa: E402
from rlcore.llm import load_policy, tiny_qwen  # noqa: E402
from rlcore.logging import read_metrics  # noqa: E402
from rlcore.rollout import SamplingParams, make_engine  # noqa: E402
from rlcore.rollout.protocol import merged_weights  # noqa: E402
from rlcore.rollout.server import start  # noqa: E402

GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
PROMPTS = ["Hello world!", "What is 2+3?", "1 2 3 4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hf_test_server(port: int = 0):
    """The server of `rlcore vllm-serve` around an HF engine on the tiny model's initial weights."""
    return start(make_engine("hf", tiny_qwen(), device="cpu"), port=port, model="tiny (HF test double)")


def _trained_model():
    """The tiny model with weights moved away from the server's (as after some optimiser steps)."""
    model, tokenizer = load_policy(tiny_qwen(), device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model, tokenizer


def _ids(groups):
    return [g[0].token_ids for g in groups]


@pytest.mark.parametrize("transport", ["http", "gloo"])  # gloo: the code of the NCCL push, on CPU tensors
def test_server_greedy_matches_trainer_after_push(transport):
    server = _hf_test_server()
    try:
        model, tokenizer = _trained_model()
        client = make_engine("server", f"http://127.0.0.1:{server.server_port}", tokenizer=tokenizer, timeout_s=5,
                             transport=transport)
        local = make_engine("hf", model, tokenizer=tokenizer)
        expected = _ids(local.generate(PROMPTS, GREEDY))
        assert _ids(client.generate(PROMPTS, GREEDY)) != expected  # the server still has its own weights
        client.update_weights(model)
        assert server.version == client.version == 1
        got = client.generate(PROMPTS, GREEDY)
        assert _ids(got) == expected
        assert got[0][0].prompt_token_ids == client.encode_prompts(PROMPTS[:1])[0]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # waits for the restart
@pytest.mark.parametrize("transport", ["http", "gloo"])
def test_server_restart_is_waited_for_and_weights_pushed_again(transport):
    port = _free_port()
    server = _hf_test_server(port)
    model, tokenizer = _trained_model()
    client = make_engine("server", f"http://127.0.0.1:{port}", tokenizer=tokenizer, timeout_s=60,
                         retry_every_s=0.2, transport=transport)
    client.update_weights(model)
    expected = _ids(client.generate(PROMPTS, GREEDY))
    server.shutdown()
    server.server_close()  # the server is gone; a new one (fresh weights, version 0) comes up 2 s later
    restarted = {}
    threading.Timer(2.0, lambda: restarted.setdefault("server", _hf_test_server(port))).start()
    t0 = time.monotonic()
    try:
        assert _ids(client.generate(PROMPTS, GREEDY)) == expected  # waited, pushed version 1 again, generated
        assert time.monotonic() - t0 >= 1.5 and restarted["server"].version == 1
    finally:
        if "server" in restarted:
            restarted["server"].shutdown()
            restarted["server"].server_close()


def test_unreachable_server_is_one_line_error_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(UserError, match=f"generation server {url} unreachable for 0.5 s"):
        make_engine("server", url, tokenizer=None, timeout_s=0.5, retry_every_s=0.1)
    result = run_cli("train", "grpo", "--run-dir", str(tmp_path / "r"), "--set", "model=tiny", "--set",
                     "dataset=arith", "--set", "eval_dataset=", "--set", "engine=vllm", "--set", "vllm_mode=server",
                     "--set", f"vllm_server_base_url={url}", "--set", "vllm_server_timeout=1", "--set", "device=cpu",
                     cwd=REPO)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]  # (and transformers' bars)
    assert len(errors) == 1 and url in errors[0] and errors[0].startswith("error: generation server"), errors


def test_merged_lora_weights_are_the_base_names_with_adapters_folded_in():
    peft = pytest.importorskip("peft")
    model, _ = load_policy(tiny_qwen(), device="cpu")
    names = set(model.state_dict())
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    before = {k: v.clone() for k, v in lora.state_dict().items()}
    merged = merged_weights(lora)
    assert set(merged) == names
    assert {k: v for k, v in lora.state_dict().items()}.keys() == before.keys()
    for k, v in lora.state_dict().items():  # unmerged again: training continues on the adapters
        torch.testing.assert_close(v, before[k])
    reference = lora.merge_and_unload().state_dict()
    for k in names:
        torch.testing.assert_close(merged[k], reference[k])
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[q], before[f"base_model.model.{q.removesuffix('.weight')}.base_layer.weight"])


@pytest.mark.slow  # a 2-step training
def test_grpo_with_a_generation_server_pushes_weights_every_step(tmp_path):
    server = _hf_test_server()
    try:
        code = main(["train", "grpo", "--run-dir", str(tmp_path / "r"), "--set", "model=tiny", "--set",
                     "dataset=arith", "--set", "eval_dataset=", "--set", "arith_kinds=[sum]", "--set",
                     "prompt_format=plain", "--set", "prompts_per_step=2", "--set", "group_size=4", "--set",
                     "max_new_tokens=6", "--set", "mini_batch_size=8", "--set", "micro_batch_size=8", "--set",
                     "max_steps=2", "--set", "log_every=1", "--set", "tensorboard=false", "--set", "progress=false",
                     "--set", "export_model=false", "--set", "device=cpu", "--set", "engine=vllm", "--set",
                     "vllm_mode=server", "--set", f"vllm_server_base_url=http://127.0.0.1:{server.server_port}"])
        assert code == 0
        assert server.version == 2  # before step 1 (the trainer's weights) and after step 1's optimiser step
        steps = [r for r in read_metrics(tmp_path / "r") if "time/weight_sync_s" in r]
        assert [r["step"] for r in steps] == [1, 2]
        assert all(r["time/weight_sync_s"] > 0 and r["time/generate_s"] > 0 and r["time/optimise_s"] > 0
                   for r in steps)
        assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["vllm_mode"] == "server"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # two training processes (torchrun) and the server
def test_two_training_processes_share_one_generation_server(tmp_path):
    server = _hf_test_server()
    try:
        settings = ["model=tiny", "dataset=arith", "eval_dataset=", "arith_kinds=[sum]", "prompt_format=plain",
                    "prompts_per_step=2", "group_size=4", "max_new_tokens=6", "mini_batch_size=8",
                    "micro_batch_size=4", "max_steps=2", "log_every=1", "tensorboard=false", "progress=false",
                    "export_model=false", "device=cpu", "threads=1", "engine=vllm", "vllm_mode=server",
                    f"vllm_server_base_url=http://127.0.0.1:{server.server_port}"]
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                 "2", "-m", "rlcore", "train", "grpo", "--run-dir", str(tmp_path / "r"),
                                 *[a for s in settings for a in ("--set", s)]], cwd=REPO, capture_output=True,
                                text=True, timeout=500, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]  # the run's end checks the processes agree
        assert server.version == 2  # one push per step, by the first process only
        assert [r["step"] for r in read_metrics(tmp_path / "r") if "time/weight_sync_s" in r] == [1, 2]
    finally:
        server.shutdown()
        server.server_close()
