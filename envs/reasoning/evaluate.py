"""The one LLM evaluation loop: k samples per problem from a rollout engine, each checked by the verifier.

``rlcore eval llm`` and the periodic evaluation of a GRPO run both call :func:`sample_and_check`; a sample is
"correct" by :func:`rlcore.envs.reasoning.scoring.check_records`, and its vote for maj@k is its extracted final
answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlcore.envs.reasoning.datasets import MathRecord, require_answers
from rlcore.envs.reasoning.scoring import check_records, record_answer


@dataclass
class Sample:
    """One sampled response to a problem, verified."""

    completion: Any
    """The engine's :class:`rlcore.rollout.Completion` (text, token ids, finish reason)."""
    answer: str | None
    """The final answer extracted from it (None: none found)."""
    correct: bool


def sample_and_check(engine: Any, prompts: Sequence[Any], records: Sequence[MathRecord], *, k: int,
                     temperature: float, max_new_tokens: int, seed: int, top_p: float = 1.0, batch_size: int = 64,
                     offsets: Sequence[int] | None = None, timeout: float = 5.0, workers: int | None = None,
                     on_chunk: Callable[[int], None] | None = None) -> list[list[Sample]]:
    """``k`` verified samples of each problem ``records[i]`` (prompt ``prompts[i]``: text or token ids).

    Problems are generated ``max(1, batch_size // k)`` per engine call; a call's sampling seed is ``seed`` plus the
    offset of its first problem (``offsets[i]``, default ``i``), so a problem sees the same randomness whatever
    else is evaluated with it. ``on_chunk(n)`` is told after each call how many problems it finished.
    """
    from rlcore.rollout import SamplingParams

    require_answers(list(records), "evaluation (pass@k)")
    offsets = list(range(len(records))) if offsets is None else list(offsets)
    per_call = max(1, batch_size // k)
    out: list[list[Sample]] = []
    for start in range(0, len(records), per_call):
        chunk = records[start:start + per_call]
        params = SamplingParams(n=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                seed=seed + offsets[start])
        groups = engine.generate(list(prompts[start:start + per_call]), params)
        flat = [(r, c) for r, group in zip(chunk, groups) for c in group]
        verdicts = check_records([c.text for _, c in flat], [r for r, _ in flat], timeout=timeout, workers=workers)
        for j, (record, group) in enumerate(zip(chunk, groups)):
            out.append([Sample(c, record_answer(c.text, record), verdicts[j * k + s]) for s, c in enumerate(group)])
        if on_chunk is not None:
            on_chunk(len(chunk))
    return out
