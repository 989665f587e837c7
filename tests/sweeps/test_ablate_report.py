"""Sweeps (`rlcore ablate`) and reports (`rlcore report`) on tiny toy runs and hand-made run folders."""

from __future__ import annotations

import csv
import json
import math
import struct
import subprocess
import sys
import time

import pytest
import yaml
from conftest import REPO, run_cli

from rlcore import ablate
from rlcore.ablate import is_finished, load_spec, plan
from rlcore.errors import ConfigError
from rlcore.report import mean_stderr, write_report

TINY = {"max_steps": 40, "eval_every": 20, "ckpt_every": 20, "log_every": 10, "tensorboard": False}


def _spec(tmp_path, **fields):
    spec = {"base": str(REPO / "configs/toy/demo.yaml"), "set": TINY, "seeds": [0, 1], "metric": "eval/score",
            **fields}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"grid": {"lr": []}}, "sweep grid 'lr' is empty"),
        ({"seeds": []}, "non-empty list"),
        ({"workerz": 3}, "unknown config key 'workerz' for SweepSpec; did you mean 'workers'"),
        ({"base": "nope.yaml"}, "not found"),
        ({"backend": "slurm"}, "must be one of"),
        ({"cells": [{"name": "a"}, {"name": "a"}]}, "cell names must be unique"),
    ],
)
def test_bad_specs_are_clear(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(_spec(tmp_path, **fields))


def test_empty_spec_and_cli_error_is_one_line(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_spec(empty)
    result = run_cli("ablate", str(_spec(tmp_path, grid={"lr": []})), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_plan_is_grid_times_seeds_plus_cells(tmp_path):
    spec, base, algo = load_spec(_spec(tmp_path, grid={"lr": [0.001, 0.01], "hidden": [8, 16]},
                                       cells=[{"name": "wide", "set": {"hidden": 128}}]))
    runs = plan(spec, base, algo, tmp_path / "out")
    assert algo == "toy" and len(runs) == (4 + 1) * 2
    assert {r.cell for r in runs} == {"lr=0.001,hidden=8", "lr=0.001,hidden=16", "lr=0.01,hidden=8",
                                      "lr=0.01,hidden=16", "wide"}
    assert runs[0].run_dir == tmp_path / "out" / "lr=0.001,hidden=8" / "seed_0"
    assert "seed=1" in runs[1].argv and "threads=1" in runs[1].argv


def test_plan_with_only_named_cells_has_no_base_cell(tmp_path):
    spec, base, algo = load_spec(_spec(tmp_path, cells=[{"name": "a"}, {"name": "b", "set": {"lr": 0.01}}]))
    assert [r.cell for r in plan(spec, base, algo, tmp_path)] == ["a", "a", "b", "b"]
    spec, base, algo = load_spec(_spec(tmp_path))
    assert [r.cell for r in plan(spec, base, algo, tmp_path)] == ["base", "base"]


def test_cells_with_their_own_preset_run_their_algorithm(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("algo: other\nlr: 0.1\n")
    spec, base, algo = load_spec(_spec(tmp_path, cells=[{"name": "mine"}, {"name": "theirs", "base": str(other)}],
                                       seeds=[0]))
    runs = {r.cell: r.argv for r in plan(spec, base, algo, tmp_path)}
    assert runs["mine"][:2] == ["train", "toy"] and runs["theirs"][:2] == ["train", "other"]
    assert runs["theirs"][3] == str(other)
    with pytest.raises(ConfigError, match="not found"):
        load_spec(_spec(tmp_path, cells=[{"name": "x", "base": "missing.yaml"}]))


def _final_losses(out):
    results = {}
    for summary in sorted(out.rglob("summary.json")):
        results[str(summary.parent.relative_to(out))] = json.loads(summary.read_text())["last"]["metrics"]
    return results


def test_two_backends_give_identical_results_and_restart_skips(tmp_path):
    spec = _spec(tmp_path, grid={"lr": [0.001, 0.003]})
    seq = run_cli("ablate", str(spec), "--out", str(tmp_path / "seq"), "--backend", "sequential")
    assert seq.returncode == 0, seq.stderr
    pool = run_cli("ablate", str(spec), "--out", str(tmp_path / "pool"), "--backend", "process", "--workers", "2")
    assert pool.returncode == 0, pool.stderr
    a, b = _final_losses(tmp_path / "seq"), _final_losses(tmp_path / "pool")
    assert len(a) == 4 and a == b
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "pool").rglob("summary.json")}
    again = run_cli("ablate", str(spec), "--out", str(tmp_path / "pool"), "--backend", "process")
    assert again.returncode == 0 and "4/4 runs finished" in again.stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "pool").rglob("summary.json")}
    status = json.loads((tmp_path / "pool" / "sweep.json").read_text())["runs"]
    assert {v["status"] for v in status.values()} == {"skipped"}
    assert (tmp_path / "pool" / "report.md").is_file()


@pytest.mark.slow  # starting a local Ray instance takes half a minute
def test_ray_backend_matches_sequential(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    spec = _spec(tmp_path, seeds=[0, 1])
    seq = run_cli("ablate", str(spec), "--out", str(tmp_path / "seq"), "--backend", "sequential", "--no-report")
    assert seq.returncode == 0, seq.stderr
    ray_run = run_cli("ablate", str(spec), "--out", str(tmp_path / "ray"), "--backend", "ray", "--no-report",
                      env={"RAY_AUTH_MODE": "disabled"})
    assert ray_run.returncode == 0, ray_run.stderr
    assert _final_losses(tmp_path / "seq") == _final_losses(tmp_path / "ray")


def test_failed_run_is_reported_and_the_sweep_goes_on(tmp_path):
    spec = _spec(tmp_path, cells=[{"name": "ok", "set": {}}, {"name": "broken", "set": {"nan_at_step": 5}}],
                 seeds=[0])
    result = run_cli("ablate", str(spec), "--out", str(tmp_path / "o"), "--backend", "process")
    assert result.returncode == 1
    status = json.loads((tmp_path / "o" / "sweep.json").read_text())["runs"]
    by_cell = {v["cell"]: v for v in status.values()}
    assert by_cell["ok"]["status"] == "done"
    assert by_cell["broken"]["status"] == "failed"
    assert "non-finite value in loss at step 5" in by_cell["broken"]["error"]


def test_killed_run_is_retried_from_its_checkpoint(tmp_path, monkeypatch):
    spec, base, algo = load_spec(_spec(tmp_path, seeds=[0]))
    (run,) = plan(spec, base, algo, tmp_path / "o")
    calls = []
    real_popen = subprocess.Popen

    class KilledOnce(real_popen):  # the first training is SIGKILLed as soon as it starts
        def __init__(self, cmd, **kw):
            super().__init__(cmd, **kw)
            calls.append(cmd)
            if len(calls) == 1:
                self.kill()

    monkeypatch.setattr(ablate.subprocess, "Popen", KilledOnce)
    ok, error = ablate.run_subprocess(run, threads=1)
    assert ok, error
    assert len(calls) == 2 and is_finished(run)

    class AlwaysKilled(real_popen):
        def __init__(self, cmd, **kw):
            super().__init__(cmd, **kw)
            self.kill()

    monkeypatch.setattr(ablate.subprocess, "Popen", AlwaysKilled)
    ok_never, error_never = ablate.run_subprocess(run, threads=1)
    assert not ok_never and "killed by signal 9" in error_never


@pytest.mark.parametrize("backend", ["process", pytest.param("ray", marks=pytest.mark.slow)])
def test_sigterm_stops_the_sweep_and_its_trainings(tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    out = tmp_path / "o"
    spec = _spec(tmp_path, set={**TINY, "max_steps": 100_000, "eval_every": 50_000, "ckpt_every": 50_000},
                 backend=backend, workers=2)
    proc = subprocess.Popen([sys.executable, "-m", "rlcore", "ablate", str(spec), "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.rglob("metrics.jsonl"))) < 2:
        time.sleep(0.2)
    assert len(list(out.rglob("metrics.jsonl"))) == 2, "the two trainings never started"
    proc.terminate()
    assert proc.wait(timeout=60) == 130
    alive = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not alive, f"trainings left running after the sweep stopped: {alive}"


# ---------------------------------------------------------------------------------------------------------------
# report on hand-made runs


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
    curves = {("a", 0): [10, 30, 20], ("a", 1): [12, 14, 40], ("a", 2): [5, 6, 7], ("b", 0): [50, 40, 45]}
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
    best_a = [30, 40, 7]
    mean = sum(last_a) / 3
    se = math.sqrt(sum((v - mean) ** 2 for v in last_a) / 2 / 3)
    assert float(rows["a"]["last_mean"]) == pytest.approx(mean)
    assert float(rows["a"]["last_stderr"]) == pytest.approx(se)
    assert float(rows["a"]["best_mean"]) == pytest.approx(sum(best_a) / 3)
    assert rows["a"]["seeds"] == "3" and rows["b"]["seeds"] == "1"
    assert math.isnan(float(rows["b"]["last_stderr"]))
    assert float(rows["c"]["last_mean"]) == pytest.approx(3.5) and float(rows["c"]["best_mean"]) == pytest.approx(4.0)
    text = report.read_text()
    assert "| a | 3 | 300 | 22.33 ± 9.60 | 25.67 ± 9.77 |" in text
    assert "| b | 1 | 300 (unfinished: 300 of 500) | 45.00 | 50.00 |" in text
    assert rows["a"]["finished"] == "True" and rows["b"]["finished"] == "False" and rows["c"]["finished"] == "True"
    geom = [r for r in all_rows if r["metric"] == "geom/mean_cosine"]
    assert len(geom) == 2 and all(r["best_mean"] == "" for r in geom), "no 'best' for a diagnostic"
    assert "| cell | seeds | step | last (mean ± se) |\n" in text, "the geom table has no best column"
    assert "| a | 3 | 150 | 0.10 ± 0.06 |" in text, "a mid-run diagnostic: finished all the same"
    for png in ("learning_curves.png", "final_scores.png", "geometry.png"):
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


@pytest.mark.parametrize("spec_path", sorted(str(p) for p in (REPO / "configs/ablations").glob("*.yaml")))
def test_every_shipped_sweep_spec_plans(spec_path, tmp_path):
    spec, base, algo = load_spec(spec_path)
    runs = plan(spec, base, algo, tmp_path)
    assert runs and all(r.argv[0] == "train" for r in runs)
