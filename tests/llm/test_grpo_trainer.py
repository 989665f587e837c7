"""The GRPO trainer on the tiny Qwen3: its old-policy pass, one update, the shaping hook, state round trips."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

from rlcore.algorithms.g2rl.config import G2RLConfig  # noqa: E402
from rlcore.algorithms.grpo.rollouts import Rollouts, sequence_pass  # noqa: E402
from rlcore.algorithms.grpo.trainer import GRPOTrainer, lr_factor  # noqa: E402
from rlcore.distributed import Distributed  # noqa: E402
from rlcore.geometry import sequence_features  # noqa: E402
from rlcore.llm import final_hidden_states, lm_head_weight  # noqa: E402

TINY = dict(model="tiny", dataset="arith", eval_dataset="arith-heldout", arith_kinds=["sum"], prompt_format="plain",
            dataset_limit=16, eval_limit=2, prompts_per_step=2, group_size=4, max_new_tokens=6, mini_batch_size=4,
            micro_batch_size=2, logprob_batch_size=3, lr=1e-3, lr_schedule="constant", warmup_ratio=0.0,
            eval_samples=2, device="cpu")


@pytest.fixture(scope="module")
def trainer():
    torch.manual_seed(0)
    cfg = G2RLConfig(**TINY)
    dist = Distributed("cpu")
    return GRPOTrainer(cfg, dist)


def test_phi_from_the_trainer_pass_equals_sequence_features(trainer):
    groups = trainer.generate([0, 1], offset=0)
    batch = Rollouts.from_completions(groups, trainer.tokenizer.pad_token_id)
    logprobs, entropy, phi, pooled = trainer._no_grad_pass(trainer.dist.unwrap(trainer.policy), batch,
                                                          features=True, pooled=True)
    weight = lm_head_weight(trainer.model)
    for i, c in enumerate(c for g in groups for c in g):
        ids = torch.tensor([c.prompt_token_ids + c.token_ids])
        hidden = final_hidden_states(trainer.model, ids, torch.ones_like(ids))  # unpadded, on its own
        P, C = len(c.prompt_token_ids), len(c.token_ids)
        with torch.no_grad():
            expected = sequence_features(hidden[:, P - 1:P - 1 + C], torch.tensor([c.token_ids]), None, weight)
        torch.testing.assert_close(phi[i:i + 1], expected, atol=2e-5, rtol=1e-4)
        # the same pass gives the sampling log-probs the engine recorded (temperature 1, no truncation)
        torch.testing.assert_close(logprobs[i, :C], torch.tensor(c.logprobs), atol=2e-4, rtol=0)
        torch.testing.assert_close(pooled[i], hidden[0, P:P + C].mean(0), atol=1e-5, rtol=1e-5)
    assert entropy[batch.response_mask].min() > 0


def test_training_pass_matches_the_no_grad_pass(trainer):
    batch = Rollouts.from_completions(trainer.generate([2], offset=0), trainer.tokenizer.pad_token_id)
    old = trainer._no_grad_pass(trainer.dist.unwrap(trainer.policy), batch, features=False, pooled=False)[0]
    out = sequence_pass(trainer.policy, batch, lm_head_weight(trainer.model))
    assert out.logprobs.requires_grad and out.features is None
    torch.testing.assert_close(out.logprobs.detach(), old, atol=1e-5, rtol=0)


def test_one_update_changes_parameters_and_logs_geometry(trainer):
    before = {k: v.clone() for k, v in trainer.trainable_state().items()}
    metrics = trainer.update([3, 4])
    after = trainer.trainable_state()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)  # every trainable tensor moved
    for key in ("geom/mean_cos", "geom/neg_frac", "geom/mean_nu", "geom/rescued_frac", "reward", "pg_loss", "kl",
                "grad_norm", "shaping/shaping_delta"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    # the random tiny model never answers correctly: every group is uniform, and literal G2RL rescues all of them
    assert metrics["frac_reward_zero_std"] == 1.0 and metrics["geom/rescued_frac"] == 1.0
    assert metrics["reward_std"] == 0.0 and "geom/zero_var_frac" not in metrics
    assert trainer.steps == 1


def test_state_dict_round_trip(trainer):
    state = trainer.state_dict()
    assert set(state) == {"model", "optimizer", "scheduler", "steps"}
    saved = {k: v.clone() for k, v in state["model"].items()}
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)
    trainer.load_state_dict({**state, "model": saved})
    for k, v in trainer.trainable_state().items():
        assert torch.equal(v, saved[k])


def test_evaluation_metrics(trainer):
    metrics = trainer.evaluate()
    assert set(metrics) == {"pass@1", "pass@2", "maj@2", "distinct_correct", "response_tokens"}
    assert 0 <= metrics["pass@1"] <= metrics["pass@2"] <= 100


def test_lr_schedule():
    assert lr_factor(0, 100, 0.0, "constant") == 1.0
    assert lr_factor(0, 100, 0.1, "cosine") == 0.1 and lr_factor(9, 100, 0.1, "cosine") == 1.0
    assert abs(lr_factor(55, 100, 0.1, "cosine") - 0.5) < 1e-12 and lr_factor(100, 100, 0.1, "cosine") == 0.0


def test_lora_with_gradient_checkpointing_trains_only_adapters():
    cfg = G2RLConfig(**{**TINY, "lora_rank": 4, "lora_alpha": 8.0, "gradient_checkpointing": True, "beta": 0.1,
                        "eval_dataset": ""})
    trainer = GRPOTrainer(cfg, Distributed("cpu"))
    names = set(trainer.trainable_state())
    assert names and all("lora_" in n for n in names)
    base = {n: p.clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    before = {k: v.clone() for k, v in trainer.trainable_state().items()}
    metrics = trainer.update([0, 1])
    assert torch.isfinite(metrics["kl"]) and metrics["kl"] >= 0  # the reference is the base model, adapters off
    assert any(not torch.equal(before[k], v) for k, v in trainer.trainable_state().items())
    assert all(torch.equal(base[n], p) for n, p in trainer.model.named_parameters() if not p.requires_grad)


def test_evol_shaper_with_an_embedding_model():
    from rlcore.algorithms.g2rl.shaping import EvolShaper, TextEmbedder, semantic_novelty_rewards
    from rlcore.algorithms.grpo.shaping import Groups
    from rlcore.llm import tiny_qwen

    embedder = TextEmbedder(str(tiny_qwen()), torch.device("cpu"), max_tokens=4)
    texts = ["the answer is 4", "4", "so 2+2 = 4", "five"]
    emb = embedder(texts)
    assert emb.shape == (4, 64) and torch.isfinite(emb).all()
    rewards = torch.tensor([[1.0, 1.0, 1.0, -1.0]])
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(1, 4, dtype=torch.bool),
                    texts=[texts])
    shaper = EvolShaper(embedder)
    assert not shaper.needs_pooled_hidden
    shaped, _ = shaper(groups)
    torch.testing.assert_close(shaped, semantic_novelty_rewards(emb[None], groups.correct, groups.answered))
