"""The real smollm2-135m end to end (make test-slow): loading, chat generation that stops on <|im_end|>, two steps
of GRPO and G2RL, rlcore.load_policy of a step, and an exact resume. Skips when the wheel cannot be had (no
network and no RLCORE_SMOLLM2_WHEEL)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")
pytest.importorskip("gguf", reason="the gguf package is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

import rlcore  # noqa: E402
from rlcore.errors import UserError  # noqa: E402
from rlcore.llm import load_policy, smollm2_135m  # noqa: E402

pytestmark = pytest.mark.slow

ROWS = [{"prompt": [{"role": "user", "content": f"What is {a} + {b}? Reply with just the number."}],
         "answer": str(a + b)} for a in range(1, 5) for b in range(1, 5)]


@pytest.fixture(scope="module")
def smollm2():
    """The converted directory (fetched and converted now if the cache lacks it). The wheel comes from PyPI, not
    the hub, so conftest's HF_HUB_OFFLINE=1 is lifted for the fetch; RLCORE_OFFLINE=1 still forbids it."""
    hub_offline = os.environ.pop("HF_HUB_OFFLINE", None)
    try:
        return smollm2_135m()
    except UserError as e:
        pytest.skip(f"smollm2-135m cannot be had here: {e}")
    finally:
        if hub_offline is not None:
            os.environ["HF_HUB_OFFLINE"] = hub_offline


def distinct_characters(completions: list[str], **kwargs) -> list[float]:
    """A reward that differs within groups, so that every step has a gradient."""
    return [float(len(set(c))) for c in completions]


def config(algo: type, **kw):
    settings = dict(model="smollm2-135m", eval_dataset="", prompts_per_step=2, group_size=2, max_new_tokens=8,
                    mini_batch_size=4, micro_batch_size=4, lr=1e-5, lr_schedule="constant", warmup_ratio=0.0,
                    max_steps=2, ckpt_every=1, keep_checkpoints=2, device="cpu", tensorboard=False, progress=False)
    return algo(**{**settings, **kw})


def params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in model.named_parameters()}


def test_load_and_greedy_chat_stops_on_im_end(smollm2):
    from rlcore.envs.reasoning import build_prompt
    from rlcore.rollout import SamplingParams, make_engine

    model, tok = load_policy("smollm2-135m", device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (30, 576, 49152)
    assert (tok.eos_token, tok.pad_token_id, tok.eos_token_id) == ("<|im_end|>", 2, 2)
    prompt = build_prompt("What is 2 + 3? Reply with just the number.", tok, placement="user", instruction="")
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    engine = make_engine("hf", model, tokenizer=tok)
    (out,), = engine.generate([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=32))
    assert out.finish_reason == "stop" and out.token_ids[-1] == 2 and "5" in out.text


@pytest.mark.parametrize("algo", ["grpo", "g2rl"])
def test_two_steps_then_load_policy_of_a_step(smollm2, tmp_path, algo):
    cls = rlcore.GRPOConfig if algo == "grpo" else rlcore.G2RLConfig
    result = rlcore.train(config(cls), dataset=ROWS, reward_funcs=[distinct_characters], run_dir=tmp_path / "run")
    assert result.status == "finished" and result.summary["step"] == 2
    final, step2, step1 = (params(result.policy("latest")[0]), params(rlcore.load_policy(result.run_dir, 2)[0]),
                           params(rlcore.load_policy(result.run_dir, 1)[0]))
    assert all(torch.equal(step2[n], final[n]) for n in final)
    assert any(not torch.equal(step1[n], final[n]) for n in final), "step 1 and step 2 have the same weights"


def test_resume_gives_the_uninterrupted_weights(smollm2, tmp_path):
    whole = rlcore.train(config(rlcore.GRPOConfig), dataset=ROWS, reward_funcs=[distinct_characters],
                         run_dir=tmp_path / "whole")
    rlcore.train(config(rlcore.GRPOConfig, max_steps=1), dataset=ROWS, reward_funcs=[distinct_characters],
                 run_dir=tmp_path / "parts")
    resumed = rlcore.train(config(rlcore.GRPOConfig), dataset=ROWS, reward_funcs=[distinct_characters],
                           run_dir=tmp_path / "parts", resume=True)
    assert resumed.summary["step"] == 2
    a, b = params(whole.policy("latest")[0]), params(resumed.policy("latest")[0])
    assert all(torch.equal(a[n], b[n]) for n in a)
