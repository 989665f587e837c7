"""Sampling metrics: unbiased pass@k, maj@k with seeded tie-breaking, mean@k, and benchmark tables."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import Mapping, Sequence

from rlcore.errors import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    Computed as 1 - prod_{i=n-c+1..n} (1 - k / i), stable for large n.

    >>> pass_at_k(4, 1, 2)
    0.5
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ConfigError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_at_k(correct: Sequence[bool]) -> float:
    """Share of correct samples (mean@k; pass@1 estimated from k samples)."""
    if not correct:
        raise ConfigError("mean_at_k needs at least one sample")
    return sum(bool(c) for c in correct) / len(correct)


def _normalize(answer: str) -> str:
    return "".join(answer.split()).strip("$")


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], *, seed: int = 0) -> float:
    """1.0 if the most frequent extracted answer is correct, else 0.0 (samples without an answer do not vote).

    Answers are compared as strings with whitespace removed; a tie between the most frequent answers is broken by
    a draw seeded with ``seed``. ``correct[j]`` is the verdict for sample j.

    >>> maj_at_k(["4", "4", "5"], [True, True, False])
    1.0
    """
    if len(answers) != len(correct):
        raise ConfigError(f"maj_at_k got {len(answers)} answers but {len(correct)} verdicts")
    votes = Counter(_normalize(a) for a in answers if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    tied = sorted(a for a, v in votes.items() if v == top)
    winner = tied[0] if len(tied) == 1 else random.Random(seed).choice(tied)
    return float(next(bool(c) for a, c in zip(answers, correct) if a is not None and _normalize(a) == winner))


def benchmark_metrics(samples: Sequence[Sequence[tuple[str | None, bool]]], k: int, *, seed: int = 0
                      ) -> dict[str, float]:
    """pass@1, maj@k and pass@k (%), averaged over prompts; ``samples[i]`` = (extracted answer, correct) of the
    samples of prompt i (n >= k each; pass@1 is the mean over all n samples, maj@k uses the first k)."""
    if not samples:
        raise ConfigError("benchmark_metrics needs at least one prompt")
    p1 = mk = pk = 0.0
    for i, group in enumerate(samples):
        answers, correct = [a for a, _ in group], [c for _, c in group]
        p1 += mean_at_k(correct)
        mk += maj_at_k(answers[:k], correct[:k], seed=seed + i)
        pk += pass_at_k(len(correct), sum(correct), k)
    n = len(samples)
    return {"prompts": n, "pass@1": 100 * p1 / n, f"maj@{k}": 100 * mk / n, f"pass@{k}": 100 * pk / n}


def summary_rows(per_benchmark: Mapping[str, Mapping[str, float]]) -> list[dict[str, float | str]]:
    """One row per benchmark plus an ``average`` row (unweighted mean over benchmarks) of every metric."""
    rows: list[dict[str, float | str]] = [{"benchmark": name, **m} for name, m in per_benchmark.items()]
    if len(rows) > 1:
        keys = [k for k in rows[0] if k not in ("benchmark", "prompts")]
        avg: dict[str, float | str] = {"benchmark": "average",
                                       "prompts": sum(int(r["prompts"]) for r in rows)}
        avg.update({k: sum(float(r[k]) for r in rows) / len(rows) for k in keys})
        rows.append(avg)
    return rows


def _cell(v: float | str) -> str:
    if isinstance(v, float):
        return f"{v:.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.2f}"
    return str(v)


def to_markdown(rows: Sequence[Mapping[str, float | str]]) -> str:
    """A GitHub markdown table of ``rows`` (columns from the first row)."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, float | str]]) -> str:
    """CSV text of ``rows`` (columns from the first row)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
