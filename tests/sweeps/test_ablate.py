"""Sweeps (`rlcore ablate`) on tiny toy runs: spec checks, plans, backends, failures, kills and stops."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

from rlcore.cli import main
from rlcore.errors import ConfigError, UserError
from rlcore.sweep import local
from rlcore.sweep.plan import is_finished, plan
from rlcore.sweep.spec import load_spec

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
    other.write_text("algo: bc\nmax_steps: 10\n")
    spec, base, algo = load_spec(_spec(tmp_path, cells=[{"name": "mine"}, {"name": "theirs", "base": str(other)}],
                                       seeds=[0]))
    runs = {r.cell: r.argv for r in plan(spec, base, algo, tmp_path)}
    assert runs["mine"][:2] == ["train", "toy"] and runs["theirs"][:2] == ["train", "bc"]
    assert runs["theirs"][3] == str(other)
    other.write_text("algo: nosuchalgo\n")  # an algorithm nobody registered fails when the spec is read
    with pytest.raises(UserError, match="unknown algorithm 'nosuchalgo'"):
        load_spec(_spec(tmp_path, cells=[{"name": "theirs", "base": str(other)}]))
    with pytest.raises(ConfigError, match="not found"):
        load_spec(_spec(tmp_path, cells=[{"name": "x", "base": "missing.yaml"}]))


def _dry_run(capsys, spec_path, out):
    """``rlcore ablate SPEC --out OUT --dry-run`` in this process: (stdout lines, stderr)."""
    assert main(["ablate", str(spec_path), "--out", str(out), "--dry-run"]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_dry_run_prints_commands_that_run_when_pasted(tmp_path, capsys):
    smoke = REPO / "configs/ablations/smoke.yaml"  # list-valued overrides: v_hidden=[64, 64]
    lines, err = _dry_run(capsys, smoke, tmp_path / "o")
    spec, base, algo = load_spec(smoke)
    runs = plan(spec, base, algo, tmp_path / "o")
    assert [shlex.split(line) for line in lines] == [["rlcore", *r.argv] for r in runs]
    assert "'v_hidden=[64, 64]'" in lines[0]
    assert f"{len(runs)} runs: {len(runs)} to run, 0 finished" in err

    out = tmp_path / "a sweep [1]"  # spaces and brackets in the paths the commands name
    spec_path = _spec(tmp_path, seeds=[0])
    (line,), _ = _dry_run(capsys, spec_path, out)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pasted = subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert pasted.returncode == 0, pasted.stderr
    assert (out / "base" / "seed_0" / "summary.json").is_file()
    lines, err = _dry_run(capsys, spec_path, out)
    assert lines == [] and f"finished (skipped): {out / 'base' / 'seed_0'}" in err


def test_a_spec_metric_no_run_logged_ends_the_sweep_with_one_line(tmp_path, capsys):
    spec = _spec(tmp_path, seeds=[0], metric="eval/nope", backend="sequential")
    assert main(["ablate", str(spec), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no report: no run under") and "metrics found: eval/mse, eval/score" in err[-1]
    assert (tmp_path / "o" / "base" / "seed_0" / "summary.json").is_file(), "the runs are kept"


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

    monkeypatch.setattr(local.subprocess, "Popen", KilledOnce)
    ok, error = local.run_subprocess(run, threads=1)
    assert ok, error
    assert len(calls) == 2 and is_finished(run)

    class AlwaysKilled(real_popen):
        def __init__(self, cmd, **kw):
            super().__init__(cmd, **kw)
            self.kill()

    monkeypatch.setattr(local.subprocess, "Popen", AlwaysKilled)
    ok_never, error_never = local.run_subprocess(run, threads=1)
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
    assert proc.wait(timeout=60) == 143  # the shell's code for SIGTERM, as a training stopped by it
    alive = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not alive, f"trainings left running after the sweep stopped: {alive}"


@pytest.mark.parametrize("spec_path", sorted(str(p) for p in (REPO / "configs/ablations").glob("*.yaml")))
def test_every_shipped_sweep_spec_plans(spec_path, tmp_path):
    spec, base, algo = load_spec(spec_path)
    runs = plan(spec, base, algo, tmp_path)
    assert runs and all(r.argv[0] == "train" for r in runs)
