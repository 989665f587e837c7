"""Reward functions (built-ins, user functions, weights), DAPO's overlong penalty, dynamic-sampling selection, the
loss rows of mask_truncated, and the completions log with its report, against hand computations."""

from __future__ import annotations

import functools
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rlcore.algorithms.grpo.completions import CompletionLog
from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.dynamic import enough, informative_groups, pick_groups
from rlcore.algorithms.grpo.registry import REWARDS
from rlcore.algorithms.grpo.rewards import (
    RewardFunctions,
    combine_rewards,
    length_penalty,
    overlong_penalty,
    row_fields,
)
from rlcore.algorithms.grpo.rollouts import Rollouts
from rlcore.algorithms.grpo.step import loss_keep
from rlcore.envs.reasoning import MathRecord, load_math_dataset
from rlcore.errors import ConfigError, DataError, UserError
from rlcore.report.completions import read_completions

NAN = float("nan")


def _records(n: int) -> list[MathRecord]:
    return [MathRecord(id=f"p{i}", prompt=f"Give two numbers adding to {i + 4}", answer=f"sum:{i + 4}",
                       metadata={"level": i}, verifier="arith") for i in range(n)]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """An importable module of user reward functions (``myrewards:...``)."""
    (tmp_path / "myrewards.py").write_text(textwrap.dedent("""
        def shout(completions, answer, level, **kwargs):
            return [None if lv == 1 else float(c.count("!")) for c, lv in zip(completions, level)]

        def short(completions, **kwargs):
            return [1.0]

        def broken(completions, **kwargs):
            raise KeyError("missing column")

        def words(completions, **kwargs):
            return ["many"] * len(completions)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "myrewards"


@pytest.mark.parametrize("max_len, buffer", [(8, 2), (12, 12), (20, 5), (7, 1)])
def test_overlong_penalty_is_dapo_formula(max_len, buffer):
    lengths = torch.arange(0, max_len + 3)
    expected = []
    for n in lengths.tolist():  # DAPO's case definition, written out
        if n <= max_len - buffer:
            expected.append(0.0)
        elif n <= max_len:
            expected.append(((max_len - buffer) - n) / buffer)
        else:
            expected.append(-1.0)
    torch.testing.assert_close(overlong_penalty(lengths, max_len, buffer), torch.tensor(expected, dtype=torch.float64))
    with pytest.raises(ValueError):
        overlong_penalty(lengths, max_len, max_len + 1)


def test_combine_rewards_weights_and_missing_scores():
    scores = torch.tensor([[1.0, NAN, 0.5], [-1.0, 1.0, NAN], [NAN, NAN, 2.0]], dtype=torch.float64)
    weights = torch.tensor([1.0, 0.1, -2.0], dtype=torch.float64)
    torch.testing.assert_close(combine_rewards(scores, weights),
                               torch.tensor([1.0 - 1.0, -1.0 + 0.1, -4.0], dtype=torch.float64))
    with pytest.raises(UserError, match="response 1"):
        combine_rewards(torch.tensor([[1.0], [NAN]]), torch.tensor([1.0]))


def test_builtins_and_user_function(user_module):
    records = _records(4)
    texts = [r"\boxed{1+3}!", "2+3", r"\boxed{3+3", r"\boxed{2+5}"]  # correct-boxed, correct-bare, broken, correct
    ids = [[1] * 3, [1] * 6, [1] * 8, [1] * 10]
    funcs = RewardFunctions(["math", "format", "length", f"{user_module}:shout"], [1.0, 0.1, 0.5, 2.0],
                            reward_range="pm1", max_new_tokens=10, overlong_buffer=4, overlong_penalty=0.5)
    scores = funcs(texts, records, ids)
    assert scores.names == ["math", "format", "length", f"{user_module}:shout", "overlong"]
    math_ = [1.0, 1.0, -1.0, 1.0]
    fmt = [1.0, 0.0, 0.0, 1.0]
    length = [-0.3, -0.6, -0.8, -1.0]
    shout = [1.0, NAN, 0.0, 0.0]  # row 1 has level 1: no score
    overlong = [0.0, 0.0, -0.5, -1.0]  # L_max 10, buffer 4: linear from 6 tokens
    expected = torch.tensor([math_, fmt, length, shout, overlong], dtype=torch.float64).T
    torch.testing.assert_close(scores.per_function, expected, equal_nan=True)
    total = [m + 0.1 * f + 0.5 * ln + 2.0 * (0.0 if s != s else s) + 0.5 * o
             for m, f, ln, s, o in zip(math_, fmt, length, shout, overlong)]
    torch.testing.assert_close(scores.total, torch.tensor(total, dtype=torch.float32))
    assert scores.correct.tolist() == [True, True, False, True]
    means = scores.means()
    torch.testing.assert_close(means[f"reward/{user_module}:shout"], torch.tensor(1 / 3))  # over scored rows only
    torch.testing.assert_close(means["reward/format"], torch.tensor(0.5))
    torch.testing.assert_close(length_penalty(torch.tensor([3]), 10), torch.tensor([-0.3], dtype=torch.float64))


def test_user_function_failures_name_the_function(user_module):
    records, texts, ids = _records(2), ["a", "b"], [[1], [1]]
    for name, words in (("short", "returned 1 scores for 2"), ("words", "list of floats")):
        funcs = RewardFunctions([f"{user_module}:{name}"], None, reward_range="pm1", max_new_tokens=4)
        with pytest.raises(UserError, match=words) as info:
            funcs(texts, records, ids)
        assert f"'{user_module}:{name}'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="nope_pkg.mod:fn"):
        RewardFunctions(["nope_pkg.mod:fn"], None, reward_range="pm1", max_new_tokens=4)


def test_raising_reward_keeps_the_users_exception_and_frames(user_module):
    funcs = RewardFunctions([f"{user_module}:broken"], None, reward_range="pm1", max_new_tokens=4)
    with pytest.raises(KeyError, match="missing column") as info:
        funcs(["a", "b"], _records(2), [[1], [1]])
    frames = [(Path(str(tb.path)).name, tb.name) for tb in info.traceback]
    assert ("myrewards.py", "broken") in frames  # the user's own file and function
    assert f"raised by reward function '{user_module}:broken'" in info.value.__notes__


def test_callables_strings_and_registered_names_mix(user_module, tmp_path, monkeypatch):
    def tagged(completions, **kwargs):
        return [float(len(c)) for c in completions]

    def scaled(completions, factor, **kwargs):
        return [factor] * len(completions)

    (tmp_path / "cwdrewards_mix.py").write_text("def ones(completions, **kw):\n    return [1.0] * len(completions)\n")
    monkeypatch.chdir(tmp_path)  # found from the current folder, as python -m finds it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    funcs = RewardFunctions([tagged, "cwdrewards_mix:ones", "format", functools.partial(scaled, factor=3.0)],
                            [1.0, 2.0, 1.0, 0.5], reward_range="pm1", max_new_tokens=4)
    assert funcs.names == ["tagged", "cwdrewards_mix:ones", "format", "scaled"]
    scores = funcs(["ab", r"\boxed{3}"], _records(2), [[1], [1]])
    torch.testing.assert_close(scores.total, torch.tensor([2.0 + 2.0 + 1.5, 9.0 + 2.0 + 1.0 + 1.5]))
    assert list(scores.means()) == ["reward/tagged", "reward/cwdrewards_mix:ones", "reward/format", "reward/scaled"]


def test_duplicate_names_and_registered_plugin_reward():
    with pytest.raises(ConfigError, match="distinct"):
        RewardFunctions(["format", "format"], None, reward_range="pm1", max_new_tokens=4)
    REWARDS.register("exclaim", lambda completions, **kw: [float("!" in c) for c in completions])
    try:
        scores = RewardFunctions(["exclaim"], None, reward_range="pm1", max_new_tokens=4)(["a!", "b"], _records(2),
                                                                                         [[1], [1]])
        assert scores.per_function[:, 0].tolist() == [1.0, 0.0]
    finally:
        REWARDS._added.pop("exclaim")


def test_prompt_rows_without_answers_have_no_verdicts_and_math_says_what_is_missing():
    records = load_math_dataset([{"prompt": "hi", "lang": "en"}, {"prompt": "yo", "lang": "fr"}])
    seen = {}

    def spy(completions, lang, **kwargs):
        seen.update(lang=lang, answer="answer" in kwargs, correct=kwargs["correct"])
        return [0.0] * len(completions)

    scores = RewardFunctions([spy], None, reward_range="pm1", max_new_tokens=4)(["a", "b"], records, [[1], [1]])
    assert scores.correct is None and seen == {"lang": ["en", "fr"], "answer": False, "correct": None}
    with pytest.raises(DataError, match="'answer'"):
        RewardFunctions(["math"], None, reward_range="pm1", max_new_tokens=4)(["a", "b"], records, [[1], [1]])


def test_row_fields_pass_answer_id_and_metadata():
    fields = row_fields(_records(2))
    assert fields == {"answer": ["sum:4", "sum:5"], "id": ["p0", "p1"], "level": [0, 1]}


@pytest.mark.parametrize("overrides, words", [
    ({"reward_funcs": ["math", "bogus"]}, "reward_funcs"),
    ({"reward_funcs": []}, "reward_funcs"),
    ({"reward_funcs": ["math", "math"]}, "reward_funcs"),
    ({"reward_funcs": ["math", "format"], "reward_weights": [1.0]}, "reward_weights"),
    ({"overlong_buffer": 20, "max_new_tokens": 16}, "overlong_buffer"),
    ({"max_gen_batches": 0}, "max_gen_batches"),
])
def test_config_errors(overrides, words):
    with pytest.raises(ConfigError, match=words):
        GRPOConfig(**overrides)
    GRPOConfig(reward_funcs=["math", "pkg.mod:fn"], reward_weights=[1.0, 0.5])


def test_dynamic_sampling_selection():
    shaped = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [0.5, 0.5, 0.5], [2.0, 1.0, 0.0]])
    flags = informative_groups(shaped)
    assert flags.tolist() == [False, True, False, True]
    assert enough([flags[:2], flags[2:]], 2) and not enough([flags[:2], flags[2:]], 3)
    chosen, trained = pick_groups(flags, 3)  # 2 informative groups, then the first uninformative one as filler
    assert chosen.tolist() == [1, 3, 0] and trained.tolist() == [True, True, False]
    chosen, trained = pick_groups(torch.tensor([True, False, True, True]), 2)
    assert chosen.tolist() == [0, 2] and trained.all()


def test_loss_keep_masks_truncated_and_flat_groups():
    shaped = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    cut = torch.tensor([True, False, False, True])
    assert loss_keep(shaped, cut, filter_zero_variance=False, mask_truncated=False) is None
    assert loss_keep(shaped, cut, filter_zero_variance=False, mask_truncated=True).tolist() == [False, True, True,
                                                                                               False]
    assert loss_keep(shaped, cut, filter_zero_variance=True, mask_truncated=False).tolist() == [True, True, False,
                                                                                               False]


def test_rollouts_cat_equals_one_padded_batch():
    prompts = [[5, 6, 7], [8], [9, 10], [11, 12, 13, 14]]
    responses = [[1, 2], [3, 4, 5, 6], [7], [8, 9, 10]]
    whole = Rollouts.from_token_ids(prompts, responses, pad_id=0)
    parts = [Rollouts.from_token_ids(prompts[:2], responses[:2], pad_id=0),
             Rollouts.from_token_ids(prompts[2:], responses[2:], pad_id=0)]
    for p in parts:
        p.advantages = torch.arange(2.0)
        p.old_logprobs = -p.response_mask.float()
    joined = Rollouts.cat(parts, pad_id=0)
    for name in ("prompt_ids", "prompt_mask", "response_ids", "response_mask"):
        assert torch.equal(getattr(joined, name), getattr(whole, name)), name
    assert torch.equal(joined.old_logprobs, -whole.response_mask.float())
    assert joined.advantages.tolist() == [0.0, 1.0, 0.0, 1.0] and joined.keep is None


def _row(step, nu, correct=True, text="x", reward=1.0):
    return {"step": step, "prompt_id": "p", "response": text, "nu": nu, "correct": correct, "reward": reward}


def test_completion_log_resume(tmp_path):
    """The viewer (rlcore report --completions) is tested in tests/sweeps/test_report_views.py."""
    log = CompletionLog(tmp_path)
    log.append([_row(1, 0.1), _row(1, 0.9, text="novel one"), _row(1, 0.95, correct=False)])
    log.append([_row(2, 0.5), _row(2, 0.2, text="dull one"), _row(2, 0.7, text="fresh one"), _row(2, None)])
    assert len(read_completions(tmp_path)) == 7
    CompletionLog(tmp_path, resume_step=1)  # a resume from step 1 drops what a killed attempt logged after it
    assert [r["step"] for r in read_completions(tmp_path)] == [1, 1, 1]
    (tmp_path / "completions.jsonl").open("a").write(json.dumps(_row(2, 0.3))[:10])  # a torn last line
    assert len(read_completions(tmp_path)) == 3


def test_report_command_shows_logged_responses(tmp_path, capsys):
    from rlcore.cli import main

    CompletionLog(tmp_path).append([_row(3, 0.8, text="alpha"), _row(3, 0.4, text="beta")])
    assert main(["report", str(tmp_path), "--completions", "last", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "step 3" in out and "alpha" in out and "1 more distinct" in out
    assert main(["report", str(tmp_path / "none"), "--completions", "last"]) == 2


@pytest.mark.parametrize("module", ["rewards", "dynamic", "step", "policy"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"rlcore.algorithms.grpo.{module}"),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed
