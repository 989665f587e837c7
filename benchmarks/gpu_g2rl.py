"""The G2RL part of the GPU check (``benchmarks/gpu_check.py``): GRPO and G2RL steps at Qwen3-0.6B size.

A random-weight model with Qwen3-0.6B's configuration (28 layers, hidden 1024, 16 query / 8 key-value heads of
128, MLP 3072, vocabulary 151,936, tied embeddings; 596 M parameters) and rlcore's Qwen tokenizer, trained by
rlcore's GRPO trainer with the HF engine (fp32 weights, bf16 autocast: ``mixed_precision=auto``) on one batch of
8 prompts (the arithmetic task, chat template) x 8 responses x 256 new tokens. Variants: full fine-tuning,
with gradient checkpointing, and LoRA (rank 32).

The HF trainer generates one group per ``generate`` call, so a step's rollout time is the number of prompts times
the measured time of one group's call; the random model practically never samples a stop token (2 of 151,936
ids), so responses have 256 tokens (``tokens_per_group`` shows it).
The rest of a step (rewards, the old-policy and reference passes with Phi, shaping, the PPO update) is measured
on those very rollouts for GRPO (no Phi, no shaping) and G2RL (literal scaler) in turn, after one warm-up step.
``rec`` as in ``gpu_odice``.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from typing import Any

import torch

QWEN3_06B = dict(layers=28, hidden=1024, heads=16, kv_heads=8, head_dim=128, intermediate=3072, max_positions=40960)
VARIANTS = {"full": {}, "gradient_checkpointing": {"gradient_checkpointing": True},
            "lora": {"lora_rank": 32, "lora_alpha": 64.0}}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _generate_one_group(generate: Any, device: str) -> tuple[list[Any], float]:
    """The responses to the first prompt, from the trainer's ``generate``, and the seconds it took."""
    _sync(device)
    t0 = time.perf_counter()
    group = generate([0], 0)[0]
    _sync(device)
    return group, time.perf_counter() - t0


def _variant(cfg: Any, rec, device: str, group: list[Any] | None, repeats: int, later: int
             ) -> tuple[dict[str, Any], list]:
    """Times of one variant; returns its results and the group of rollouts it replayed: ``group``, or one it
    generated when ``group`` is None or LoRA is on (the adapters add matmuls to every decoding step). Repeats after
    the first leave time for the ``later`` variants (each about a load and three steps)."""
    from rlcore.algorithms.grpo.trainer import GRPOTrainer
    from rlcore.distributed import Distributed

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer = GRPOTrainer(cfg, Distributed(cfg.device, cfg.mixed_precision))
    shaper = trainer.shaper  # the one cfg.shaper names (g2rl); the grpo variant swaps it out
    out: dict[str, Any] = {"load_s": round(time.perf_counter() - t0, 2),
                           "trainable_parameters": sum(p.numel() for p in trainer.model.parameters()
                                                       if p.requires_grad),
                           "mixed_precision": str(trainer.dist.accelerator.mixed_precision)}
    generate = trainer.generate
    try:
        if group is None or cfg.lora_rank:
            group, seconds = _generate_one_group(generate, device)
            out.update(generate_s_per_group=round(seconds, 3), tokens_per_group=sum(len(c.token_ids) for c in group))
        prompts = list(range(cfg.prompts_per_step))
        groups = [[dataclasses.replace(c, prompt_token_ids=list(trainer.train_problems.prompt_ids[j])) for c in group]
                  for j in prompts]
        trainer.generate = lambda indices, offset: groups  # replay the rollouts: the rest of the step is timed
        modes = {"grpo": (None, dataclasses.replace(cfg, geometry_diagnostics=False)), "g2rl": (shaper, cfg)}
        t0 = time.perf_counter()
        trainer.update(prompts)  # warm-up, as G2RL
        out["first_step_s"] = round(time.perf_counter() - t0, 2)
        times: dict[str, list[float]] = {"grpo": [], "g2rl": []}
        phases: dict[str, dict[str, float]] = {}
        reserve = later * (out["load_s"] + 3 * out["first_step_s"])
        for repeat in range(repeats):
            for mode, (step_shaper, step_cfg) in modes.items():
                if rec.left() < 1.5 * max(times["g2rl"] or [out["first_step_s"]]) + 3 + (reserve if repeat else 0):
                    break
                trainer.shaper, trainer.cfg = step_shaper, step_cfg
                t0 = time.perf_counter()
                metrics = trainer.update(prompts)
                times[mode].append(time.perf_counter() - t0)
                phases[mode] = {k.split("/")[1]: round(float(v), 3) for k, v in metrics.items()
                                if k.startswith("time/") and k != "time/generate_s"}
        for mode, values in times.items():
            if values:
                out[f"{mode}_after_rollout_s"] = round(statistics.median(values), 3)
                out[f"{mode}_phases_s"] = phases[mode]
        out["timed_steps"] = {mode: len(v) for mode, v in times.items()}
        if device == "cuda":
            out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    finally:
        trainer.close()
        del trainer
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return out, group


def run(rec, device: str, smoke: bool) -> None:
    """Every variant in turn, most important first, until the budget ends; see the module docstring."""
    from rlcore.algorithms.g2rl.config import G2RLConfig
    from rlcore.llm import tiny_qwen

    t0 = time.perf_counter()
    shape = {} if smoke else QWEN3_06B
    model_dir = tiny_qwen(**shape)
    sizes = dict(prompts_per_step=2, group_size=2, max_new_tokens=8, mini_batch_size=4, micro_batch_size=2,
                 logprob_batch_size=4) if smoke else dict(prompts_per_step=8, group_size=8, max_new_tokens=256,
                                                          mini_batch_size=16, micro_batch_size=8, logprob_batch_size=32)
    rec.put("model", {"shape": shape or "tiny_qwen() defaults", "directory": str(model_dir),
                      "build_s": round(time.perf_counter() - t0, 1)})
    base = G2RLConfig(model=str(model_dir), dataset="arith", eval_dataset="", arith_kinds=["sum"], dataset_limit=64,
                      prompt_format="chat", lr_schedule="constant", warmup_ratio=0.0, device=device,
                      scaler="literal", export_model=False, **sizes)
    rec.put("settings", {**sizes, "beta": base.beta, "scaler": base.scaler, "mixed_precision": base.mixed_precision,
                         "engine": base.engine, "variants": VARIANTS,
                         "step_s": "prompts x generate_s_per_group (the full variant's unless a variant has its own) "
                                   "+ after_rollout_s"})
    results: dict[str, Any] = {}
    group = None
    for i, (name, extra) in enumerate(VARIANTS.items()):
        full = results.get("full", {})
        need = full.get("load_s", 0) + 2.5 * full.get("first_step_s", 0) + 5
        if extra.get("lora_rank"):
            need += full.get("generate_s_per_group", 0)
        if "first_step_s" in full and rec.left() < need:
            results[name] = {"skipped": f"out of budget ({rec.left():.0f} s left)"}
        else:
            try:
                results[name], group = _variant(dataclasses.replace(base, **extra), rec, device, group,
                                                repeats=1 if smoke else 3, later=len(VARIANTS) - 1 - i)
            except Exception as e:  # e.g. out of memory: the other variants still run
                results[name] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
        _derive(results, base.prompts_per_step)
        rec.put("variants", results)


def _derive(results: dict[str, Any], prompts: int) -> None:
    """Whole-step seconds and the G2RL / GRPO ratios, where the pieces were measured."""
    default = results.get("full", {}).get("generate_s_per_group")
    for r in results.values():
        per_group = r.get("generate_s_per_group", default)
        if per_group is None or "grpo_after_rollout_s" not in r or "g2rl_after_rollout_s" not in r:
            continue
        rollout = prompts * per_group
        r["rollout_s"] = round(rollout, 2)
        r["grpo_step_s"] = round(rollout + r["grpo_after_rollout_s"], 2)
        r["g2rl_step_s"] = round(rollout + r["g2rl_after_rollout_s"], 2)
        r["g2rl_over_grpo"] = round(r["g2rl_step_s"] / r["grpo_step_s"], 4)
        r["g2rl_over_grpo_after_rollout"] = round(r["g2rl_after_rollout_s"] / r["grpo_after_rollout_s"], 4)
