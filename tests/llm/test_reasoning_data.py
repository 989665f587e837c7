"""Benchmark loaders, prompts, and the toy arithmetic task with its exact checker."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import shared_data

from rlcore.envs.reasoning import build_prompt, load_math_dataset, make_arith_dataset
from rlcore.envs.reasoning.arith import arith_correct, arith_reward
from rlcore.envs.reasoning.datasets import BENCHMARK_FILES
from rlcore.errors import DataError


@pytest.mark.parametrize("name, rows, answer", [
    ("math500", 500, r"\left( 3, \frac{\pi}{2} \right)"), ("aime24", 30, "204"), ("aime25", 30, "70"),
    ("amc23", 40, "27.0"), ("gsm8k", 1319, "18"), ("math_train", 7498, None),
])
def test_real_benchmarks_load(name, rows, answer):
    records = load_math_dataset(name, data_dir=shared_data("math"))
    assert len(records) == rows
    assert len({r.id for r in records}) == rows
    assert all(r.prompt and r.answer and r.verifier == "math" for r in records)
    if answer is not None:
        assert records[0].answer == answer
    assert records[0].metadata["benchmark"] == name


def test_layouts_env_var_and_errors(tmp_path, monkeypatch):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": "q1", "answer": "work\n#### 1,000"}, {"problem": "q2", "solution": r"so \boxed{7}"},
            {"problem": "q3", "answer": None, "solution": "no box"}, {"id": 9, "problem": "q4", "answer": 3.0}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    records = load_math_dataset(path)
    assert [(r.prompt, r.answer) for r in records] == [("q1", "1000"), ("q2", "7"), ("q4", "3.0")]
    assert records[0].metadata["solution"].strip() == "work" and records[2].id == "mine/9"
    assert len(load_math_dataset(path, limit=2)) == 2
    (tmp_path / BENCHMARK_FILES["aime25"]).write_text(json.dumps({"problem": "p", "answer": "1"}) + "\n")
    monkeypatch.setenv("RLCORE_MATH_DATA", str(tmp_path))
    assert load_math_dataset("aime25")[0].answer == "1"
    with pytest.raises(DataError, match="amc23.jsonl"):
        load_math_dataset("amc23")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x", "answer": "1"}\n{not json\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        load_math_dataset(bad)
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(DataError, match="found keys"):
        load_math_dataset(bad)
    with pytest.raises(DataError, match="neither a JSONL or Parquet file nor a benchmark"):
        load_math_dataset("math-501")
    monkeypatch.delenv("RLCORE_MATH_DATA")
    with pytest.raises(DataError, match="--data-dir"):
        load_math_dataset("math500")


def test_prompt_through_the_chat_template():
    pytest.importorskip("transformers", reason="the llm extra is not installed")
    from rlcore.llm import build_qwen_tokenizer

    tok = build_qwen_tokenizer()
    text = build_prompt("What is 2+3?", tok)
    assert text == ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}."
                    "<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    user = build_prompt("What is 2+3?", tok, placement="user")
    assert "<|im_start|>user\nWhat is 2+3?\nPlease reason step by step" in user
    assert build_prompt("Q", None).endswith("within \\boxed{}.\n")


def _all_expressions(numbers):
    """(text, value) of every fully bracketed +,-,* expression over each ordered subset (brute force)."""
    def build(items):
        if len(items) == 1:
            yield str(items[0]), items[0]
            return
        for cut in range(1, len(items)):
            for (ls, lv), (rs, rv) in itertools.product(list(build(items[:cut])), list(build(items[cut:]))):
                yield f"({ls}+{rs})", lv + rv
                yield f"({ls}-{rs})", lv - rv
                yield f"({ls}*{rs})", lv * rv
    for size in range(1, len(numbers) + 1):
        for perm in itertools.permutations(numbers, size):
            yield from build(list(perm))


def test_arith_checker_against_enumeration():
    numbers = [3, 5, 7]
    expressions = list(_all_expressions(numbers))
    for target in (15, 1, -4, 100):
        spec = f"expr:{target}:3,5,7"
        for text, value in expressions:
            assert arith_correct(rf"\boxed{{{text}}}", spec) == (value == target), (text, target)
    solutions = {t for t, v in expressions if v == 15}
    assert len(solutions) >= 10  # many distinct correct answers per prompt
    assert not arith_correct(r"\boxed{5*3*1}", "expr:15:3,5,7")  # 1 is not given
    assert not arith_correct(r"\boxed{5*5-10}", "expr:15:3,5,7")  # 5 twice
    assert not arith_correct(r"\boxed{__import__('os')}", "expr:15:3,5,7")
    assert not arith_correct(r"\boxed{15/1}", "expr:15:3,5,7")


def test_arith_sum_task_and_dataset():
    assert [a for a in range(1, 12) if arith_correct(f"{a}+{12 - a}", "sum:12")] == list(range(1, 12))
    assert arith_reward(r"\boxed{0+12}", "sum:12") == -1.0 and arith_reward("3*4", "sum:12") == -1.0
    assert arith_reward("3 + 9", "sum:12", reward_range="01") == 1.0
    data = make_arith_dataset(40, seed=1)
    assert data == make_arith_dataset(40, seed=1) and data != make_arith_dataset(40, seed=2)
    assert {r.metadata["kind"] for r in data} == {"sum", "expr"} and all(r.verifier == "arith" for r in data)
    for r in data:  # every generated problem is solvable: its example answer verifies
        if r.metadata["kind"] == "expr":
            assert arith_correct(rf"\boxed{{{r.metadata['example']}}}", r.answer)
    assert load_math_dataset("arith", limit=5) == make_arith_dataset()[:5]


TRL_ROWS = [
    {"prompt": "Name a prime.", "solution": r"e.g. \boxed{7}", "topic": "primes"},
    {"prompt": [{"role": "user", "content": "What is 2+3?"}], "answer": 5, "topic": "sums"},
    {"prompt": "Say hi.", "topic": "greetings"},
]


def _trl_view(records):
    return [(r.prompt, r.answer, r.metadata["topic"], r.verbatim) for r in records]


def test_trl_rows_in_every_form_give_the_same_records(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the datasets package is not installed")
    expected = [("Name a prime.", "7", "primes", True),
                ([{"role": "user", "content": "What is 2+3?"}], "5", "sums", True),
                ("Say hi.", None, "greetings", True)]
    assert _trl_view(load_math_dataset(TRL_ROWS)) == expected
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in TRL_ROWS) + "\n")
    assert _trl_view(load_math_dataset(jsonl)) == expected
    # a datasets.Dataset and its Parquet file (missing columns become None there): the same records
    flat = [{"prompt": "Name a prime.", "solution": r"e.g. \boxed{7}", "answer": None, "topic": "primes"},
            {"prompt": "What is 2+3?", "solution": None, "answer": "5", "topic": "sums"},
            {"prompt": "Say hi.", "solution": None, "answer": None, "topic": "greetings"}]
    ds = datasets.Dataset.from_list(flat)
    parquet = tmp_path / "rows.parquet"
    ds.to_parquet(str(parquet))
    expected_flat = [("Name a prime.", "7", "primes", True), ("What is 2+3?", "5", "sums", True),
                     ("Say hi.", None, "greetings", True)]
    assert _trl_view(load_math_dataset(ds)) == expected_flat == _trl_view(load_math_dataset(parquet))


def test_trl_prompts_are_used_verbatim_or_through_the_chat_template():
    pytest.importorskip("transformers", reason="the llm extra is not installed")
    from rlcore.envs.reasoning import record_prompt, require_answers
    from rlcore.llm import build_qwen_tokenizer

    tok = build_qwen_tokenizer()
    text, chat, bare = load_math_dataset(TRL_ROWS)
    assert record_prompt(text, tok) == "Name a prime."  # as given: no instruction, no template
    assert record_prompt(chat, tok) == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(DataError, match="'answer'.*greetings|'answer'.*data/2"):
        require_answers([text, chat, bare], "evaluation")
    with pytest.raises(DataError, match="'prompt' must be a string or a list"):
        load_math_dataset([{"prompt": 3}])
