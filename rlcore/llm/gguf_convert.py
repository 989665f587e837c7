"""A GGUF checkpoint (llama.cpp's format) turned into a ``save_pretrained`` directory, through transformers.

transformers reads a GGUF file (``from_pretrained(..., gguf_file=...)``, with the ``gguf`` package) and
de-quantises its weights, but refuses to save the model it loaded. :func:`convert_gguf` copies those weights into a
fresh model of the same class and saves it in float32 with the tokenizer (chat template included) and a generation
config that stops on every end token, so the directory loads with plain ``from_pretrained`` afterwards.

One repair on the way: transformers splits text for a ``smollm`` vocabulary (``tokenizer.ggml.pre``) with the
GPT-2 regex alone, but SmolLM's own tokenizer (and llama.cpp) first cut out every digit, which changes the tokens
of whitespace before a digit (``"\\n\\n12"``: ``ĊĊ`` and not ``Ċ``, ``Ċ``). The saved tokenizer splits digits first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rlcore.errors import UserError

STAGES = ("tokenizer", "weights", "fp32 copy", "save")
DIGITS_FIRST = ("smollm",)
"""GGUF pre-tokenizer names whose vocabulary was learnt with every digit split off before the GPT-2 regex."""


def gguf_pre_tokenizer(gguf_path: Path) -> str | None:
    """The file's ``tokenizer.ggml.pre`` (how text is split before BPE), or None."""
    from gguf import GGUFReader

    field = GGUFReader(gguf_path).get_field("tokenizer.ggml.pre")
    return None if field is None else str(field.contents())


def split_digits_first(tokenizer) -> None:
    """Make a byte-level BPE tokenizer cut out each digit, then apply the GPT-2 split (SmolLM's own layout)."""
    from tokenizers import pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])


def convert_gguf(gguf_path: str | Path, directory: str | Path, *, desc: str = "converting GGUF") -> None:
    """Write the model and tokenizer of the GGUF file ``gguf_path`` into ``directory`` (``save_pretrained`` layout).

    Weights are de-quantised to float32; the tokenizer keeps its pad token (or gets EOS as pad); the generation
    config's ``eos_token_id`` lists every stop id (:func:`rlcore.llm.policy.stop_token_ids`). A progress bar
    shows the four stages on stderr.
    """
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as e:
        raise UserError("converting a GGUF model needs the 'gguf' package: pip install 'rlcore[llm]'") from e
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from rlcore.llm.policy import prepare_tokenizer, stop_token_ids

    gguf_path, directory = Path(gguf_path), Path(directory)
    with tqdm(total=len(STAGES), desc=desc, unit="stage", file=sys.stderr, dynamic_ncols=True) as bar:
        bar.set_postfix_str(STAGES[0])
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        if gguf_pre_tokenizer(gguf_path) in DIGITS_FIRST:
            split_digits_first(tokenizer)
        bar.update()
        bar.set_postfix_str(STAGES[1])
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
        bar.update()
        bar.set_postfix_str(STAGES[2])
        config = loaded.config
        if hasattr(config, "quantization_config"):  # the GGUF marker: the saved copy is a plain fp32 model
            del config.quantization_config
        config.dtype = torch.float32
        with torch.random.fork_rng(devices=[]):  # the fresh model's random init is overwritten at once
            model = type(loaded)(config)
        model.load_state_dict(loaded.state_dict())
        del loaded
        bar.update()
        bar.set_postfix_str(STAGES[3])
        tokenizer.model_max_length = getattr(config, "max_position_embeddings", tokenizer.model_max_length)
        prepare_tokenizer(tokenizer)
        model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                                   eos_token_id=stop_token_ids(tokenizer),
                                                   pad_token_id=tokenizer.pad_token_id)
        config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        bar.update()
