"""pass@k against brute-force enumeration, maj@k ties, tables."""

from __future__ import annotations

import itertools
import math

import pytest

from rlcore.envs.reasoning.metrics import (
    benchmark_metrics,
    maj_at_k,
    mean_at_k,
    pass_at_k,
    summary_rows,
    to_csv,
    to_markdown,
)
from rlcore.errors import ConfigError


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_enumeration_of_subsets(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert math.isclose(pass_at_k(n, c, k), brute, rel_tol=1e-12, abs_tol=1e-12), (n, c, k)


def test_pass_at_k_large_n_is_stable():
    assert math.isclose(pass_at_k(1000, 1, 1), 0.001)
    assert math.isclose(pass_at_k(200, 10, 16), 1 - math.comb(190, 16) / math.comb(200, 16), rel_tol=1e-12)
    with pytest.raises(ConfigError):
        pass_at_k(4, 5, 2)


def test_maj_at_k_majority_ties_and_missing_answers():
    assert maj_at_k(["4", " 4", "5"], [True, True, False]) == 1.0
    assert maj_at_k(["5", "5", "4", None, None], [False, False, True, False, False]) == 0.0
    assert maj_at_k([None, None], [False, False]) == 0.0
    # a 2-2 tie: the draw depends on the seed only, and both winners occur over seeds
    answers, correct = ["1", "2", "1", "2"], [True, False, True, False]
    draws = [maj_at_k(answers, correct, seed=s) for s in range(40)]
    assert draws == [maj_at_k(answers, correct, seed=s) for s in range(40)]
    assert set(draws) == {0.0, 1.0}
    assert 10 <= sum(draws) <= 30


def test_benchmark_metrics_and_tables():
    groups = [[("1", True), ("2", False)], [("3", False), ("3", False)]]
    m = benchmark_metrics(groups, k=2)
    assert m == {"prompts": 2, "pass@1": 25.0, "maj@2": pytest.approx(m["maj@2"]), "pass@2": 50.0}
    assert mean_at_k([True, False, False, False]) == 0.25
    rows = summary_rows({"a": m, "b": {**m, "pass@1": 75.0}})
    assert rows[-1]["benchmark"] == "average" and rows[-1]["pass@1"] == 50.0 and rows[-1]["prompts"] == 4
    assert to_markdown(rows).splitlines()[0] == "| benchmark | prompts | pass@1 | maj@2 | pass@2 |"
    assert to_csv(rows).splitlines()[1].startswith("a,2,25.0,")
