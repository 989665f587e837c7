"""The trainer's GSPO ratio, rollout mismatch correction and Phi-proxy check on the tiny Qwen3: the exact gradient
Gram against per-sample gradients taken one response at a time, the logged metrics, and the config checks."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rlcore.algorithms.grpo import optimise as trainer_module  # noqa: E402
from rlcore.algorithms.grpo.config import GRPOConfig  # noqa: E402
from rlcore.algorithms.grpo.phi_check import (  # noqa: E402
    distinct_group_rows,
    last_layer_linears,
    phi_and_gram,
    phi_check,
)
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass  # noqa: E402
from rlcore.algorithms.grpo.trainer import GRPOTrainer  # noqa: E402
from rlcore.config_docs import describe  # noqa: E402
from rlcore.distributed import Distributed  # noqa: E402
from rlcore.errors import ConfigError  # noqa: E402
from rlcore.llm import lm_head_weight  # noqa: E402

TINY = dict(model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain",
            dataset_limit=16, prompts_per_step=2, group_size=4, max_new_tokens=6, mini_batch_size=8,
            micro_batch_size=4, logprob_batch_size=8, lr=1e-3, lr_schedule="constant", warmup_ratio=0.0,
            weight_decay=0.0, beta=0.0, device="cpu")


@pytest.fixture(scope="module")
def trainer():
    torch.manual_seed(0)
    return GRPOTrainer(GRPOConfig(**TINY), Distributed("cpu"))


@pytest.fixture(scope="module")
def batch(trainer):
    return Rollouts.from_completions(trainer.generate([0, 1, 2], offset=0), trainer.tokenizer.pad_token_id)


def brute_force(model, batch, rows, layers, temperature):
    """Each response on its own (unpadded): its Phi, and its gradient of the mean token log-likelihood with respect
    to the layers' weights, flattened; returns Phi (k, d) and the gradients (k, P)."""
    weights = [p for layer in layers for p in layer.parameters(recurse=False)]
    phi, grads = [], []
    for row in rows:
        one = batch.select(torch.tensor([row]))
        out = sequence_pass(HiddenStates(model), one, lm_head_weight(model), temperature=temperature, features=True)
        loss = out.logprobs[one.response_mask].mean()
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, weights)]).double())
        phi.append(out.features.detach()[0].double())
    return torch.stack(phi), torch.stack(grads)


@pytest.mark.parametrize("k, temperature", [(1, 1.0), (2, 0.7)])
def test_gram_equals_per_sample_gradients_one_at_a_time(trainer, batch, k, temperature):
    model = trainer.model
    layers = last_layer_linears(model, k)
    rows = distinct_group_rows(batch, 4)
    assert len(rows) >= 3
    phi, gram = phi_and_gram(model, batch, rows, layers, temperature=temperature)
    ref_phi, grads = brute_force(model, batch, rows, layers, temperature)
    torch.testing.assert_close(gram.double(), grads @ grads.T, rtol=1e-4, atol=1e-6 * (grads @ grads.T).abs().max())
    torch.testing.assert_close(phi.double(), ref_phi, rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # the check leaves no gradient behind


def test_phi_check_correlations_against_numpy(trainer, batch):
    model = trainer.model
    out = phi_check(model, batch, 4, layers=1)
    rows = distinct_group_rows(batch, 4)
    phi, grads = brute_force(model, batch, rows, last_layer_linears(model, 1), 1.0)
    iu = np.triu_indices(len(rows), 1)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    phi_cos = (unit(phi.numpy()) @ unit(phi.numpy()).T)[iu]
    grad_cos = (unit(grads.numpy()) @ unit(grads.numpy()).T)[iu]
    ranks = lambda v: np.array([(v < x).sum() + ((v == x).sum() + 1) / 2 for x in v])  # noqa: E731
    assert abs(out["phi_corr_pearson"].item() - np.corrcoef(phi_cos, grad_cos)[0, 1]) < 1e-4
    assert abs(out["phi_corr_spearman"].item() - np.corrcoef(ranks(phi_cos), ranks(grad_cos))[0, 1]) < 1e-4
    assert out["phi_check_pairs"].item() == len(phi_cos) and out["phi_check_s"] > 0


def test_layer_choice_and_distinct_rows(trainer):
    names = {m: n for n, m in trainer.model.named_modules()}
    last = [names[m] for m in last_layer_linears(trainer.model, 1)]
    assert len(last) == 7 and all(n.startswith("model.layers.1.") for n in last)  # q k v o gate up down
    assert len(last_layer_linears(trainer.model, 5)) == 14  # more than there are: all of them
    ids = [[5, 6], [5, 6], [7], [5, 6, 8], [9], [9], [9], [9]]
    batch = Rollouts.from_token_ids([[1, 2]] * 8, ids, pad_id=0)
    assert distinct_group_rows(batch, 4) == [0, 2, 3]
    assert distinct_group_rows(Rollouts.from_token_ids([[1]] * 4, [[3]] * 4, pad_id=0), 2) == [0]
    assert phi_check(trainer.model, Rollouts.from_token_ids([[1]] * 4, [[3], [3], [4], [4]], pad_id=0), 4) == {}


def test_update_logs_rollout_kl_and_the_phi_check_on_schedule(trainer, monkeypatch):
    monkeypatch.setattr(trainer.cfg, "phi_check_every", 2)
    monkeypatch.setattr(trainer, "steps", 0)
    first, second = trainer.update([3, 4]), trainer.update([5, 6])
    for metrics in (first, second):  # the HF engine samples from the trained model itself, in fp32
        assert abs(metrics["rollout_kl"]) < 1e-4 and 0 <= metrics["rollout_abs_gap"] < 1e-4
        assert "rollout_is_weight" not in metrics
    assert not any(k.startswith("geom/phi") for k in first)
    assert -1 <= second["geom/phi_corr_pearson"] <= 1 and -1 <= second["geom/phi_corr_spearman"] <= 1
    assert second["geom/phi_check_s"] > 0


class RandomRewards:
    """A shaper that gives every response a random reward (the random tiny model is never right: its advantages
    would all be 0, and so would every policy gradient)."""

    needs_features = needs_pooled_hidden = False

    def __call__(self, groups):
        return torch.randn(groups.rewards.shape, generator=torch.Generator().manual_seed(0)), {}


def test_rollout_mask_below_every_weight_removes_the_policy_gradient(trainer, monkeypatch):
    monkeypatch.setattr(trainer, "shaper", RandomRewards())
    monkeypatch.setattr(trainer.cfg, "rollout_is", "mask")
    monkeypatch.setattr(trainer.cfg, "rollout_is_cap", 1e-6)  # every weight (about 1) is above the cap
    before = {k: v.clone() for k, v in trainer.trainable_state().items()}
    metrics = trainer.update([7, 8])
    assert metrics["rollout_is_capped_frac"] == 1.0 and metrics["rollout_is_weight"] == 0.0
    assert metrics["grad_norm"] == 0 and all(torch.equal(v, before[k]) for k, v in trainer.trainable_state().items())
    monkeypatch.setattr(trainer.cfg, "rollout_is", "truncate")
    metrics = trainer.update([9, 10])  # truncate at the same cap keeps a (tiny) weight: the parameters move
    assert metrics["rollout_is_capped_frac"] == 1.0 and abs(metrics["rollout_is_weight"] - 1e-6) < 1e-9
    assert any(not torch.equal(v, before[k]) for k, v in trainer.trainable_state().items())


def test_the_ratio_level_reaches_the_loss(trainer, monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["is_level"])
        return grpo_loss(*args, **kwargs)

    grpo_loss = trainer_module.grpo_loss
    monkeypatch.setattr(trainer_module, "grpo_loss", spy)
    monkeypatch.setattr(trainer.cfg, "is_level", "sequence")
    trainer.update([11, 12])
    assert seen and set(seen) == {"sequence"}


@pytest.mark.parametrize("key, value, words", [
    ("is_level", "sentence", "is_level must be one of token, sequence"),
    ("rollout_is", "clip", "rollout_is must be one of none, truncate, mask"),
    ("rollout_is_level", "batch", "rollout_is_level"),
    ("rollout_is_cap", 0.0, "rollout_is_cap"),
    ("phi_check_every", -1, "phi_check_every"),
    ("phi_check_layers", 0, "phi_check_layers"),
])
def test_bad_values_are_one_line_errors(key, value, words):
    with pytest.raises(ConfigError, match=words) as e:
        GRPOConfig(**{key: value})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="group_size >= 3"):
        GRPOConfig(phi_check_every=5, group_size=2, mini_batch_size=2)


def test_list_config_names_each_source():
    docs = {key: doc for key, _, _, doc in describe(GRPOConfig)}
    for key, source in (("is_level", "GSPO, Zheng et al. 2025"), ("rollout_is", "TRL vllm_importance_sampling"),
                        ("rollout_is_level", "TRL vllm_importance_sampling_mode"), ("rollout_is_cap", "Yao et al."),
                        ("phi_check_every", "App. A.1"), ("phi_check_layers", "library")):
        assert source in " ".join(docs[key].split()), key


def test_gram_with_lora_adapters_and_gradient_checkpointing(trainer, batch):
    """Under LoRA the trainable Linear layers are the adapters; recomputed activations change nothing."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    model = get_peft_model(copy.deepcopy(trainer.model), LoraConfig(r=4, target_modules="all-linear",
                                                                    init_lora_weights=False))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    layers = last_layer_linears(model, 1)
    names = {m: n for n, m in model.named_modules()}
    assert len(layers) == 14 and all(".layers.1." in names[m] and "lora_" in names[m] for m in layers)
    rows = distinct_group_rows(batch, 4)
    phi, gram = phi_and_gram(model, batch, rows, layers)
    _, grads = brute_force(model, batch, rows, layers, 1.0)
    torch.testing.assert_close(gram.double(), grads @ grads.T, rtol=1e-4, atol=1e-6 * (grads @ grads.T).abs().max())
