"""Periodic evaluation during training: k samples per held-out problem -> pass@1, pass@k, maj@k, distinct answers."""

from __future__ import annotations

from typing import Any

from rlcore.algorithms.grpo.data import Problems
from rlcore.distributed import Distributed
from rlcore.envs.reasoning import benchmark_metrics, record_answer, score_records
from rlcore.envs.reasoning.rewards import REWARD_RANGES
from rlcore.rollout import RolloutEngine, SamplingParams


def _normal(answer: str) -> str:
    return "".join(answer.split())


def distinct_correct(samples: list[list[tuple[str | None, bool]]]) -> float:
    """Mean number of distinct correct final answers per problem (answers compared without whitespace).

    >>> distinct_correct([[("3+9", True), ("9 + 3", False), ("5+7", True), ("5+7", True)]])
    2.0
    """
    counts = [len({_normal(a) for a, ok in group if ok and a is not None}) for group in samples]
    return sum(counts) / max(len(counts), 1)


def evaluate_policy(engine: RolloutEngine, problems: Problems, dist: Distributed, *, k: int, temperature: float,
                    max_new_tokens: int, seed: int, reward_range: str = "pm1",
                    batch_size: int = 64) -> dict[str, Any]:
    """Sample ``k`` responses per problem (problems split over processes), verify them, and summarise.

    Returns ``pass@1`` (mean share correct, %), ``pass@k`` and ``maj@k`` (%), ``distinct_correct`` and
    ``response_tokens`` (mean length), identical on every process. Sampling is seeded by ``seed`` and the
    problem's index, so evaluations at different steps see the same randomness.
    """
    low, high = REWARD_RANGES[reward_range]
    mine = list(range(dist.rank, len(problems), dist.world_size))
    per_call = max(1, batch_size // k)
    results: list[tuple[int, list[tuple[str | None, bool]], float]] = []
    for start in range(0, len(mine), per_call):
        chunk = mine[start:start + per_call]
        params = SamplingParams(n=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + chunk[0])
        groups = engine.generate([problems.prompt_ids[i] for i in chunk], params)
        records = [problems.records[i] for i, g in zip(chunk, groups) for _ in g]
        completions = [c for g in groups for c in g]
        rewards = score_records([c.text for c in completions], records, reward_range=reward_range)
        for j, i in enumerate(chunk):
            rows = range(j * k, (j + 1) * k)
            samples = [(record_answer(completions[r].text, records[r]), rewards[r] > (low + high) / 2) for r in rows]
            length = sum(len(completions[r].token_ids) for r in rows) / k
            results.append((i, samples, length))
    gathered = sorted(dist.gather_objects(results), key=lambda x: x[0])
    samples = [s for _, s, _ in gathered]
    metrics: dict[str, Any] = benchmark_metrics(samples, k, seed=seed)
    metrics.pop("prompts")
    metrics["distinct_correct"] = distinct_correct(samples)
    metrics["response_tokens"] = sum(length for _, _, length in gathered) / len(gathered)
    return metrics
