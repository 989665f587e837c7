"""Final-answer extraction: the last ``\\boxed{...}`` (or ``\\fbox{...}``), else the last GSM8K ``#### answer``."""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_GSM8K = re.compile(r"####\s*([^\n]+)")


def _braced(text: str, start: int) -> str | None:
    """Content of the balanced ``{...}`` opening at ``text[start]`` (iterative: no recursion on deep nesting)."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


def extract_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (also ``\\boxed 5``), else None."""
    for match in reversed(list(_BOX.finditer(text))):
        end = match.end()
        if end < len(text) and text[end] == "{":
            content = _braced(text, end)
        else:
            bare = re.match(r"[^\s$]+", text[end:])
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
