"""CUDA against CPU: O-DICE updates, vectorised seeds, the GRPO/G2RL loss and its gradients, Phi in bf16.

Marked ``gpu`` and skipped without CUDA (``make gpu-check`` runs them on a GPU machine). ``RLCORE_TEST_DEVICE=cpu``
runs them with the CPU standing in for the GPU, which checks only that the tests themselves work.

Tolerances, float32 unless said otherwise. The two devices sum in different orders, so results differ by float32
rounding (about 1e-7 relative per operation; measured on CPU as float32 against float64: O-DICE value gradients
1.3e-6, model gradients 2.5e-6). Gradients, and the gradients an update applied (Adam's first moment after one step
is 0.1 g), must agree to 1e-4 relative: the norm of the difference over the norm, per tensor. Parameters after one
update must agree to 5e-5, a quarter of one Adam step: Adam's first step moves each parameter by lr * g / (|g| + eps)
with lr = 2e-4, so an entry whose gradient is near eps = 1e-8 moves by a fraction of lr that rounding can change
(float32 against float64 on CPU: up to 9e-6 on a few entries of 1.4 M). bf16 keeps 8 significant bits: Phi in bf16
agrees with float32 to 1e-2 relative (measured: 3e-3 at the real Qwen3 LM-head size, logits of standard deviation
3) and log-probs to 0.1 absolute (measured 0.025).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from rlcore.algorithms.g2rl.shaping import G2RLShaper
from rlcore.algorithms.grpo.losses import group_advantages, grpo_loss
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.algorithms.grpo.shaping import Groups
from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.geometry import novelty_scores, token_stats

DEVICE = os.environ.get("RLCORE_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                       reason="needs a CUDA device (run `make gpu-check` on a GPU machine)"),
]
GRAD_RTOL, PARAM_ATOL = 1e-4, 5e-5
OBS, ACT = 11, 3


@pytest.fixture(autouse=True)
def _ieee_float32():
    """TF32 matmuls would round to 10 bits: the comparisons are of true float32 arithmetic."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(previous)


def hopper_batch(k: int, b: int, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(k, b, OBS, generator=g, dtype=dtype),
            "actions": torch.rand(k, b, ACT, generator=g, dtype=dtype) * 2 - 1,
            "rewards": torch.randn(k, b, generator=g, dtype=dtype),
            "next_observations": torch.randn(k, b, OBS, generator=g, dtype=dtype),
            "terminals": (torch.rand(k, b, generator=g) < 0.05).to(dtype)}


def on(batch: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def applied_gradients(algo: ODICE) -> dict[str, torch.Tensor]:
    """Adam's first moments by parameter name: (1 - beta1) times the gradients of the updates so far."""
    return {f"{prefix}.{name}": opt.state[p]["exp_avg"]
            for opt, module, prefix in ((algo.value_optimizer, algo.value, "value"),
                                        (algo.policy_optimizer, algo.policy, "policy"))
            for name, p in module.named_parameters()}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    return float((got - want).norm() / want.norm().clamp_min(1e-30))


@pytest.mark.parametrize("rule", ["orthogonal", "semi", "true"])
def test_one_odice_update_on_device_equals_cpu(rule):
    """Reference sizes (twin V 256-256 + LayerNorm, policy 1024-1024, batch 256), the same initial weights."""
    cfg = ODICEConfig(grad_rule=rule, seed=0)
    cpu, dev = ODICE(cfg, OBS, ACT), ODICE(cfg, OBS, ACT, device=DEVICE)
    batch = hopper_batch(1, 256, seed=1)
    grads_cpu, _ = cpu.value_gradients(batch)
    grads_dev, _ = dev.value_gradients(on(batch, DEVICE))
    for i, (g_dev, g_cpu) in enumerate(zip(grads_dev, grads_cpu)):
        assert relative_error(g_dev, g_cpu) < GRAD_RTOL, f"value gradient {i}"
    m_cpu, m_dev = cpu.update(batch), dev.update(on(batch, DEVICE))
    moments = applied_gradients(dev)
    for name, moment in applied_gradients(cpu).items():
        assert relative_error(moments[name], moment) < GRAD_RTOL, f"applied gradient of {name}"
    for name, module in cpu.modules().items():
        state = dev.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            torch.testing.assert_close(state[key].cpu(), value, rtol=0, atol=PARAM_ATOL, msg=f"{name}.{key}")
    torch.testing.assert_close(m_dev["v_loss"].cpu(), m_cpu["v_loss"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, updates", [(torch.float64, 5), (torch.float32, 1)])
def test_vectorised_seeds_equal_single_seed_runs_on_device(dtype, updates):
    """K seeds in one batched update against K separate runs, all on the device (batched vs plain kernels):
    float64 to 1e-10 over 5 updates; float32 over one update with the tolerances above."""
    seeds = [0, 3, 11]
    together = ODICE(ODICEConfig(seeds=seeds), OBS, ACT, device=DEVICE, dtype=dtype)
    alone = [ODICE(ODICEConfig(seed=s), OBS, ACT, device=DEVICE, dtype=dtype) for s in seeds]
    for step in range(updates):
        batch = on(hopper_batch(len(seeds), 256, seed=100 + step, dtype=dtype), DEVICE)
        together.update(batch)
        for k, algo in enumerate(alone):
            algo.update({key: value[k] for key, value in batch.items()})
    state, moments = together.state_dict(), applied_gradients(together)
    tol = 1e-10 if dtype == torch.float64 else PARAM_ATOL
    for k, algo in enumerate(alone):
        for name, moment in applied_gradients(algo).items():
            assert relative_error(moments[name][k:k + 1], moment) < GRAD_RTOL, f"seed {seeds[k]} {name}"
        for module in ("value", "value_target", "policy"):
            for name, tensor in algo.state_dict()[module].items():
                torch.testing.assert_close(state[module][name][k:k + 1], tensor, rtol=tol, atol=tol,
                                           msg=f"seed {seeds[k]} {module}.{name}")


def tiny_model() -> torch.nn.Module:
    """A 2-layer random Qwen3 with a 512-token vocabulary (no tokenizer needed)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                         pad_token_id=0, dtype="float32")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Qwen3ForCausalLM(config).eval()


def g2rl_step(model: torch.nn.Module, batch: Rollouts, rewards: torch.Tensor, noise: torch.Tensor) -> dict:
    """What one G2RL step computes: Phi and old log-probs (no grad), novelty, shaped rewards, advantages, then the
    GRPO loss with KL and entropy terms and its gradients."""
    device = next(model.parameters()).device
    batch = Rollouts(*(t.to(device) for t in (batch.prompt_ids, batch.prompt_mask, batch.response_ids,
                                              batch.response_mask)))
    rewards, noise = rewards.to(device), noise.to(device)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        old = sequence_pass(HiddenStates(model), batch, weight, features=True)
    G, m = rewards.shape
    features = old.features.view(G, m, -1)
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones_like(rewards, dtype=torch.bool),
                    texts=[[""] * m] * G, features=features, novelty=novelty_scores(features, rewards))
    shaped, _ = G2RLShaper("literal", 1.0, 3.0)(groups)
    advantages = group_advantages(shaped).reshape(-1)
    model.zero_grad(set_to_none=True)
    new = sequence_pass(HiddenStates(model), batch, weight)
    mask = batch.response_mask
    loss, _ = grpo_loss(new.logprobs, old.logprobs + noise, advantages, mask, ref_logprobs=old.logprobs - noise,
                        entropy=new.entropy, clip_low=0.2, clip_high=0.28, beta=0.04, entropy_coef=0.01)
    loss.backward()
    return {"phi": old.features, "shaped": shaped, "loss": loss.detach(),
            "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None}}


def test_grpo_g2rl_loss_and_gradients_on_device_equal_cpu():
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, 512, (n,), generator=g).tolist() for n in torch.randint(3, 9, (8,), generator=g)]
    responses = [torch.randint(1, 512, (n,), generator=g).tolist() for n in torch.randint(5, 21, (8,), generator=g)]
    batch = Rollouts.from_token_ids(prompts, responses, pad_id=0)
    rewards = torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, -1.0]])
    noise = 0.3 * torch.randn(batch.response_ids.shape, generator=g)  # ratios away from 1: clipping is exercised
    model = tiny_model()
    cpu = g2rl_step(model, batch, rewards, noise)
    dev = g2rl_step(copy.deepcopy(model).to(DEVICE), batch, rewards, noise)
    assert relative_error(dev["phi"], cpu["phi"]) < GRAD_RTOL
    torch.testing.assert_close(dev["shaped"].cpu(), cpu["shaped"], rtol=0, atol=1e-4)
    torch.testing.assert_close(dev["loss"].cpu(), cpu["loss"], rtol=1e-5, atol=1e-6)
    assert cpu["grads"].keys() == dev["grads"].keys() and len(cpu["grads"]) > 10
    for name, grad in cpu["grads"].items():
        assert relative_error(dev["grads"][name], grad) < GRAD_RTOL, name


@pytest.mark.parametrize("head", ["float32", "bfloat16"])
def test_phi_in_bf16_matches_float32(head):
    """Hidden states in bf16 (the trainer's autocast backbone) with the LM head in float32 (fp32 weights) or in
    bf16 (a bf16 model), against float32 throughout. Real Qwen3 head size on a GPU, a smaller one on CPU."""
    V, d = (151_936, 1024) if DEVICE != "cpu" else (4096, 256)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(8, 128, d, generator=g)
    weight = torch.randn(V, d, generator=g) * 3 / d ** 0.5  # logits of standard deviation 3
    tokens = torch.randint(V, (8, 128), generator=g)
    mask = torch.arange(128) < torch.randint(32, 129, (8, 1), generator=g)
    hidden, weight, tokens, mask = (t.to(DEVICE) for t in (hidden, weight, tokens, mask))
    full = token_stats(hidden, tokens, mask, weight)
    half = token_stats(hidden.bfloat16(), tokens, mask, weight.to(getattr(torch, head)))
    assert half.features.dtype == torch.float32
    per_seq = (half.features - full.features).norm(dim=-1) / full.features.norm(dim=-1)
    assert float(per_seq.max()) < 1e-2
    assert float(torch.nn.functional.cosine_similarity(half.features, full.features, dim=-1).min()) > 0.9999
    assert float((half.logprobs - full.logprobs)[mask].abs().max()) < 0.1
