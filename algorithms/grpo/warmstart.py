"""A tiny Qwen3 warm-started on the arithmetic toy task by a short supervised run, built once and cached.

A random tiny model never answers in the expected format, so RL would see no reward at all. The warm start
teaches the format and some arithmetic from correct answers (``\\boxed{a+b}`` with ``a`` drawn uniformly, and the
task's own example expression), leaving room for RL: it is far from perfect, and it spreads its answers over many
correct ones. It trains on problems drawn with another seed than the ``arith`` training and held-out sets, and is
cached (never committed) under the rlcore cache directory, keyed by its settings.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import torch

from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts
from rlcore.envs.reasoning import build_prompt, make_arith_dataset
from rlcore.envs.reasoning.datasets import MathRecord
from rlcore.llm import lm_head_weight, load_policy, tiny_qwen
from rlcore.llm.cache import cache_root, cached_directory

WARMSTART_VERSION = 1
SFT_SEED = 12345
"""Seed of the problems the warm start trains on (the toy task's train and held-out sets use 0 and 1)."""


def sft_answer(record: MathRecord, rng: random.Random, mode_share: float = 0.0) -> str:
    """A correct answer for an arithmetic record. Sums: ``1+(T-1)`` with probability ``mode_share``, else ``a+b``
    with ``a`` uniform; expressions: the task's example."""
    if record.metadata["kind"] == "sum":
        target = record.metadata["target"]
        a = 1 if rng.random() < mode_share else rng.randint(1, target - 1)
        return f"\\boxed{{{a}+{target - a}}}"
    return f"\\boxed{{{record.metadata['example']}}}"


def arith_warmstart(*, steps: int = 100, batch_size: int = 32, lr: float = 3e-3, layers: int = 2,
                    kinds: tuple[str, ...] = ("sum", "expr"), max_number: int = 9, mode_share: float = 0.75,
                    seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Directory of the warm-started tiny Qwen3 (``save_pretrained`` layout with tokenizer), built on first use.

    Supervised fine-tuning of :func:`rlcore.llm.tiny_qwen` for ``steps`` AdamW steps of ``batch_size`` problems
    (plain prompts, see ``GRPOConfig.prompt_format``); a minute or two on one CPU core, once per machine.

    >>> model, tokenizer = load_policy(arith_warmstart())              # doctest: +SKIP
    """
    spec = {"version": WARMSTART_VERSION, "steps": steps, "batch_size": batch_size, "lr": lr, "layers": layers,
            "kinds": list(kinds), "max_number": max_number, "mode_share": mode_share, "seed": seed}
    base = tiny_qwen(layers=layers, cache_dir=cache_dir)
    spec["base"] = base.name  # the tiny model's own cache key: a changed base rebuilds the warm start
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]

    def build(directory: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, tokenizer = load_policy(base, dtype="float32", device="cpu")
            model.train()
            rng = random.Random(seed)
            problems = make_arith_dataset(steps * batch_size, seed=SFT_SEED, kinds=kinds, max_number=max_number)
            prompts = [tokenizer(build_prompt(r.prompt), add_special_tokens=False)["input_ids"] for r in problems]
            eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
            hidden = HiddenStates(model)
            for step in range(steps):
                rows = range(step * batch_size, (step + 1) * batch_size)
                texts = [sft_answer(problems[i], rng, mode_share) for i in rows]
                answers = [[*tokenizer(t, add_special_tokens=False)["input_ids"], eos] for t in texts]
                batch = Rollouts.from_token_ids([prompts[i] for i in rows], answers, tokenizer.pad_token_id)
                P, C = batch.prompt_ids.shape[1], batch.response_ids.shape[1]
                states = hidden(torch.cat([batch.prompt_ids, batch.response_ids], 1),
                                torch.cat([batch.prompt_mask, batch.response_mask], 1).long())
                logits = states[:, P - 1:P - 1 + C][batch.response_mask] @ lm_head_weight(model).T
                loss = torch.nn.functional.cross_entropy(logits, batch.response_ids[batch.response_mask])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        model.eval()
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        (directory / "rlcore_warmstart.json").write_text(json.dumps({**spec, "final_loss": loss.item()}, indent=1))

    return cached_directory(cache_root(cache_dir) / "tiny-arith" / key, build)
