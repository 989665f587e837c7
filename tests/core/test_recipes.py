"""docs/ARCHITECTURE.md's recipes, followed literally: its new-algorithm example is written to a folder outside the
repository, declared through the entry point the page shows, and trained, resumed and loaded; its reward shaper and
reward function are imported through their entry points' targets and train one GRPO step; its list of resumable
keys is the code's. Also what a user sees when their code raises, and when a notebook interrupts a training."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from conftest import REPO, run_cli

import rlcore
from rlcore.logging import read_metrics
from rlcore.plugins import load_target
from rlcore.resume import RESUMABLE_KEYS

DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text()
FAST = ["--set", "tensorboard=false", "--set", "progress=false", "--set", "log_every=10", "--set", "eval_every=20",
        "--set", "ckpt_every=20"]

BROKEN = '''
import dataclasses

from mean_estimator import SPEC, MeanConfig, build as mean_build


@dataclasses.dataclass
class BrokenConfig(MeanConfig):
    """A mean estimator whose update raises (a bug in user code)."""


def build(cfg, run, inputs):
    job = mean_build(cfg, run, inputs)
    job.algo.update = lambda batch: {}["solution"]
    return job


SPEC = dataclasses.replace(SPEC, name="broken", config=BrokenConfig, build=build)
'''


def _doc_example(title: str = "A new algorithm", group: str = "rlcore.algorithms"
                 ) -> tuple[str, str, dict[str, str]]:
    """(module file name, its source, entry points of ``group``) of the page's recipe ``title``."""
    section = DOC.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    name = re.search(r"`(\w+\.py)`:\s*\n\s*```python", section).group(1)
    source = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    return name, source, tomllib.loads(toml)["project"]["entry-points"][group]


def _install(folder: Path, modules: dict[str, str], entry_points: dict[str, str]) -> dict[str, str]:
    """What ``pip install`` of a package with these modules and ``rlcore.algorithms`` entry points leaves on the path
    (the modules and a ``.dist-info`` with METADATA and entry_points.txt); returns the environment that sees it."""
    folder.mkdir()
    for file_name, source in modules.items():
        (folder / file_name).write_text(source)
    info = folder / "recipe_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: recipe-plugin\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[rlcore.algorithms]\n{lines}")
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def test_new_algorithm_recipe_runs_as_the_doc_writes_it(tmp_path):
    file_name, source, entry_points = _doc_example()
    assert entry_points == {"mean": "mean_estimator:SPEC"} and file_name == "mean_estimator.py"
    env = _install(tmp_path / "plugin", {file_name: source}, entry_points)
    listed = run_cli("train", "--help", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "mean" in listed.stdout, listed.stderr
    run_dir = tmp_path / "run"
    result = run_cli("train", "mean", "--set", "max_steps=40", *FAST, "--run-dir", str(run_dir), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 40
    resumed = run_cli("train", "mean", "--run-dir", str(run_dir), "--resume", "--set", "max_steps=60", cwd=tmp_path,
                      env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 60
    code = (f"import rlcore; m = rlcore.load_policy({str(run_dir)!r}); print(float(m.mean()))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, **env}, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert 1.0 < float(loaded.stdout) < 2.5  # from 0 towards the cloud's mean (about 2) in 60 SGD steps


def test_new_shaper_and_reward_function_recipes_train_as_the_doc_writes_them(tmp_path, monkeypatch):
    """The page's shaper and reward function, written to their files and imported through the targets of the
    entry-point lines the page shows, choose by name (shaper) and by callable (reward) in one tiny GRPO step."""
    pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")
    from rlcore.algorithms.grpo.registry import REWARDS, SHAPERS, ShaperSpec

    shaper_file, shaper_source, shapers = _doc_example("A new reward shaper for GRPO", "rlcore.shapers")
    reward_file, reward_source, rewards = _doc_example("A new reward function", "rlcore.rewards")
    assert (shaper_file, shapers) == ("brevity_shaper.py", {"brevity": "brevity_shaper:SHAPER"})
    assert (reward_file, rewards) == ("my_rewards.py", {"mentions_answer": "my_rewards:mentions_answer"})
    (tmp_path / shaper_file).write_text(shaper_source)
    (tmp_path / reward_file).write_text(reward_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec, reward = load_target(shapers["brevity"]), load_target(rewards["mentions_answer"])
    assert isinstance(spec, ShaperSpec) and "brevity" not in SHAPERS and "mentions_answer" not in REWARDS
    monkeypatch.setattr(SHAPERS, "_added", dict(SHAPERS._added))  # the registration below ends with the test
    SHAPERS.register("brevity", spec)
    cfg = rlcore.GRPOConfig(
        model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain", dataset_limit=16,
        prompts_per_step=2, group_size=4, max_new_tokens=5, mini_batch_size=8, micro_batch_size=8, lr=1e-3,
        max_steps=1, device="cpu", export_model=False, tensorboard=False, progress=False,
        shaper="brevity", shaper_args={"coef": 0.05})
    result = rlcore.train(cfg, reward_funcs=["math", reward], run_dir=tmp_path / "run")
    assert result.status == "finished"
    (record,) = read_metrics(tmp_path / "run")
    tokens = record["shaping/mean_tokens"]
    assert tokens == pytest.approx(record["train/response_tokens"]) and tokens >= 1
    assert record["train/shaped_reward"] == pytest.approx(record["train/reward"] - 0.05 * tokens, abs=1e-5)
    assert 0.0 <= record["train/reward/mentions_answer"] <= 1.0
    assert reward(["7 or 12", "none"], answer=["12", "12"]) == [1.0, 0.0]
    assert reward(["12"]) == [None]


def test_an_error_in_user_code_is_one_line_with_the_users_frames(tmp_path):
    file_name, source, _ = _doc_example()
    env = _install(tmp_path / "plugin", {file_name: source, "broken.py": BROKEN}, {"broken": "broken:SPEC"})
    run_dir = tmp_path / "run"
    result = run_cli("train", "broken", "--set", "max_steps=5", *FAST, "--run-dir", str(run_dir), cwd=tmp_path,
                     env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    error_line = [line for line in lines if line.startswith("error:")]
    assert error_line == ["error: KeyError: 'solution'"], result.stderr
    line = BROKEN.splitlines().index('    job.algo.update = lambda batch: {}["solution"]') + 1
    assert re.search(rf'File ".*broken\.py", line {line}, in <lambda>', result.stderr), result.stderr
    assert "Traceback" not in result.stderr and "loop.py" not in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary == {"status": "failed", "error": "KeyError: 'solution'"}
    # the Python API raises it unchanged, with the user's frame last in its traceback
    code = ("import traceback, rlcore\nfrom broken import BrokenConfig\n"
            f"try:\n    rlcore.train(BrokenConfig(max_steps=5, progress=False), run_dir={str(tmp_path / 'api')!r})\n"
            "except KeyError as e:\n    print(traceback.extract_tb(e.__traceback__)[-1].filename)\n")
    api = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, **env}, timeout=120)
    assert api.returncode == 0 and api.stdout.strip().endswith("broken.py"), api.stderr
    assert json.loads((tmp_path / "api" / "summary.json").read_text())["status"] == "failed"


def test_an_interrupted_api_training_checkpoints_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    script = ("import sys, rlcore\nfrom rlcore.algorithms.toy import ToyConfig\n"
              "cfg = ToyConfig(max_steps=100000, ckpt_every=100000, ckpt_minutes=0, progress=False, "
              "tensorboard=False, log_every=10)\n"
              f"rlcore.train(cfg, run_dir={str(run_dir)!r}, resume=len(sys.argv) > 1)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (run_dir / "metrics.jsonl").is_file() or not (run_dir / "metrics.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # what a notebook's "interrupt kernel" sends
    _, err = proc.communicate(timeout=120)
    assert f"resume with: rlcore.train(..., run_dir={str(run_dir)!r}, resume=True)" in err, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert (run_dir / "checkpoints" / f"step_{summary['step']}").is_dir() or \
        json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == summary["step"]


def test_the_docs_list_the_resumable_keys_of_the_code():
    listed = DOC.split("<!-- resumable-keys -->", 1)[1].split("<!-- /resumable-keys -->", 1)[0]
    assert tuple(re.findall(r"`([^`]+)`", listed)) == RESUMABLE_KEYS


def test_a_broken_plugin_is_one_line_and_spares_the_others(tmp_path):
    env = _install(tmp_path / "plugin", {}, {"ghost": "no_such_module:SPEC"})
    result = run_cli("train", "ghost", "--set", "max_steps=1", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: algorithm 'ghost' is registered as 'no_such_module:SPEC' in entry-point group 'rlcore.algorithms', "
        "which cannot be loaded: ModuleNotFoundError: No module named 'no_such_module'"]
    listing = run_cli("train", "--help", cwd=tmp_path, env=env)
    assert listing.returncode == 0 and "ghost" in listing.stdout and "unavailable" in listing.stdout, listing.stderr
