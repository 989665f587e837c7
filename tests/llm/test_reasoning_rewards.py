"""math-verify rewards: extraction, conventions, timeouts on adversarial answers, real benchmarks."""

from __future__ import annotations

import random
import time

import pytest

pytest.importorskip("math_verify", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

from conftest import shared_data  # noqa: E402

from rlcore.envs.reasoning import extract_answer, load_math_dataset, math_reward, score_completions  # noqa: E402
from rlcore.errors import ConfigError  # noqa: E402


def test_extraction():
    assert extract_answer(r"first \boxed{1}, then \boxed{\frac{a}{b^{2}}}.") == r"\frac{a}{b^{2}}"
    assert extract_answer(r"so \boxed 7.") == "7"
    assert extract_answer(r"\fbox{x=3}") == "x=3"
    assert extract_answer("Janet sells 9 eggs.\n#### 1,080") == "1080"
    assert extract_answer(r"unclosed \boxed{12") is None
    assert extract_answer("no answer") is None
    deep = "\\boxed{" + "{" * 10000 + "1" + "}" * 10000 + "}"
    assert extract_answer(deep).count("{") == 10000


@pytest.mark.parametrize("completion, gold", [
    (r"the answer is $\boxed{25}$", "025"), (r"$\boxed{27}$", "27.0"), (r"\boxed{0.5}", r"\frac{1}{2}"),
    (r"\boxed{\frac{\pi}{2}}", r"\dfrac{\pi}{2}"), (r"\boxed{(1, 2]}", r"(1,2]"), ("#### 72", "72"),
    (r"\boxed{104.}", "104"),
])
def test_equivalent_answers_score_plus_one(completion, gold):
    assert math_reward(completion, gold) == 1.0
    assert math_reward(completion, gold, reward_range="01") == 1.0


def test_wrong_or_missing_answers():
    assert math_reward(r"\boxed{24}", "25") == -1.0
    assert math_reward("I think it is 25", "25") == -1.0  # no boxed answer: not verified
    assert math_reward(r"\boxed{24}", "25", reward_range="01") == 0.0
    assert math_reward(r"\boxed{24}", "25", reward_range=(-0.5, 2.0)) == -0.5
    with pytest.raises(ConfigError, match="reward_range"):
        math_reward(r"\boxed{1}", "1", reward_range="pm2")


@pytest.mark.parametrize("adversarial", [
    r"\boxed{10^{10^{10}}}", r"\boxed{9^{9^{9^{9}}}}", "\\boxed{" + "{" * 10000 + "1" + "}" * 10000 + "}",
    "\\boxed{" + "\\frac{" * 3000 + "1" + "}{2}" * 3000 + "}",
])
def test_adversarial_answers_time_out_as_incorrect(adversarial):
    start = time.monotonic()
    assert math_reward(adversarial, "5", timeout=1.5) == -1.0
    assert time.monotonic() - start < 1.5 + 30  # the deadline plus a worker restart at most: never a hang
    assert math_reward(r"\boxed{5}", "5") == 1.0  # the pool recovered


def test_parallel_batch_matches_single_calls():
    completions = [rf"\boxed{{{i}}}" for i in range(12)] + ["nothing", r"\boxed{10^{10^{10}}}"]
    answers = [str(i if i % 3 else i + 1) for i in range(12)] + ["1", "1"]
    batch = score_completions(completions, answers, workers=2, timeout=2.0)
    assert batch == [1.0 if i % 3 else -1.0 for i in range(12)] + [-1.0, -1.0]
    with pytest.raises(ConfigError, match="one answer per completion"):
        score_completions(["a"], [])


def _gold_completion(answer: str) -> str:
    return f"Working omitted. The final answer is $\\boxed{{{answer}}}$."


def _agreement(records, completions, answers):
    rewards = score_completions(completions, answers, workers=2, timeout=10.0)
    return sum(r == 1.0 for r in rewards) / len(rewards), rewards


def _stratified(records, per_subject: int, seed: int = 0):
    by_subject: dict[str, list] = {}
    for r in records:
        by_subject.setdefault(r.metadata.get("subject", ""), []).append(r)
    rng = random.Random(seed)
    return [r for group in by_subject.values() for r in rng.sample(group, min(per_subject, len(group)))]


def _shuffled_wrong_rate(records):
    """Each gold completion checked against the next row's answer (pairs with the same answer text skipped)."""
    pairs = [(a, b) for a, b in zip(records, records[1:] + records[:1]) if a.answer.strip() != b.answer.strip()]
    rewards = score_completions([_gold_completion(a.answer) for a, _ in pairs], [b.answer for _, b in pairs],
                                workers=2, timeout=10.0)
    return sum(r == -1.0 for r in rewards) / len(rewards)


def test_math500_gold_solutions_sample():
    records = _stratified(load_math_dataset("math500", data_dir=shared_data("math")), per_subject=8)
    rate, _ = _agreement(records, [r.metadata["solution"] for r in records], [r.answer for r in records])
    assert rate >= 0.99
    assert _shuffled_wrong_rate(records) >= 0.97


@pytest.mark.parametrize("name", ["aime24", "aime25", "amc23"])
def test_competition_answers_all_verify(name):
    records = load_math_dataset(name, data_dir=shared_data("math"))
    rate, _ = _agreement(records, [_gold_completion(r.answer) for r in records], [r.answer for r in records])
    assert rate == 1.0
    # the canonical numeric form matches zero-padded / float gold answers ("025", "27.0")
    plain = [str(int(float(r.answer))) for r in records]
    assert _agreement(records, [_gold_completion(p) for p in plain], [r.answer for r in records])[0] == 1.0
    assert _shuffled_wrong_rate(records) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["math500", "gsm8k"])
def test_full_benchmark_gold_solutions(name):
    records = load_math_dataset(name, data_dir=shared_data("math"))
    solutions = [r.metadata["solution"] + (f"\n#### {r.answer}" if name == "gsm8k" else "") for r in records]
    rate, _ = _agreement(records, solutions, [r.answer for r in records])
    assert rate >= 0.99
    assert _shuffled_wrong_rate(records) >= 0.99


def test_pool_replaces_dead_workers():
    from rlcore.envs.reasoning.verifier import VerifierPool

    pool = VerifierPool(workers=2)
    try:
        pairs = [("1/2", "0.5"), ("3", "4"), (r"\sqrt{4}", "2")]
        assert pool.check(pairs) == [True, False, True]
        for w in pool.workers:  # both die while idle (e.g. killed by the OOM killer)
            w.proc.kill()
            w.proc.wait()
        assert pool.check(pairs * 2, workers=1) == [True, False, True] * 2
        assert pool.workers[0].proc.poll() is None  # replaced; the unused second one is replaced when used
        assert pool.check(pairs) == [True, False, True] and all(w.proc.poll() is None for w in pool.workers)
    finally:
        pool.close()


def test_extraction_is_linear_on_unclosed_boxes():
    text = "\\boxed{" * 20000 + "\\boxed . " * 20000 + "1"
    start = time.monotonic()
    assert extract_answer(text) is None and extract_answer(text + "}").endswith("1")
    assert time.monotonic() - start < 30  # quadratic scanning would take minutes
