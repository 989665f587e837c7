"""Report issue 27: training curves, one meaning of "best", data provenance beside D4RL numbers, completions view."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import yaml

from rlcore.algorithm import ALGORITHMS, AlgorithmSpec, Inputs
from rlcore.cli import main
from rlcore.errors import UserError
from rlcore.launcher import Job, launch
from rlcore.report import write_report
from rlcore.report.collect import Series, collect
from rlcore.report.completions import distinct_responses, format_completions
from rlcore.report.plots import _draw, _pyplot, auto_window, smooth, training_panels
from rlcore.run import TrainConfig

SCORE = "eval/normalized_score"


def _fake_run(path, config, records, data=None):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if data is not None:
        (path / "data.json").write_text(json.dumps(data))


def _grpo_cell(root, name, seeds=(0, 1), kl=True):
    for seed in seeds:
        records = [{"step": s, "train/reward": 0.1 * s + seed, "train/accuracy": 0.5, "train/entropy": 1.0 - 0.01 * s,
                    "train/response_tokens": 10.0, "geom/mean_nu": 0.3, "geom/mean_cos": 0.1,
                    **({"train/kl": 0.01 * s} if kl else {})} for s in range(1, 4)]
        records.append({"step": 3, "eval/pass@1": 0.25 + 0.25 * seed})  # one evaluation: a single point
        _fake_run(root / name / f"seed_{seed}", {"algo": "g2rl", "seed": seed, "max_steps": 3}, records)


# ---------------------------------------------------------------------------------------------------------------
# training_curves.png


def test_training_panels_are_the_logged_training_signals_and_the_novelty(tmp_path):
    _grpo_cell(tmp_path, "g2rl")
    _grpo_cell(tmp_path, "grpo", kl=False)
    cells = collect(tmp_path, "eval/pass@1")
    assert training_panels(cells) == ["train/accuracy", "train/entropy", "train/kl", "train/response_tokens",
                                      "train/reward", "geom/mean_nu"]
    assert training_panels(cells, ["train/reward", "geom/mean_cos"]) == ["train/reward", "geom/mean_cos"]
    with pytest.raises(UserError, match=r"--curves: no run logged train/nope; logged: eval/pass@1, geom/mean_cos"):
        training_panels(cells, ["train/reward", "train/nope"])
    text = write_report(tmp_path).read_text()
    assert "![training curves](training_curves.png)" in text and "train/kl" in text
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_report_cli_curves_option(tmp_path, capsys):
    _grpo_cell(tmp_path, "g2rl", seeds=(0,))
    assert main(["report", str(tmp_path), "--curves", "train/reward,train/kl", "--smooth", "2"]) == 0
    assert "Training signals ([training_curves.png](training_curves.png)): train/reward, train/kl." in \
        (tmp_path / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--curves", "train/loss"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "logged: eval/pass@1, geom/mean_cos, geom/mean_nu" in err
    assert main(["report", str(tmp_path), "--smooth", "0"]) == 2
    assert "--smooth must be at least 1" in capsys.readouterr().err


def test_vectorised_offline_run_counts_its_seeds_per_metric(tmp_path):
    """Two seeds trained in one run log eval/<key>/seed<s> per seed and training losses as one value."""
    records = [{"step": s, "train/v_loss": 1.0 / s, "train/v_mean": 2.0, "train/weight_nonzero": 0.4} for s in (1, 2)]
    records += [{"step": 2, SCORE: 15.0, f"{SCORE}/seed0": 10.0, f"{SCORE}/seed1": 20.0}]
    _fake_run(tmp_path / "odice", {"algo": "odice", "seeds": [0, 1]}, records)
    (cell,) = collect(tmp_path, SCORE)
    assert [s.seed for s in cell.series] == [0, 1] and [s.last for s in cell.series] == [10.0, 20.0]
    assert len(cell.signals["train/v_loss"]) == 1 and SCORE + "/seed0" not in cell.signals
    assert training_panels([cell]) == ["train/v_loss", "train/v_mean", "train/weight_nonzero"]


def test_single_point_is_a_marker_and_smoothing_is_a_trailing_mean():
    plt = _pyplot()
    fig, ax = plt.subplots()
    _draw(ax, [Series(0, [(5, 1.0)]), Series(1, [(5, 3.0)])], None, "one evaluation")
    marked = [line for line in ax.lines if line.get_marker() == "o"]
    assert marked and list(marked[0].get_xdata()) == [5] and list(marked[0].get_ydata()) == [2.0]
    _draw(ax, [Series(0, [(1, 1.0), (2, 3.0)])], None, "two points")
    assert [list(line.get_ydata()) for line in ax.lines if line.get_label() == "two points"] == [[1.0, 3.0]]
    plt.close(fig)
    assert smooth([1.0, 2.0, 3.0, 7.0], 2) == [1.0, 1.5, 2.5, 5.0]
    assert smooth([1.0, 2.0], 1) == [1.0, 2.0]
    assert auto_window(19) == 1 and auto_window(200) == 20


# ---------------------------------------------------------------------------------------------------------------
# one meaning of "best": the best mean over seeds at one step, in the closing line, summary.json and the report


class _Scripted:
    """An algorithm whose evaluations are scripted: two seeds, their mean is the score."""

    per_seed = {1: (1.0, 9.0), 2: (4.0, 4.0), 3: (3.0, 3.0)}  # mean 5, 4, 3; seed 0 peaks at step 2, seed 1 at 1

    def __init__(self):
        self.step = 0

    def update(self, batch):
        self.step += 1
        return {"loss": torch.tensor(1.0)}

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = state["step"]

    def sample(self):
        return None

    def evaluate(self, _):
        a, b = self.per_seed[self.step]
        return {"score": (a + b) / 2, "eval/score/seed0": a, "eval/score/seed1": b}


def test_best_is_the_best_mean_in_summary_closing_line_and_report(tmp_path):
    algo = _Scripted()
    cfg = TrainConfig(max_steps=3, eval_every=1, log_every=1, ckpt_every=3, tensorboard=False, progress=False)
    (tmp_path / "run").mkdir()
    spec = AlgorithmSpec(name="scripted", title="Scripted", help="", config=TrainConfig, load_policy=None,
                         build=lambda cfg, run, inputs: Job(algo, algo, evaluate=algo.evaluate, best_key="eval/score"))
    run_dir = launch(spec, cfg, Inputs(), run_dir=tmp_path / "run" / "x").run_dir
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["best_mean"] == {"metric": "eval/score", "value": 5.0, "step": 1}
    cfg_yaml = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**cfg_yaml, "seeds": [0, 1]}))
    text = write_report(run_dir, "eval/score").read_text()
    assert "| best mean ± se (step) |" in text and "| 5.00 ± 4.00 (step 1) |" in text
    assert "mean_of_per_seed_best" in text, "the per-seed maxima are named as such"
    # the offline closing line, on the same kind of summary (metric and per-seed keys as the offline evaluator logs)
    offline = {"last": {"step": 3, "metrics": {SCORE: 3.0, f"{SCORE}/seed0": 3.0, f"{SCORE}/seed1": 3.0}},
               "best": {"step": 1, "metrics": {SCORE: 5.0, f"{SCORE}/seed0": 1.0, f"{SCORE}/seed1": 9.0}}}
    line = ALGORITHMS.get("odice").describe(SimpleNamespace(summary={**offline, "best_key": SCORE},
                                                              run_dir=tmp_path)).splitlines()[0]
    assert line == "O-DICE: normalised score (mean over 2 seeds) last 3.0 (step 3), best mean 5.0 (step 1)"


# ---------------------------------------------------------------------------------------------------------------
# provenance: published D4RL numbers beside D4RL data only


@pytest.mark.parametrize("data, label", [({"source": "generated", "policy": "sb3:x.zip", "seed": 0},
                                          "generated (not D4RL)"),
                                         ({"source": "minari", "dataset_id": "mujoco/hopper/medium-v0",
                                           "d4rl_compatible": False}, "Minari (not D4RL)"),
                                         ({"source": "user"}, "user data (not D4RL)"),
                                         (None, None)])
def test_no_d4rl_table_beside_data_that_is_not_d4rl(tmp_path, data, label):
    _fake_run(tmp_path / "odice" / "seed_0", {"algo": "odice", "seed": 0, "task": "hopper-medium-v2"},
              [{"step": 100, SCORE: 20.0}], data)
    text = write_report(tmp_path, SCORE).read_text()
    assert "paper" not in text and "CORL" not in text
    if label is None:  # an older run without data.json: unknown, no data column either
        assert "| data |" not in text
    else:
        assert f"| odice | 1 | 100 | 20.00 | 20.00 (step 100) | {label} |" in text
        assert "not comparable with the published tables" in text
        assert "Not D4RL data: no published D4RL numbers beside `odice`." in text


def test_d4rl_numbers_beside_the_d4rl_cell_only(tmp_path):
    for name, source in (("d4rl", "d4rl"), ("gen", "generated")):
        _fake_run(tmp_path / name / "seed_0", {"algo": "odice", "seed": 0, "task": "hopper-medium-v2"},
                  [{"step": 100, SCORE: 20.0}], {"source": source})
    lines = write_report(tmp_path, SCORE).read_text().splitlines()
    header = next(line for line in lines if line.startswith("| cell"))
    assert "O-DICE (paper)" in header and "| data |" in header
    d4rl = next(line for line in lines if line.startswith("| d4rl "))
    gen = next(line for line in lines if line.startswith("| gen "))
    assert "| D4RL | " in d4rl and "86.1" in d4rl
    assert "generated (not D4RL)" in gen and not any(ch.isdigit() for ch in gen.split("(not D4RL)")[1])


# ---------------------------------------------------------------------------------------------------------------
# the completions viewer


def _completion(response, advantage, prompt_id="arith/683", prompt="Give two positive integers that add up to 7.",
                **more):
    return {"step": 4, "round": 0, "group": 0, "prompt_id": prompt_id, "prompt": prompt, "response": response,
            "rewards": {"math": 1.0 if response == "3+4" else -1.0, "format": 0.0}, "reward": 1.0 if response == "3+4"
            else -1.0, "shaped_reward": 1.2 if response == "3+4" else -1.0, "advantage": advantage, "nu": 0.5,
            "length": 3, "truncated": False, "correct": response == "3+4", "trained": True, **more}


def test_completions_view_groups_identical_responses_with_prompt_and_scores(tmp_path, capsys):
    long_prompt = "Give two positive integers that add up to 7. " + "Answer briefly. " * 30
    records = [_completion("3+4", 0.9), _completion("3+4", 1.1), _completion("3 + 4\n", 0.5), _completion("8", -1.0),
               _completion("6+1", -0.2, prompt_id="arith/9", prompt="Sum to 7?", group=1),
               {**_completion("3+4", 0.0), "step": 2}]
    records[0]["prompt"] = records[1]["prompt"] = records[2]["prompt"] = records[3]["prompt"] = long_prompt
    (tmp_path / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    distinct = distinct_responses(records[:4])
    assert [(d["response"], d["count"]) for d in distinct] == [("3+4", 2), ("3 + 4\n", 1), ("8", 1)]
    assert distinct[0]["advantage"] == pytest.approx(1.0) and distinct[0]["rewards"] == {"math": 1.0, "format": 0.0}
    text = format_completions(tmp_path, "last", top=2)
    lines = text.splitlines()
    assert lines[0].startswith("step 4: 5 responses to 2 prompts")
    assert lines[1].startswith("prompt arith/683: Give two positive integers that add up to 7. Answer briefly.")
    assert lines[1].endswith("...  [4 responses, 3 distinct]") and len(lines[1]) < 220, "the prompt is shortened"
    assert lines[2] == ("    x2    math 1.00  format 0.00  reward +1.00  shaped +1.20  adv +1.00  nu 0.50  correct"
                        "  | 3+4")
    assert lines[3] == ("    x1    math -1.00  format 0.00  reward -1.00  shaped -1.00  adv +0.50  nu 0.50  wrong"
                        "  | 3 + 4"), "the response on one line"
    assert lines[4] == "    ... 1 more distinct responses (--top 3 shows all)"
    assert lines[5].startswith("prompt arith/9: Sum to 7?") and "adv -0.20" in lines[6] and "wrong" in lines[6]
    assert "step 2: 1 responses to 1 prompts" in format_completions(tmp_path, "2")
    with pytest.raises(UserError, match="no completions logged at step 3; steps with some: 2, 4"):
        format_completions(tmp_path, "3")
    assert main(["report", str(tmp_path), "--completions", "last", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "x2" in out and "1 more distinct" not in out and "2 more distinct responses" in out
    assert not math.isnan(distinct[2]["nu"])
