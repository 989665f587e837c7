"""Against the installed TRL on one batch: several weighted reward functions (with None scores) give TRL's
per-function rewards and advantages, and mask_truncated leaves the same rows out of the loss (mask and loss
value) as TRL's mask_truncated_completions. The batch is fixed through TRL's rollout_func, so both see the same
completions."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

pytest.importorskip("trl", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig as TRLConfig  # noqa: E402
from trl import GRPOTrainer  # noqa: E402

from rlcore.algorithms.grpo.losses import group_advantages, grpo_loss  # noqa: E402
from rlcore.algorithms.grpo.rewards import RewardFunctions  # noqa: E402
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass  # noqa: E402
from rlcore.algorithms.grpo.step import loss_keep, truncated  # noqa: E402
from rlcore.envs.reasoning import MathRecord  # noqa: E402
from rlcore.llm import lm_head_weight, tiny_qwen  # noqa: E402
from rlcore.rollout import Completion  # noqa: E402

M, MAX_LEN = 4, 6
PROMPTS = [[9707, 1879, 0, 11], [3838, 374, 16]]
# two groups of 4; rows stopped by EOS (filled in below) or cut at MAX_LEN tokens
BODIES = [[20, 21], [22, 23, 24, 25, 26, 27], [30, 31, 32], [40, 41, 42, 43, 44, 45],
          [50, 51, 52, 53, 54, 55], [60], [61, 62, 63, 64, 65, 66], [70, 71, 72, 73]]
STOPPED = [True, False, True, False, False, True, False, True]


@pytest.fixture(scope="module")
def rewards_module(tmp_path_factory):
    """User reward functions as an importable module (our ``package.module:function`` form), also given to TRL."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "feature_rewards.py").write_text(textwrap.dedent("""
        def parity(completions, completion_ids, **kwargs):
            return [1.0 if len(ids) % 2 else -1.0 for ids in completion_ids]

        def tagged(completions, answer, completion_ids, **kwargs):
            return [None if a == "skip" else 0.5 * len(ids) - float(ids[0] % 3)
                    for a, ids in zip(answer, completion_ids)]
        """))
    sys.path.insert(0, str(folder))
    yield importlib.import_module("feature_rewards")
    sys.path.remove(str(folder))
    sys.modules.pop("feature_rewards", None)


@pytest.fixture(scope="module")
def trl_batch(tmp_path_factory, rewards_module):
    torch.manual_seed(0)
    holder: dict = {}

    def rollout_func(prompts, trainer):
        eos = trainer.eos_token_ids[0]
        ids = [b + [eos] if stop else b for b, stop in zip(BODIES, STOPPED)]
        holder["completion_ids"] = ids
        return {"prompt_ids": [PROMPTS[i // M] for i in range(len(ids))], "completion_ids": ids, "logprobs": None}

    args = TRLConfig(output_dir=str(tmp_path_factory.mktemp("trl")), use_cpu=True, bf16=False, max_steps=1,
                     per_device_train_batch_size=8, num_generations=M, max_completion_length=MAX_LEN, beta=0.0,
                     loss_type="bnpo", report_to=[], save_strategy="no", gradient_checkpointing=False, seed=0,
                     reward_weights=[1.0, 0.3], mask_truncated_completions=True, disable_tqdm=True)
    data = Dataset.from_dict({"prompt": ["a", "b"], "answer": ["keep", "skip"]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL's (experimental) public hook
        trainer = GRPOTrainer(model=str(tiny_qwen()), reward_funcs=[rewards_module.parity, rewards_module.tagged],
                              args=args, train_dataset=data, rollout_func=rollout_func)
    inputs = [{"prompt": p, "answer": a} for p, a in (("a", "keep"), ("b", "skip")) for _ in range(M)]
    out = trainer._generate_and_score_completions(inputs)
    return trainer, out, holder["completion_ids"]


def _ours(completion_ids):
    records = [MathRecord(id=f"p{i // M}", prompt="q", answer="keep" if i < M else "skip") for i in range(2 * M)]
    funcs = RewardFunctions(["feature_rewards:parity", "feature_rewards:tagged"], [1.0, 0.3], reward_range="pm1",
                            max_new_tokens=MAX_LEN)
    return funcs(["t"] * len(completion_ids), records, completion_ids)


def test_weighted_reward_functions_match_trl(trl_batch):
    trainer, out, completion_ids = trl_batch
    scores = _ours(completion_ids)
    for k, name in enumerate(("parity", "tagged")):
        theirs = torch.tensor(list(trainer._logs["rewards"][name]), dtype=torch.float64)
        torch.testing.assert_close(scores.per_function[:, k], theirs, equal_nan=True)
    assert torch.isnan(scores.per_function[M:, 1]).all()  # the second prompt's rows: 'tagged' gives no score
    ours = group_advantages(scores.total.view(2, M), std="unbiased", eps=1e-4, eps_inside=False).reshape(-1)
    torch.testing.assert_close(ours, out["advantages"].float(), atol=1e-5, rtol=1e-5)


def test_mask_truncated_matches_trl(trl_batch):
    trainer, out, completion_ids = trl_batch
    completions = [Completion(token_ids=ids, text="", logprobs=[0.0] * len(ids),
                              finish_reason="stop" if stop else "length", prompt_token_ids=PROMPTS[i // M],
                              prompt_index=i // M)
                   for i, (ids, stop) in enumerate(zip(completion_ids, STOPPED))]
    batch = Rollouts.from_completions([completions[:M], completions[M:]], trainer._tokenizer.pad_token_id)
    advantages = out["advantages"].float()
    batch.keep = loss_keep(advantages.view(2, M), truncated(completions), filter_zero_variance=False,
                           mask_truncated=True)
    mask = batch.loss_mask()
    assert torch.equal(mask.long(), out["completion_mask"]) and mask.any(-1).tolist() == STOPPED

    model = trainer.model
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        current = sequence_pass(HiddenStates(model), batch, lm_head_weight(model)).logprobs
    old = (current + 0.3 * torch.randn(current.shape, generator=g)) * batch.response_mask
    trainer.current_gradient_accumulation_steps = 1
    inputs = {"prompt_ids": batch.prompt_ids, "prompt_mask": batch.prompt_mask.long(),
              "completion_ids": batch.response_ids, "completion_mask": out["completion_mask"],
              "advantages": advantages, "old_per_token_logps": old,
              "num_items_in_batch": out["completion_mask"].sum()}
    theirs = trainer._compute_loss(model, inputs)
    now = sequence_pass(HiddenStates(model), batch, lm_head_weight(model))
    ours, _ = grpo_loss(now.logprobs, old, advantages, mask, clip_low=trainer.epsilon_low,
                        clip_high=trainer.epsilon_high, aggregation="token_mean")
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    unmasked, _ = grpo_loss(now.logprobs, old, advantages, batch.response_mask, clip_low=trainer.epsilon_low,
                            clip_high=trainer.epsilon_high)
    assert not torch.allclose(unmasked, theirs)  # the masking matters on this batch
