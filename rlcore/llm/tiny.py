"""A tiny random-weight Qwen3 with the real Qwen tokenizer, saved like a hub checkpoint (for tests and demos)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from rlcore.llm.cache import cache_root, cached_directory
from rlcore.llm.tokenizer import ENDOFTEXT, IM_END, QWEN3_VOCAB_SIZE, TOKENIZER_VERSION, build_qwen_tokenizer
from rlcore.logging import announce


def tiny_qwen(path: str | Path | None = None, *, layers: int = 2, hidden: int = 64, heads: int = 2,
              kv_heads: int = 1, head_dim: int = 64, intermediate: int = 128, max_positions: int = 4096,
              seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Build (once) a Qwen3ForCausalLM with random weights and save model + tokenizer to a directory.

    Returns the directory, loadable with ``load_policy(path)`` or ``from_pretrained``. Default: 2 layers, hidden 64,
    vocabulary 151,936, tied embeddings, about 9.8 M parameters (almost all in the embedding). ``head_dim`` stays
    >= 64 because vLLM's CPU attention needs it. Without ``path`` it is cached under the cache directory, keyed by
    the arguments, so later calls return at once.

    >>> from rlcore.llm import load_policy                              # doctest: +SKIP
    >>> model, tok = load_policy(tiny_qwen(layers=1))                   # doctest: +SKIP
    """
    spec = {"layers": layers, "hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim,
            "intermediate": intermediate, "max_positions": max_positions, "seed": seed,
            "tokenizer": TOKENIZER_VERSION}
    if path is None:
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        path = cache_root(cache_dir) / "tiny-qwen3" / key

    def build(directory: Path) -> None:
        from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

        announce(f"building the tiny random-weight Qwen3 and its tokenizer (once; cached in {path})")
        tokenizer = build_qwen_tokenizer(cache_dir)
        eos, pad = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(ENDOFTEXT)
        config = Qwen3Config(
            vocab_size=QWEN3_VOCAB_SIZE, hidden_size=hidden, intermediate_size=intermediate,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
            max_position_embeddings=max_positions, tie_word_embeddings=True, bos_token_id=pad, eos_token_id=eos,
            pad_token_id=pad, rope_theta=1_000_000.0, dtype="float32")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Qwen3ForCausalLM(config)
        model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        (directory / "rlcore_tiny.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")

    return cached_directory(path, build)
