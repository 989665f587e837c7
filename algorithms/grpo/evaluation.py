"""Periodic evaluation during training: k samples per held-out problem -> pass@1, pass@k, maj@k, distinct answers."""

from __future__ import annotations

from typing import Any

from rlcore.algorithms.grpo.data import Problems
from rlcore.distributed import Distributed
from rlcore.envs.reasoning import benchmark_metrics
from rlcore.envs.reasoning.evaluate import sample_and_check
from rlcore.rollout import RolloutEngine


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
                    max_new_tokens: int, seed: int, batch_size: int = 64) -> dict[str, Any]:
    """Sample ``k`` responses per problem (problems split over processes), verify them, and summarise.

    Returns ``pass@1`` (mean share correct, %), ``pass@k`` and ``maj@k`` (%), ``distinct_correct`` and
    ``response_tokens`` (mean length), identical on every process. Sampling is seeded by ``seed`` and the
    problem's index, so evaluations at different steps see the same randomness.
    """
    mine = list(range(dist.rank, len(problems), dist.world_size))
    checked = sample_and_check(engine, [problems.prompt_ids[i] for i in mine], [problems.records[i] for i in mine],
                               k=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed,
                               batch_size=batch_size, offsets=mine)
    results = [(i, [(s.answer, s.correct) for s in group], sum(len(s.completion.token_ids) for s in group) / k)
               for i, group in zip(mine, checked)]
    gathered = sorted(dist.gather_objects(results), key=lambda x: x[0])
    samples = [s for _, s, _ in gathered]
    metrics: dict[str, Any] = benchmark_metrics(samples, k, seed=seed)
    metrics.pop("prompts")
    metrics["distinct_correct"] = distinct_correct(samples)
    metrics["response_tokens"] = sum(length for _, _, length in gathered) / len(gathered)
    return metrics
