"""A toy arithmetic task for tiny models, with many distinct correct answers per prompt and an exact checker.

Two kinds of problem, both answered with an expression inside ``\\boxed{}`` (else on the last line):

- ``sum``: "Give two positive integers that add up to 12" -> ``3+9``, ``9+3``, ``5+7``, ... (T - 1 answers);
- ``expr``: "Using the numbers 3, 5, 7 (each at most once) and +, -, *, write an expression equal to 15" ->
  ``3*5``, ``5*3``, ``7+5+3``, ``(7-5)*3+...``: the target is the value of a random expression over the numbers,
  so every prompt is solvable, and orderings and bracketings give many answers.

Exploration matters on this task: a policy that finds one answer and repeats it solves it as well as one that
finds many, which is what gradient-guided exploration (G2RL) is meant to tell apart. The gold ``answer`` of a
record is a spec, ``"sum:12"`` or ``"expr:15:3,5,7"``; :func:`arith_reward` checks completions against it exactly
(a restricted AST walk over integers: no ``eval``, no floats).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter

from rlcore.envs.reasoning.datasets import MathRecord
from rlcore.envs.reasoning.extract import extract_boxed
from rlcore.envs.reasoning.rewards import _bounds

MAX_EXPRESSION_CHARS = 200
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _clean(answer: str) -> str:
    """The expression part of an answer: LaTeX/Unicode products as ``*``, without ``$`` or a trailing ``= value``."""
    answer = answer.replace("\\times", "*").replace("\\cdot", "*").replace("×", "*").replace("·", "*")
    return answer.split("=")[0].strip().strip("$").strip()


def _parse_expression(text: str) -> tuple[int, list[int]] | None:
    """(value, integer literals used) of a +, -, * expression over non-negative integers, else None."""
    if not text or len(text) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    literals: list[int] = []
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    values: list[int] = []
    while stack:  # post-order walk without recursion
        node, visited = stack.pop()
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
            literals.append(node.value)
            values.append(node.value)
        elif isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            if visited:
                right, left = values.pop(), values.pop()
                values.append(_OPS[type(node.op)](left, right))
            else:
                stack += [(node, True), (node.right, False), (node.left, False)]
        else:
            return None
    return values[0], literals


def _answer_text(completion: str) -> str:
    boxed = extract_boxed(completion)
    if boxed is not None:
        return boxed
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def extract_arith_answer(completion: str) -> str | None:
    """The expression a completion gives (boxed, else its last line), normalised; None if empty."""
    return _clean(_answer_text(completion)) or None


def arith_correct(completion: str, spec: str) -> bool:
    """Whether the completion's expression satisfies the problem ``spec`` ("sum:T" or "expr:T:a,b,c")."""
    text = extract_arith_answer(completion) or ""
    kind, _, rest = spec.partition(":")
    if kind == "sum":
        pair = re.fullmatch(r"(\d+)\s*\+\s*(\d+)", text)
        return pair is not None and min(map(int, pair.groups())) > 0 and sum(map(int, pair.groups())) == int(rest)
    if kind == "expr":
        target_text, _, numbers = rest.partition(":")
        parsed = _parse_expression(text)
        if parsed is None:
            return False
        value, literals = parsed
        allowed = Counter(int(x) for x in numbers.split(","))
        return value == int(target_text) and not Counter(literals) - allowed
    raise ValueError(f"unknown arithmetic spec '{spec}'; expected 'sum:T' or 'expr:T:a,b,c'")


def arith_reward(completion: str, spec: str, *, reward_range: str | tuple[float, float] = "pm1") -> float:
    """+1 / -1 (or the given range) for a completion of the toy task; exact, fast, in-process.

    >>> arith_reward(r"\\boxed{5+7}", "sum:12"), arith_reward(r"\\boxed{3*5}", "expr:15:3,5,7")
    (1.0, 1.0)
    >>> arith_reward(r"\\boxed{5*5}", "expr:25:3,5,7")   # 5 used twice
    -1.0
    """
    low, high = _bounds(reward_range)
    return high if arith_correct(completion, spec) else low


def _random_expression(numbers: list[int], rng: random.Random) -> tuple[str, int]:
    """A random fully-bracketed expression using every number once, and its value."""
    items = [(str(x), x) for x in rng.sample(numbers, len(numbers))]
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        (ls, lv), (rs, rv) = items[i], items[i + 1]
        op = rng.choice("+-*")
        value = lv + rv if op == "+" else lv - rv if op == "-" else lv * rv
        items[i:i + 2] = [(f"({ls}{op}{rs})", value)]
    return items[0]


def make_arith_dataset(n: int = 256, *, seed: int = 0, kinds: tuple[str, ...] = ("sum", "expr"),
                       max_number: int = 9) -> list[MathRecord]:
    """``n`` toy problems (alternating ``kinds``), deterministic in ``seed``; records like the math datasets."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind == "sum":
            target = rng.randint(4, 2 * max_number)
            question = f"Give two positive integers that add up to {target}. Answer with an expression a+b."
            spec, meta = f"sum:{target}", {"target": target}
        elif kind == "expr":
            numbers = sorted(rng.sample(range(1, max_number + 1), 3))
            example, target = _random_expression(numbers, rng)
            listed = ", ".join(map(str, numbers))
            question = (f"Using the numbers {listed} (each at most once) and +, -, *, write an expression that "
                        f"equals {target}.")
            spec = f"expr:{target}:{','.join(map(str, numbers))}"
            meta = {"target": target, "numbers": numbers, "example": example}
        else:
            raise ValueError(f"unknown arithmetic kind '{kind}'; use 'sum' or 'expr'")
        records.append(MathRecord(id=f"arith/{i}", prompt=question, answer=spec,
                                  metadata={**meta, "kind": kind, "benchmark": "arith"}, verifier="arith"))
    return records
