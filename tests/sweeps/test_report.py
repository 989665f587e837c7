"""Reports (`rlcore report`) on hand-made run folders: numbers against a hand computation, files, errors."""

from __future__ import annotations

import csv
import json
import math
import struct

import pytest
import yaml
from conftest import run_cli

from rlcore.cli import main
from rlcore.report import mean_stderr, write_report
from rlcore.report.collect import CellResult
from rlcore.report.plots import curve_panels


def _fake_run(path, config, records):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_numbers_equal_hand_computation(tmp_path):
    m = "eval/normalized_score"
    curves = {("a", 0): [10, 30, 20], ("a", 1): [12, 44, 40], ("a", 2): [5, 6, 7], ("b", 0): [50, 40, 45]}
    for (cell, seed), values in curves.items():
        records = [{"step": 100 * (i + 1), m: v, "train/loss": 1.0} for i, v in enumerate(values)]
        records.insert(1, {"step": 150, "train/loss": 0.5, "geom/mean_cosine": 0.1 * seed})
        # cell b planned 500 steps and stopped at 300: the table must say so
        config = {"algo": "x", "seed": seed, "max_steps": 500 if cell == "b" else 300}
        _fake_run(tmp_path / cell / f"seed_{seed}", config, records)
    # a vectorised run (two seeds in one run) in cell c
    _fake_run(tmp_path / "c" / "seeds_0-1", {"algo": "x", "seeds": [0, 1]},
              [{"step": 100, f"{m}/seed0": 1.0, f"{m}/seed1": 3.0, m: 2.0},
               {"step": 200, f"{m}/seed0": 5.0, f"{m}/seed1": 2.0, m: 3.5}])
    report = write_report(tmp_path, f"{m},geom/mean_cosine")
    all_rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    rows = {r["cell"]: r for r in all_rows if r["metric"] == m}
    last_a = [20, 40, 7]
    at_200 = [30, 44, 6]  # step 200 has the best mean over seeds (26.67), though seed 2 peaks later and seed 1 is
    per_seed_best = [30, 44, 7]  # lower at 300: the mean of per-seed maxima (27.0) is no step's mean

    def se(values):
        m = sum(values) / len(values)
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))

    assert float(rows["a"]["last_mean"]) == pytest.approx(sum(last_a) / 3)
    assert float(rows["a"]["last_stderr"]) == pytest.approx(se(last_a))
    assert float(rows["a"]["best_mean"]) == pytest.approx(sum(at_200) / 3)
    assert float(rows["a"]["best_stderr"]) == pytest.approx(se(at_200)) and rows["a"]["best_step"] == "200"
    assert float(rows["a"]["mean_of_per_seed_best"]) == pytest.approx(sum(per_seed_best) / 3)
    assert rows["a"]["seeds"] == "3" and rows["b"]["seeds"] == "1"
    assert math.isnan(float(rows["b"]["last_stderr"]))
    assert float(rows["c"]["last_mean"]) == pytest.approx(3.5) and float(rows["c"]["best_mean"]) == pytest.approx(3.5)
    assert float(rows["c"]["mean_of_per_seed_best"]) == pytest.approx(4.0), "seed 0 peaks at 200, seed 1 at 100"
    text = report.read_text()
    assert "| cell | seeds | step | last (mean ± se) | best mean ± se (step) |" in text
    assert f"| a | 3 | 300 | 22.33 ± 9.60 | 26.67 ± {se(at_200):.2f} (step 200) |" in text
    assert "| b | 1 | 300 (unfinished: 300 of 500) | 45.00 | 50.00 (step 100) |" in text
    assert rows["a"]["finished"] == "True" and rows["b"]["finished"] == "False" and rows["c"]["finished"] == "True"
    geom = [r for r in all_rows if r["metric"] == "geom/mean_cosine"]
    assert len(geom) == 2 and all(r["best_mean"] == "" for r in geom), "no 'best' for a diagnostic"
    assert "| cell | seeds | step | last (mean ± se) |\n" in text, "the geom table has no best column"
    assert "| a | 3 | 150 | 0.10 ± 0.06 |" in text, "a mid-run diagnostic: finished all the same"
    for png in ("learning_curves.png", "final_scores.png", "geometry.png", "training_curves.png"):
        w, h = _png_size(tmp_path / png)
        assert w >= 400 and h >= 300, png


def test_report_on_a_single_seed_run_directory(tmp_path):
    run = tmp_path / "seed_3"
    _fake_run(run, {"algo": "x", "seed": 3}, [{"step": 10, "eval/score": 1.0}, {"step": 20, "eval/score": 2.0}])
    write_report(run, "eval/score")
    rows = list(csv.DictReader((run / "report.csv").open()))
    assert len(rows) == 1 and rows[0]["cell"] == "seed_3" and float(rows[0]["last_mean"]) == 2.0


def test_mean_stderr():
    assert mean_stderr([1.0, 3.0]) == (2.0, 1.0)
    mean, err = mean_stderr([4.0])
    assert mean == 4.0 and math.isnan(err)


def test_report_cli_errors(tmp_path):
    result = run_cli("report", str(tmp_path / "missing"))
    assert result.returncode == 2 and "is not a folder" in result.stderr
    _fake_run(tmp_path / "r", {"algo": "x", "seed": 0}, [{"step": 1, "train/loss": 1.0}])
    result = run_cli("report", str(tmp_path), "--metric", "eval/nope")
    assert result.returncode == 2 and "metrics found: train/loss" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# which metric, and an empty table


def _report(capsys, *args):
    """``rlcore report ARGS`` in this process (a subprocess would spend seconds importing): (code, stdout, stderr)."""
    code = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_picks_the_metric_the_runs_logged(tmp_path, capsys):
    """--env runs log eval/return_mean only (no normalised score); a vectorised run logs it per seed."""
    for seed, values in ((0, [-900.0, -400.0]), (1, [-800.0, -600.0])):
        _fake_run(tmp_path / "env" / f"seed_{seed}", {"algo": "odice", "env": "Pendulum-v1", "seed": seed},
                  [{"step": 10 * (i + 1), "eval/return_mean": v, "train/v_loss": 1.0} for i, v in enumerate(values)])
    _fake_run(tmp_path / "vec" / "seeds_0-1", {"algo": "odice", "env": "Pendulum-v1", "seeds": [0, 1]},
              [{"step": 10, "eval/return_mean/seed0": -300.0, "eval/return_mean/seed1": -100.0}])
    code, out, err = _report(capsys, tmp_path)
    assert code == 0, err
    assert "Metric `eval/return_mean`" in out
    assert "| env | 2 | 20 | -500.00 ± 100.00 | -500.00 ± 100.00 (step 20) |" in out
    assert "| vec | 2 | 10 | -200.00 ± 100.00 |" in out


@pytest.mark.parametrize("first, second", [("eval/normalized_score", "eval/return_mean"),
                                           ("eval/return_mean", "eval/pass@1")])
def test_report_prefers_score_then_return_then_pass_at_1(tmp_path, first, second):
    _fake_run(tmp_path / "a", {"algo": "x"}, [{"step": 1, second: 1.0}])
    _fake_run(tmp_path / "b", {"algo": "x"}, [{"step": 1, first: 2.0, second: 3.0}])
    write_report(tmp_path)
    assert {r["metric"] for r in csv.DictReader((tmp_path / "report.csv").open())} == {first}


def test_report_g2rl_runs_without_pass_at_1_is_an_error_not_an_empty_table(tmp_path, capsys):
    """G2RL runs stopped before their first evaluation have only train/* and geom/* metrics."""
    _fake_run(tmp_path / "g2rl" / "seed_0", {"algo": "g2rl", "seed": 0},
              [{"step": 1, "train/reward": 0.5, "geom/mean_cos": 0.2}])
    for args in ([], ["--metric", "eval/pass@1"], ["--metric", "geom/mean_cos,eval/pass@8"]):
        code, out, err = _report(capsys, tmp_path, *args)
        assert code == 2, (args, out)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: no run under"), err
        assert "metrics found: geom/mean_cos, train/reward" in err
    assert not (tmp_path / "report.md").exists()


def test_report_uses_the_metric_of_the_sweep_spec(tmp_path, capsys):
    _fake_run(tmp_path / "c" / "seed_0", {"algo": "x", "seed": 0},
              [{"step": 1, "eval/score": 4.0, "eval/normalized_score": 9.0}])
    (tmp_path / "sweep.json").write_text(json.dumps({"spec": {"metric": "eval/score"}, "runs": {}}))
    code, out, _ = _report(capsys, tmp_path)
    assert code == 0 and "| c | 1 | 1 | 4.00 | 4.00 (step 1) |" in out
    (tmp_path / "sweep.json").write_text(json.dumps({"spec": {"metric": None}, "runs": {}}))
    code, out, _ = _report(capsys, tmp_path)
    assert code == 0 and "| c | 1 | 1 | 9.00 | 9.00 (step 1) |" in out


# ---------------------------------------------------------------------------------------------------------------
# relative to a baseline algorithm (named by the user or the sweep spec: the report names no algorithm)


def _cell(root, name, config, lasts):
    for seed, last in enumerate(lasts):
        _fake_run(root / name / f"seed_{seed}", {**config, "seed": seed},
                  [{"step": 100, "eval/normalized_score": last - 50.0}, {"step": 200, "eval/normalized_score": last}])


def test_relative_to_the_baseline_is_the_difference_to_its_cell_on_the_same_data(tmp_path):
    pend = {"env": "Pendulum-v1", "dataset": "pend.hdf5"}
    _cell(tmp_path, "pend/odice", {"algo": "odice", **pend}, [10.0, 20.0])  # 15 ± 5
    _cell(tmp_path, "pend/bc", {"algo": "bc", **pend}, [4.0, 6.0])  # 5 ± 1
    _cell(tmp_path, "pend/iql", {"algo": "iql", **pend}, [7.0])  # 7, no error with one seed
    _cell(tmp_path, "other/odice", {"algo": "odice", "env": "Pendulum-v1", "dataset": "other.hdf5"}, [30.0])
    assert "relative to" not in write_report(tmp_path).read_text(), "no baseline named: no column"
    (tmp_path / "sweep.json").write_text(json.dumps({"spec": {"baseline": "bc"}, "runs": {}}))
    text = write_report(tmp_path).read_text()
    assert "| cell | seeds | step | last (mean ± se) | best mean ± se (step) | relative to bc (last) |" in text
    se = math.sqrt(5.0**2 + 1.0**2)
    assert f"| pend/odice | 2 | 200 | 15.00 ± 5.00 | 15.00 ± 5.00 (step 200) | +10.00 ± {se:.2f} |" in text
    assert "| pend/iql | 1 | 200 | 7.00 | 7.00 (step 200) | +2.00 |" in text
    assert "| pend/bc | 2 | 200 | 5.00 ± 1.00 | 5.00 ± 1.00 (step 200) |  |" in text, "the baseline itself: blank"
    assert "| other/odice | 1 | 200 | 30.00 | 30.00 (step 200) |  |" in text, "no baseline on that dataset: blank"
    assert "minus the last mean of the bc cell" in text
    rows = {r["cell"]: r for r in csv.DictReader((tmp_path / "report.csv").open())}
    assert float(rows["pend/odice"]["relative_to_baseline"]) == pytest.approx(10.0)
    assert float(rows["pend/odice"]["relative_to_baseline_stderr"]) == pytest.approx(se)
    assert rows["pend/bc"]["relative_to_baseline"] == "" and rows["other/odice"]["relative_to_baseline"] == ""
    text = write_report(tmp_path, baseline="iql").read_text()  # the argument wins over the spec
    assert "relative to iql (last)" in text
    assert "| pend/odice | 2 | 200 | 15.00 ± 5.00 | 15.00 ± 5.00 (step 200) | +8.00" in text


def test_no_relative_to_column_without_a_baseline_cell_or_for_diagnostics(tmp_path):
    _cell(tmp_path, "odice", {"algo": "odice", "env": "Pendulum-v1"}, [10.0])
    assert "relative to" not in write_report(tmp_path, baseline="bc").read_text()
    _cell(tmp_path, "bc", {"algo": "bc", "env": "Pendulum-v1"}, [4.0])
    for seed_dir in (tmp_path / "bc").iterdir():
        with (seed_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"step": 200, "train/loss": 1.0}) + "\n")
    text = write_report(tmp_path, "train/loss", baseline="bc").read_text()
    assert "relative to" not in text and "best" not in text.split("\n\n")[2]


def test_learning_curves_get_one_panel_per_dataset_when_cells_are_data_slash_algo(tmp_path):
    names = ["hopper/odice", "hopper/bc", "walker/odice", "walker/bc", "cheetah/iql"]
    panels = curve_panels([CellResult(n) for n in names])
    assert {g: [c.name for c in cs] for g, cs in panels.items()} == {
        "hopper": ["hopper/odice", "hopper/bc"], "walker": ["walker/odice", "walker/bc"], "cheetah": ["cheetah/iql"]}
    # one group, or a name without a group: a single panel with every cell
    assert list(curve_panels([CellResult("hopper/odice"), CellResult("hopper/bc")])) == [""]
    assert list(curve_panels([CellResult("hopper/odice"), CellResult("grpo")])) == [""]
    m = "eval/normalized_score"
    for name in names:
        _fake_run(tmp_path / name / "seed_0", {"algo": "x", "seed": 0}, [{"step": 100, m: 1.0}, {"step": 200, m: 2.0}])
    write_report(tmp_path, m)
    w, h = _png_size(tmp_path / "learning_curves.png")
    assert (w, h) == (2 * 770, 2 * 495), "three panels: 2 columns x 2 rows of 7 x 4.5 inches at 110 dpi"


def test_published_numbers_only_next_to_the_normalised_score(tmp_path):
    m = "eval/normalized_score"
    _fake_run(tmp_path / "odice" / "seed_0", {"algo": "odice", "seed": 0, "task": "hopper-medium-v2"},
              [{"step": 100, m: 20.0, "eval/return_mean": 700.0, "train/v_mean": 50.0}])
    (tmp_path / "odice" / "seed_0" / "data.json").write_text(json.dumps({"source": "d4rl", "sha256": "0" * 64}))
    text = write_report(tmp_path, f"{m},eval/return_mean,train/v_mean").read_text()
    tables = text.split("Metric `")[1:]
    assert "O-DICE (paper)" in tables[0] and "| 86.1 |" in tables[0] and "IQL (CORL, last)" in tables[0]
    assert all("paper" not in t and "CORL" not in t for t in tables[1:]), "a return or v_mean is not a D4RL score"
