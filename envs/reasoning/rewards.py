"""Rule-based math rewards with math-verify: +1 / -1 (the G2RL convention) or 0 / 1.

The final answer is the last ``\\boxed{}`` of the completion (else a GSM8K ``#### x``); math-verify decides whether
it equals the gold answer ("025" = 25, 27.0 = 27, \\frac{1}{2} = 0.5, sets, intervals). Each check runs in a
verifier process with a hard deadline, so no input can hang or crash the caller: a timeout, a crash or a missing
answer gets the incorrect reward.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from rlcore.envs.reasoning.extract import extract_answer
from rlcore.envs.reasoning.verifier import shared_pool
from rlcore.errors import ConfigError

REWARD_RANGES = {"pm1": (-1.0, 1.0), "01": (0.0, 1.0)}
"""Named (incorrect, correct) reward pairs: "pm1" is the paper's +1/-1, "01" the 0/1 convention."""


def answers_match(pred: str, gold: str, timeout_s: int = 5) -> bool:
    """math-verify equivalence of two final answers, in this process (main thread only; no hard deadline)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold_parsed = parse("\\boxed{" + gold + "}", extraction_config=configs, parsing_timeout=timeout_s)
    pred_parsed = parse("\\boxed{" + pred + "}", extraction_config=configs, parsing_timeout=timeout_s)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))


def _bounds(reward_range: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(reward_range, str):
        if reward_range not in REWARD_RANGES:
            raise ConfigError(f"unknown reward_range '{reward_range}'; use one of {list(REWARD_RANGES)} or a pair "
                              "(incorrect, correct)")
        return REWARD_RANGES[reward_range]
    low, high = (float(v) for v in reward_range)
    return low, high


def score_completions(completions: Sequence[str], answers: Sequence[str], *,
                      reward_range: str | tuple[float, float] = "pm1", timeout: float = 5.0,
                      workers: int | None = None, progress: bool = False) -> list[float]:
    """Rewards of many completions against their gold answers, checked in parallel verifier processes.

    ``workers``: verifier processes (default: the CPU count, at most 8). ``timeout``: seconds per answer.
    """
    if len(completions) != len(answers):
        raise ConfigError(f"{len(completions)} completions but {len(answers)} answers; pass one answer per completion")
    low, high = _bounds(reward_range)
    extracted = [extract_answer(c) for c in completions]
    todo = [i for i, e in enumerate(extracted) if e is not None]
    rewards = [low] * len(completions)
    if not todo:
        return rewards
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    workers = max(1, min(workers, len(todo)))
    verdicts = shared_pool(workers).check([(extracted[i], str(answers[i])) for i in todo], timeout=timeout,
                                          progress=progress, workers=workers)
    for i, ok in zip(todo, verdicts):
        rewards[i] = high if ok else low
    return rewards


def math_reward(completion: str, answer: str, *, reward_range: str | tuple[float, float] = "pm1",
                timeout: float = 5.0) -> float:
    """Reward of one completion: ``high`` if its final answer equals ``answer``, else ``low`` (default +1 / -1).

    The first call starts a verifier process (about a second); later calls reuse it.

    >>> math_reward(r"... so the answer is $\\boxed{025}$.", "25")          # doctest: +SKIP
    1.0
    >>> math_reward("no boxed answer here", "25", reward_range="01")       # doctest: +SKIP
    0.0
    """
    return score_completions([completion], [answer], reward_range=reward_range, timeout=timeout, workers=1)[0]
