"""Against the installed TRL: our GRPO loss equals GRPOTrainer's on the same batch, TRL's advantages equal our
group standardisation, and the G2RL adapter (a GRPOTrainer subclass) trains 2 steps on the tiny Qwen3."""

from __future__ import annotations

import zlib

import pytest

pytest.importorskip("trl", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig as TRLConfig  # noqa: E402

from rlcore.algorithms.g2rl.trl_adapter import G2RLGRPOTrainer, shaping_factors  # noqa: E402
from rlcore.algorithms.grpo.losses import group_advantages, grpo_loss  # noqa: E402
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass  # noqa: E402
from rlcore.geometry import scale_rewards  # noqa: E402
from rlcore.llm import lm_head_weight, tiny_qwen  # noqa: E402

M = 4  # generations per prompt


def coin_reward(completions, **_):
    """+1 / -1 from a checksum of the text: mixed, deterministic rewards for a random model."""
    return [1.0 if zlib.crc32(c.encode()) % 2 else -1.0 for c in completions]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    args = TRLConfig(output_dir=str(tmp_path_factory.mktemp("trl")), use_cpu=True, bf16=False, max_steps=2,
                     per_device_train_batch_size=8, gradient_accumulation_steps=1, num_generations=M,
                     max_completion_length=6, learning_rate=1e-3, beta=0.04, loss_type="bnpo", logging_steps=1,
                     report_to=[], save_strategy="no", gradient_checkpointing=False, seed=0, temperature=1.0,
                     disable_tqdm=True, use_bias_correction_kl=False)  # TRL 1.16 default: KL times the ratio
    data = Dataset.from_dict({"prompt": [f"Add {i} and {i + 1}." for i in range(8)]})
    trainer = G2RLGRPOTrainer(model=str(tiny_qwen()), reward_funcs=coin_reward, args=args, train_dataset=data,
                              scaler="literal")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return trainer, before


def test_adapter_trains_and_shapes_rewards(trained):
    trainer, before = trained
    assert trainer.state.global_step == 2
    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    last = trainer.g2rl_last
    expected = scale_rewards(last["rewards"], last["novelty"], 1.0, mode="literal", clip=3.0)
    torch.testing.assert_close(last["shaped"], expected)
    assert not torch.equal(last["shaped"], last["rewards"])
    # TRL logged the shaped rewards and standardised them its way: unbiased std + 1e-4 outside the root
    logged = torch.tensor(list(trainer._logs["rewards"]["coin_reward"])).view(-1, M)
    torch.testing.assert_close(logged, last["shaped"].float())
    advantages = torch.tensor(list(trainer._logs["advantages"])).view(-1, M)
    torch.testing.assert_close(advantages, group_advantages(logged, std="unbiased", eps=1e-4, eps_inside=False),
                               atol=1e-5, rtol=1e-5)
    assert any("g2rl/mean_nu" in entry for entry in trainer.state.log_history)


def test_shaping_factors():
    torch.testing.assert_close(shaping_factors(torch.tensor([2.0, -1.0, 0.0]), torch.tensor([3.0, -0.5, 0.0])),
                               torch.tensor([1.5, 0.5, 1.0]))


@pytest.mark.parametrize("loss_type, aggregation", [("bnpo", "token_mean"), ("dapo", "token_mean"),
                                                    ("grpo", "seq_mean"), ("dr_grpo", "constant")])
@pytest.mark.parametrize("entropy_coef", [0.0, 0.01])
def test_our_loss_equals_trl_grpo_loss(trained, loss_type, aggregation, entropy_coef):
    if entropy_coef and aggregation != "token_mean":
        pytest.skip("TRL's entropy bonus is a token mean whatever the loss type; ours follows the aggregation")
    trainer, _ = trained
    model = trainer.model
    g = torch.Generator().manual_seed(1)
    prompts = [[9707, 1879, 0, 11], [3838, 374], [16, 10, 17, 28, 30]]
    responses = [[20, 21, 22, 23, 24, 25], [30, 31, 151645], [40, 41, 42, 43]]
    batch = Rollouts.from_token_ids(prompts, responses, pad_id=151643)
    with torch.no_grad():
        current = sequence_pass(HiddenStates(model), batch, lm_head_weight(model)).logprobs
    mask = batch.response_mask
    old = (current + 0.3 * torch.randn(current.shape, generator=g)) * mask  # ratios away from 1: clipping bites
    ref = (current + 0.3 * torch.randn(current.shape, generator=g)) * mask
    adv = torch.tensor([1.3, -0.7, 0.4])
    trainer.loss_type, trainer.beta, trainer.epsilon_low, trainer.epsilon_high = loss_type, 0.04, 0.2, 0.28
    trainer.entropy_coef, trainer._entropy_bonus_enabled = entropy_coef, entropy_coef > 0
    trainer.current_gradient_accumulation_steps = 1
    inputs = {"prompt_ids": batch.prompt_ids, "prompt_mask": batch.prompt_mask.long(),
              "completion_ids": batch.response_ids, "completion_mask": mask.long(), "advantages": adv,
              "old_per_token_logps": old, "ref_per_token_logps": ref, "num_items_in_batch": mask.sum()}
    theirs = trainer._compute_loss(model, inputs)
    out = sequence_pass(HiddenStates(model), batch, lm_head_weight(model))
    ours, _ = grpo_loss(out.logprobs, old, adv, mask, ref_logprobs=ref, entropy=out.entropy, beta=0.04,
                        entropy_coef=entropy_coef, clip_low=0.2, clip_high=0.28, aggregation=aggregation,
                        horizon=trainer.max_completion_length)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    grads = torch.autograd.grad(ours, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    theirs_grads = torch.autograd.grad(trainer._compute_loss(model, inputs),
                                       [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    for a, b in zip(grads, theirs_grads):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-3)
