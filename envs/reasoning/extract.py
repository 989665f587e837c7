"""Final-answer extraction: the last ``\\boxed{...}`` (or ``\\fbox{...}``), else the last GSM8K ``#### answer``."""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_BARE = re.compile(r"[^\s$]+")
_GSM8K = re.compile(r"####\s*([^\n]+)")


def _closing_braces(text: str) -> dict[int, int]:
    """Index of the matching ``}`` for every ``{`` that has one, in one pass (linear even for adversarial text)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def extract_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (also ``\\boxed 5``), else None."""
    matches = list(_BOX.finditer(text))
    closing = _closing_braces(text) if matches else {}
    for match in reversed(matches):
        end = match.end()
        if end < len(text) and text[end] == "{":
            content = text[end + 1:closing[end]] if end in closing else None
        else:
            bare = _BARE.match(text, end)
            content = bare.group(0) if bare else None
        if content is not None:
            content = _unwrap(content.strip())
            if content:
                return content
    return None


def _unwrap(answer: str) -> str:
    """Drop decoration that math-verify does not read: a trailing period and a ``\\textbf{...}`` wrapper."""
    answer = answer.rstrip(". ")
    bold = re.fullmatch(r"\\textbf\{(.*)\}", answer, flags=re.DOTALL)
    return bold.group(1).strip() if bold else answer


def extract_answer(text: str) -> str | None:
    """The final answer of a completion: last boxed answer, else the last ``#### x`` (GSM8K), else None.

    >>> extract_answer(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> extract_answer("48 + 24 = 72\\n#### 72")
    '72'
    """
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    found = _GSM8K.findall(text)
    if found:
        return found[-1].strip().rstrip(".").replace(",", "") or None
    return None
