"""``rlcore.load_policy(run_dir, <step>)`` for GRPO runs: the model the run's config names with the trainable weights
of that step's checkpoint, equal to the exported final model at the last step, with and without LoRA; a step
that does not exist is a one-line error listing the steps."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

import rlcore  # noqa: E402
from rlcore.errors import UserError  # noqa: E402


def distinct_characters(completions: list[str], **kwargs) -> list[float]:
    """A reward that differs within groups, so that every step has a gradient."""
    return [float(len(set(c))) for c in completions]


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in model.named_parameters()}


@pytest.mark.parametrize("lora_rank", [0, pytest.param(4, marks=pytest.mark.slow)])  # LoRA: make test-slow
def test_a_step_number_loads_that_steps_weights(tmp_path, lora_rank):
    if lora_rank:
        pytest.importorskip("peft", reason="LoRA needs peft (pip install 'rlcore[llm]')")
    cfg = rlcore.GRPOConfig(
        model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain", dataset_limit=16,
        prompts_per_step=2, group_size=4, max_new_tokens=5, mini_batch_size=8, micro_batch_size=8, lr=1e-2,
        lr_schedule="constant", warmup_ratio=0.0, max_steps=2, ckpt_every=1, keep_checkpoints=2, lora_rank=lora_rank,
        device="cpu", tensorboard=False, progress=False)
    result = rlcore.train(cfg, reward_funcs=[distinct_characters], run_dir=tmp_path / "run")
    assert result.status == "finished"
    (final, final_tok), (step2, step2_tok) = result.policy("latest"), rlcore.load_policy(result.run_dir, 2)
    step1, _ = rlcore.load_policy(result.run_dir, checkpoint=1)
    final_params, step2_params, step1_params = _params(final), _params(step2), _params(step1)
    assert type(step2) is type(final) and step2_tok.eos_token == final_tok.eos_token
    assert not step2.training and next(step2.parameters()).device.type == "cpu"
    assert step2_params.keys() == final_params.keys() == step1_params.keys()  # LoRA merged: plain model names
    assert all(torch.equal(step2_params[n], final_params[n]) for n in final_params)
    changed = [n for n in final_params if not torch.equal(step1_params[n], final_params[n])]
    assert changed, "step 1 and step 2 have the same weights"
    if lora_rank:  # only the adapted linear layers moved; embeddings and norms are the base model's
        assert all(n.endswith(".weight") and ("proj" in n) for n in changed), changed[:5]
    else:  # a step that does not exist, or a name that is none, is one line listing the steps
        for checkpoint, message in [(7, "has no checkpoint of step 7 (steps [1, 2])"),
                                    ("first", "is not best, latest or a step number (this run has steps [1, 2])")]:
            with pytest.raises(UserError, match=re.escape(message)) as info:
                rlcore.load_policy(result.run_dir, checkpoint)
            assert "\n" not in str(info.value)

