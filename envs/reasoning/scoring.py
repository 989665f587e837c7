"""Rewards for records of any verifier: math-verify in verifier processes, the toy task in-process."""

from __future__ import annotations

from collections.abc import Sequence

from rlcore.envs.reasoning.arith import arith_reward, extract_arith_answer
from rlcore.envs.reasoning.datasets import MathRecord
from rlcore.envs.reasoning.extract import extract_answer
from rlcore.envs.reasoning.rewards import score_completions


def score_records(completions: Sequence[str], records: Sequence[MathRecord], *,
                  reward_range: str | tuple[float, float] = "pm1", timeout: float = 5.0,
                  workers: int | None = None, progress: bool = False) -> list[float]:
    """Reward of ``completions[i]`` for ``records[i]``, dispatched on ``record.verifier``."""
    rewards = [0.0] * len(completions)
    math_idx = [i for i, r in enumerate(records) if r.verifier == "math"]
    for i, r in enumerate(records):
        if r.verifier == "arith":
            rewards[i] = arith_reward(completions[i], r.answer, reward_range=reward_range)
    if math_idx:
        scored = score_completions([completions[i] for i in math_idx], [records[i].answer for i in math_idx],
                                   reward_range=reward_range, timeout=timeout, workers=workers, progress=progress)
        for i, v in zip(math_idx, scored):
            rewards[i] = v
    return rewards


def check_records(completions: Sequence[str], records: Sequence[MathRecord], *, timeout: float = 5.0,
                  workers: int | None = None, progress: bool = False) -> list[bool]:
    """Whether ``completions[i]`` answers ``records[i]`` correctly: THE definition of "correct" (training
    accuracy, evaluation, the ``math`` reward), the record's verifier accepting the final answer."""
    rewards = score_records(completions, records, reward_range=(0.0, 1.0), timeout=timeout, workers=workers,
                            progress=progress)
    return [r == 1.0 for r in rewards]


def record_answer(completion: str, record: MathRecord) -> str | None:
    """The final answer extracted from a completion, as the record's verifier reads it (for maj@k votes)."""
    if record.verifier == "arith":
        return extract_arith_answer(completion)
    return extract_answer(completion)
