"""The trainer's TRL/DAPO features on the tiny Qwen3: reward functions and their logs, mask_truncated, dynamic
sampling (and how it combines with G2RL), the completions log, and a 2-step run with every switch on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402

import rlcore  # noqa: E402
from rlcore.algorithms.g2rl.config import G2RLConfig  # noqa: E402
from rlcore.algorithms.grpo.config import GRPOConfig  # noqa: E402
from rlcore.algorithms.grpo.data import PromptSampler  # noqa: E402
from rlcore.algorithms.grpo.trainer import GRPOTrainer  # noqa: E402
from rlcore.distributed import Distributed  # noqa: E402
from rlcore.errors import DataError, UserError  # noqa: E402
from rlcore.logging import read_metrics  # noqa: E402

# the random tiny model never answers and never stops within 5 tokens: every group is uniform, every response cut
TINY = dict(model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain",
            dataset_limit=16, prompts_per_step=2, group_size=4, max_new_tokens=5, mini_batch_size=4,
            micro_batch_size=4, logprob_batch_size=8, lr=1e-3, lr_schedule="constant", warmup_ratio=0.0, beta=0.0,
            weight_decay=0.0, device="cpu", export_model=False, tensorboard=False, progress=False)


@pytest.fixture(scope="module", autouse=True)
def _tokenizer_once():
    """The trainers of this module share one tokenizer (parsing the 18 MB Qwen tokenizer takes seconds)."""
    from transformers import AutoTokenizer

    real, cache = AutoTokenizer.from_pretrained, {}

    def cached(path, *args, **kwargs):
        if str(path) not in cache:
            cache[str(path)] = real(path, *args, **kwargs)
        return cache[str(path)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AutoTokenizer, "from_pretrained", cached)
        yield


@pytest.fixture
def user_rewards(tmp_path, monkeypatch):
    """``featrewards:first_token`` (unequal rewards for a random model), ``odd_prompt`` (unequal only on odd
    problems) and ``short`` (one score too few)."""
    (tmp_path / "featrewards.py").write_text(
        "def first_token(completion_ids, **kw):\n"
        "    return [float(c[0] % 7) for c in completion_ids]\n"
        "def odd_prompt(id, completion_ids, **kw):\n"
        "    return [float(int(i.split('/')[1]) % 2 * (c[0] % 7)) for i, c in zip(id, completion_ids)]\n"
        "def short(completions, **kw):\n"
        "    return [1.0] * (len(completions) - 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "featrewards"


def _trainer(cls=GRPOConfig, completion_log=None, **overrides) -> GRPOTrainer:
    torch.manual_seed(0)
    cfg = cls(**{**TINY, **overrides})
    return GRPOTrainer(cfg, Distributed("cpu"), prompts=PromptSampler(16, cfg.prompts_per_step, seed=1),
                       completion_log=completion_log)


def _moved(trainer, indices) -> tuple[bool, dict]:
    before = {k: v.clone() for k, v in trainer.trainable_state().items()}
    metrics = trainer.update(indices)
    return any(not torch.equal(before[k], v) for k, v in trainer.trainable_state().items()), metrics


def test_mask_truncated_leaves_cut_responses_out(user_rewards):
    moved, metrics = _moved(_trainer(reward_funcs=[f"{user_rewards}:first_token"]), [0, 1])
    assert moved and metrics["truncated_frac"] == 1.0
    moved, metrics = _moved(_trainer(reward_funcs=[f"{user_rewards}:first_token"], mask_truncated=True), [0, 1])
    assert not moved and metrics["grad_norm"] == 0.0  # every response was cut: nothing in the loss, no step


def test_reward_functions_are_weighted_and_logged():
    trainer = _trainer(reward_funcs=["math", "length"], reward_weights=[1.0, 0.5])
    metrics = trainer.update([0, 1])
    assert metrics["train/reward/math"] == -1.0  # never correct
    torch.testing.assert_close(metrics["train/reward/length"], torch.tensor(-1.0))  # 5 of 5 tokens
    torch.testing.assert_close(metrics["reward"], torch.tensor(-1.5))
    assert metrics["accuracy"] == 0.0


def test_failing_user_reward_stops_with_its_name(user_rewards):
    with pytest.raises(UserError, match=f"'{user_rewards}:short' returned 7 scores for 8"):
        _trainer(reward_funcs=[f"{user_rewards}:short"]).update([0, 1])


@pytest.mark.parametrize("rounds", [1, 3])
def test_dynamic_sampling_samples_until_groups_carry_signal(rounds):
    """Plain GRPO: every group of the random model is uniform, so the step draws max_gen_batches rounds, drops
    them all and makes no optimiser step."""
    moved, metrics = _moved(_trainer(dynamic_sampling=True, max_gen_batches=rounds), [0, 1])
    assert metrics["train/gen_rounds"] == rounds and metrics["train/dropped_frac"] == 1.0 and not moved
    assert metrics["time/generate_s"] > 0


def test_dynamic_sampling_with_g2rl_keeps_rescued_groups():
    """G2RL (literal) gives uniform groups unequal shaped rewards: they count as informative, one round suffices
    and the step trains; scaler 'none' leaves them uniform, so they are dropped."""
    moved, metrics = _moved(_trainer(G2RLConfig, dynamic_sampling=True, max_gen_batches=3), [0, 1])
    assert metrics["train/gen_rounds"] == 1 and metrics["train/dropped_frac"] == 0.0 and moved
    assert metrics["geom/rescued_frac"] == 1.0
    moved, metrics = _moved(_trainer(G2RLConfig, scaler="none", dynamic_sampling=True, max_gen_batches=2), [0, 1])
    assert metrics["train/gen_rounds"] == 2 and metrics["train/dropped_frac"] == 1.0 and not moved


def test_dynamic_sampling_trains_on_the_informative_groups(user_rewards):
    """A reward that makes only some groups informative: the batch takes them first, drops the rest."""
    rows = []
    trainer = _trainer(reward_funcs=[f"{user_rewards}:odd_prompt"], dynamic_sampling=True, max_gen_batches=4,
                       log_completions_every=1,
                       completion_log=type("Sink", (), {"append": lambda self, r: rows.extend(r)})())
    moved, metrics = _moved(trainer, [0, 1])
    odd = {int(r["prompt_id"].split("/")[1]) % 2 for r in rows if r["trained"]}
    assert moved and odd == {1}  # only groups of odd problems (unequal rewards) were trained on
    trained_groups = {(r["round"], r["group"]) for r in rows if r["trained"]}
    assert len(trained_groups) == 2 and len(rows) == metrics["train/gen_rounds"] * 8
    assert metrics["train/dropped_frac"] == pytest.approx(1 - 2 / (2 * metrics["train/gen_rounds"]))


def test_two_step_run_with_every_switch(tmp_path):
    cfg = G2RLConfig(**{**TINY, "max_steps": 2, "reward_funcs": ["math", "format"], "reward_weights": [1.0, 0.1],
                        "dynamic_sampling": True, "max_gen_batches": 2, "mask_truncated": True,
                        "overlong_buffer": 2, "log_completions_every": 1, "ckpt_every": 2})
    run_dir = tmp_path / "run"
    rlcore.train(cfg, run_dir=run_dir)
    records = [r for r in read_metrics(run_dir) if "train/reward" in r]
    keys = ("train/reward/math", "train/reward/format", "train/reward/overlong", "train/gen_rounds",
            "train/dropped_frac", "geom/mean_nu")
    assert len(records) == 2 and all(k in r for r in records for k in keys)
    lines = [json.loads(x) for x in (run_dir / "completions.jsonl").read_text().splitlines()]
    per_step = {s: sum(1 for x in lines if x["step"] == s) for s in (1, 2)}
    assert per_step == {s: int(r["train/gen_rounds"]) * 8 for s, r in zip((1, 2), records)}  # every response
    first = lines[0]
    assert set(first) >= {"prompt_id", "response", "rewards", "reward", "shaped_reward", "advantage", "nu", "length",
                          "truncated", "correct", "trained"}
    assert set(first["rewards"]) == {"math", "format", "overlong"} and first["nu"] is not None
    assert first["truncated"] and first["length"] == 5 and not any(x["trained"] for x in lines)  # all masked


PROMPT_ROWS = [{"prompt": f"Count to {i}:", "target": i} for i in range(8)]


def test_prompt_only_rows_train_two_steps_on_a_callable_reward(tmp_path):
    def digits(completions, target, **kwargs):  # a row field ('target') arrives as a list, TRL-style
        return [float(sum(ch.isdigit() for ch in c) + t) for c, t in zip(completions, target)]

    cfg = GRPOConfig(**{**TINY, "max_steps": 2, "ckpt_every": 2})
    rlcore.train(cfg, run_dir=tmp_path / "run", dataset=PROMPT_ROWS, reward_funcs=[digits])
    records = [r for r in read_metrics(tmp_path / "run") if "train/reward" in r]
    assert len(records) == 2 and all(r["train/reward/digits"] == r["train/reward"] for r in records)
    assert "train/accuracy" not in records[0]  # no answers, no verdicts
    with pytest.raises(DataError, match="'answer'"):  # the default reward, math, needs answers: before the model
        GRPOTrainer(cfg, Distributed("cpu"), train_data=PROMPT_ROWS)


def test_a_raising_reward_from_the_current_folder_keeps_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "cwdrewards_boom.py").write_text("def boom(completions, **kwargs):\n    return 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    trainer = GRPOTrainer(GRPOConfig(**TINY, reward_funcs=["cwdrewards_boom:boom"]), Distributed("cpu"),
                          train_data=PROMPT_ROWS)
    with pytest.raises(ZeroDivisionError) as info:
        trainer.update([0, 1])
    assert ("cwdrewards_boom.py", "boom") in [(Path(str(tb.path)).name, tb.name) for tb in info.traceback]
