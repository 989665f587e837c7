"""Against the installed TRL: our GRPO loss equals GRPOTrainer's on the same batch (token and sequence-level ratios,
with and without the rollout mismatch correction), TRL's advantages equal our group standardisation, and the G2RL
adapter (a GRPOTrainer subclass through TRL's reward-function interface) trains 2 steps on the tiny Qwen3."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig as TRLConfig  # noqa: E402

from rlcore.algorithms.g2rl.trl_adapter import (  # noqa: E402
    TRL_VERSIONS,
    G2RLGRPOTrainer,
    check_trl_version,
    shaping_factors,
)
from rlcore.algorithms.grpo.losses import group_advantages, grpo_loss, rollout_weights  # noqa: E402
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass  # noqa: E402
from rlcore.errors import UserError  # noqa: E402
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


def _loss_and_grads(model, loss):
    params = [p for p in model.parameters() if p.requires_grad]
    return loss.detach(), torch.autograd.grad(loss, params, allow_unused=True)


def _assert_same(ours, theirs):
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-4)
    assert any(g is not None and g.abs().sum() > 0 for g in ours[1])
    for a, b in zip(ours[1], theirs[1]):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-3)


@pytest.mark.parametrize("loss_type, aggregation", [("grpo", "seq_mean"), ("bnpo", "token_mean"),
                                                    ("dr_grpo", "constant")])
def test_sequence_ratio_equals_trl_gspo(trained, monkeypatch, loss_type, aggregation):
    """is_level=sequence against TRL importance_sampling_level="sequence": loss and gradients, same batch."""
    trainer, _ = trained
    model = trainer.model
    g = torch.Generator().manual_seed(2)
    batch = Rollouts.from_token_ids([[9707, 1879, 0, 11], [3838, 374], [16, 10, 17, 28, 30], [5, 6]],
                                    [[20, 21, 22, 23, 24, 25], [30, 31, 151645], [40, 41, 42, 43], [7]],
                                    pad_id=151643)
    with torch.no_grad():
        current = sequence_pass(HiddenStates(model), batch, lm_head_weight(model)).logprobs
    mask = batch.response_mask
    shift = torch.tensor([[0.25], [-0.3], [0.05], [0.4]])  # whole sequences off the clip range, and one inside
    old = (current + shift + 0.1 * torch.randn(current.shape, generator=g)) * mask
    ref = (current + 0.3 * torch.randn(current.shape, generator=g)) * mask
    adv = torch.tensor([1.3, -0.7, 0.4, -1.1])
    for name, value in dict(loss_type=loss_type, beta=0.04, epsilon_low=0.2, epsilon_high=0.28, entropy_coef=0.0,
                            _entropy_bonus_enabled=False, importance_sampling_level="sequence", use_vllm=False,
                            current_gradient_accumulation_steps=1).items():
        monkeypatch.setattr(trainer, name, value, raising=False)
    inputs = {"prompt_ids": batch.prompt_ids, "prompt_mask": batch.prompt_mask.long(),
              "completion_ids": batch.response_ids, "completion_mask": mask.long(), "advantages": adv,
              "old_per_token_logps": old, "ref_per_token_logps": ref, "num_items_in_batch": mask.sum()}
    theirs = _loss_and_grads(model, trainer._compute_loss(model, inputs))
    out = sequence_pass(HiddenStates(model), batch, lm_head_weight(model))
    loss, metrics = grpo_loss(out.logprobs, old, adv, mask, ref_logprobs=ref, beta=0.04, clip_low=0.2, clip_high=0.28,
                              aggregation=aggregation, horizon=trainer.max_completion_length, is_level="sequence")
    _assert_same(_loss_and_grads(model, loss), theirs)
    assert 0 < metrics["clip_frac_low"] + metrics["clip_frac_high"] < 1  # clipping bites on some sequences only
    token_level, _ = grpo_loss(out.logprobs, old, adv, mask, ref_logprobs=ref, beta=0.04, clip_low=0.2,
                               clip_high=0.28, aggregation=aggregation, horizon=trainer.max_completion_length)
    assert not torch.allclose(token_level, theirs[0], atol=1e-4)  # the level matters on this batch


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", ["truncate", "mask"])
def test_rollout_correction_equals_trl_vllm_importance_sampling(trained, monkeypatch, level, mode):
    """rollout_is against TRL's vllm_importance_sampling_correction: TRL's own scoring step computes the weights
    from the engine log-probs we hand it; ours equal them, and so do the losses and gradients."""
    trainer, _ = trained
    model = trainer.model
    g = torch.Generator().manual_seed(3)
    prompts = ["Add 2 and 3."] * M + ["Add 4 and 5."] * M
    prompt_ids = [list(ids) for ids in trainer.processing_class(text=prompts)["input_ids"]]
    completion_ids = [[int(t) for t in torch.randint(100, 5000, (n,), generator=g)] for n in (5, 3, 6, 2, 4, 6, 1, 3)]
    batch = Rollouts.from_token_ids(prompt_ids, completion_ids, pad_id=trainer.processing_class.pad_token_id)
    mask = batch.response_mask
    with torch.no_grad():
        current = sequence_pass(HiddenStates(model), batch, lm_head_weight(model)).logprobs
    sampling = (current + 0.4 * torch.randn(current.shape, generator=g)) * mask  # the engine's log-probs
    rows = [sampling[i, :len(c)].tolist() for i, c in enumerate(completion_ids)]
    texts = trainer.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
    generated = (prompt_ids, completion_ids, None, texts, rows, {}, None, None)
    for name, value in dict(_generate=lambda _: generated, use_vllm=True, vllm_importance_sampling_correction=True,
                            vllm_importance_sampling_mode=f"{level}_{mode}", vllm_importance_sampling_clip_max=1.5,
                            vllm_importance_sampling_clip_min=None, loss_type="bnpo", beta=0.04, epsilon_low=0.2,
                            epsilon_high=0.28, entropy_coef=0.0, _entropy_bonus_enabled=False,
                            importance_sampling_level="token", current_gradient_accumulation_steps=1).items():
        monkeypatch.setattr(trainer, name, value, raising=False)
    scored = trainer._generate_and_score_completions([{"prompt": p} for p in prompts])
    old = scored["old_per_token_logps"]
    torch.testing.assert_close(old * mask, current * mask, atol=1e-5, rtol=0)  # TRL's old pass = ours
    weights = rollout_weights(old, sampling, mask, mode=mode, cap=1.5, level=level)
    torch.testing.assert_close(weights * mask, scored["importance_sampling_ratio"].expand_as(old) * mask)
    assert (weights * mask != mask.float()).any()  # the correction is not the identity here
    old_policy = (old + 0.3 * torch.randn(old.shape, generator=g)) * mask  # PPO ratios away from 1: clipping bites
    scored["old_per_token_logps"] = old_policy
    theirs = _loss_and_grads(model, trainer._compute_loss(model, scored))
    out = sequence_pass(HiddenStates(model), batch, lm_head_weight(model))
    loss, _ = grpo_loss(out.logprobs, old_policy, scored["advantages"], mask,
                        ref_logprobs=scored["ref_per_token_logps"], beta=0.04, clip_low=0.2, clip_high=0.28,
                        rollout_weights=weights)
    _assert_same(_loss_and_grads(model, loss), theirs)


def test_trl_versions_are_pinned_and_others_fail_in_one_line(monkeypatch):
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'"trl{TRL_VERSIONS}"' in pyproject  # the llm extra pins the adapter's range
    check_trl_version(trl.__version__)  # the installed one is supported
    for version in ("1.16.0", "1.16.9", "1.16.1.dev0"):
        check_trl_version(version)
    for version in ("1.15.2", "1.17.0", "0.20.0", "2.0.0"):
        monkeypatch.setattr(trl, "__version__", version)
        with pytest.raises(UserError) as e:
            G2RLGRPOTrainer(model=str(tiny_qwen()), reward_funcs=coin_reward)
        assert version in str(e.value) and TRL_VERSIONS in str(e.value) and "\n" not in str(e.value)


def test_unsupported_reward_sources_fail_before_loading_anything():
    async def judge(completions, **_):
        return [0.0] * len(completions)

    for funcs, words in (("some/reward-model", "reward model"), ([coin_reward, judge], "async"), (None, "needs")):
        with pytest.raises(UserError, match=words):
            G2RLGRPOTrainer(model="not/loaded", reward_funcs=funcs)


@pytest.mark.parametrize("chat", [False, True])
def test_adapter_tokenises_prompts_as_trl_does(trained, chat):
    trainer, _ = trained
    prompts = ["Add 1 and 2.", "What is 7 times 8?"]
    if chat:
        prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": p}] for p in prompts]
    ours = trainer.g2rl_rewards.prompt_ids(prompts)
    theirs = trainer._tokenize_prompts(prompts)[0]  # TRL's private path, pinned here for the supported versions
    assert ours == [list(ids) for ids in theirs] and all(len(ids) > 3 for ids in ours)
