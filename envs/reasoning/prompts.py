"""The G2RL / SimpleRL-Zoo prompt: the question plus a reasoning instruction, through the model's chat template."""

from __future__ import annotations

from typing import Any, Literal

G2RL_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def build_prompt(question: str, tokenizer: Any | None = None, *, instruction: str = G2RL_INSTRUCTION,
                 placement: Literal["system", "user"] = "system", enable_thinking: bool | None = None) -> str:
    """Prompt text for ``question``.

    With a tokenizer that has a chat template: the instruction as the system message (``placement="system"``,
    the paper's setting) or appended to the user turn, then the assistant generation prompt. Without one:
    ``"question\\ninstruction\\n"``. ``enable_thinking`` is passed to templates that know it (Qwen3).

    >>> build_prompt("What is 2+3?")
    'What is 2+3?\\nPlease reason step by step, and put your final answer within \\\\boxed{}.\\n'
    """
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return f"{question}\n{instruction}\n"
    if placement == "system":
        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": question}]
    else:
        messages = [{"role": "user", "content": f"{question}\n{instruction}"}]
    extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)


def record_prompt(record: Any, tokenizer: Any | None = None, *, chat: bool = True) -> str:
    """The prompt text of a :class:`rlcore.envs.reasoning.MathRecord`: a verbatim text as it is, verbatim chat
    messages through ``tokenizer``'s chat template, a question through :func:`build_prompt` (with the chat template
    only when ``chat``)."""
    if not record.verbatim:
        return build_prompt(record.prompt, tokenizer if chat else None)
    if isinstance(record.prompt, str):
        return record.prompt
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        from rlcore.errors import DataError

        raise DataError(f"row '{record.id}' has chat messages as its prompt, but the tokenizer has no chat template")
    return tokenizer.apply_chat_template(record.prompt, tokenize=False, add_generation_prompt=True)
