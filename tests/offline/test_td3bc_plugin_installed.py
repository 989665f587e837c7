"""The TD3+BC example plugin installed as a user would: ``examples/plugins/td3bc`` copied outside the repository,
``pip install``-ed into the running environment, then every command that takes an algorithm or a run is run on it
in a subprocess (so the new entry point is seen): ``rlcore train --help``, ``rlcore train td3bc``,
``rlcore eval td3bc``, ``rlcore data collect --policy <run>``, ``rlcore report``, ``rlcore ablate`` and, from
Python, ``rlcore.train(TD3BCConfig(...))`` and ``rlcore.load_policy(run)``. The plugin is uninstalled when the
module ends, also when a test fails (and a stale install from a crashed earlier run is removed first).

Budgets are tiny (a few hundred updates of 32-32 networks on the embedded Pendulum data): these tests check that
the plugin is found and wired everywhere, not how well TD3+BC learns (``test_td3bc_example.py`` checks its math).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomllib
import yaml
from conftest import REPO, run_cli

PLUGIN = REPO / "examples" / "plugins" / "td3bc"
DIST = "rlcore-td3bc"
TINY = ["--set", "max_steps=200", "--set", "eval_every=100", "--set", "eval_episodes=1", "--set", "log_every=50",
        "--set", "hidden=[32, 32]", "--set", "policy_hidden=[32, 32]", "--set", "tensorboard=false",
        "--set", "progress=false"]


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """The plugin installed from a copy outside the repository; yields a scratch folder outside it too."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("installs a package into the running interpreter: only inside a virtual environment "
                    "(make setup creates .venv)")
    if _installed():  # left behind by an earlier run that was killed before its teardown
        _pip("uninstall", "-y", DIST)
    scratch = tmp_path_factory.mktemp("td3bc_plugin")
    copy = shutil.copytree(PLUGIN, scratch / "td3bc", ignore=shutil.ignore_patterns("__pycache__", "build",
                                                                                      "*.egg-info"))
    try:
        _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(copy))
        assert _installed()
        yield scratch
    finally:
        if _installed():
            _pip("uninstall", "-y", DIST)
        assert not _installed(), f"{DIST} is still installed after the module's teardown"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``rlcore <args>`` from a folder outside the repository; fails the test with its stderr on a non-zero exit."""
    result = run_cli(*args, cwd=cwd, timeout=240)
    assert result.returncode == 0, f"rlcore {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def trained(plugin) -> tuple[Path, subprocess.CompletedProcess]:
    """A two-seed ``rlcore train td3bc`` run (vectorised seeds) and its completed process."""
    run_dir = plugin / "cli_run"
    result = _cli("train", "td3bc", "--task", "pendulum-scripted-v0", "--seeds", "0,1", "--run-dir", str(run_dir),
                  *TINY, cwd=plugin)
    return run_dir, result


def test_train_help_lists_the_plugin(plugin):
    listing = _cli("train", "--help", cwd=plugin).stdout
    assert "td3bc" in listing and "TD3+BC (Fujimoto & Gu, 2021) on an offline dataset" in listing
    own = " ".join(_cli("train", "td3bc", "--help", cwd=plugin).stdout.split())
    assert "--task" in own and "--seeds" in own  # the offline family's flags come with offline_algorithm
    # its examples run as printed: no preset file that only built-ins have (configs/<name>/ is not the plugin's)
    assert "rlcore train td3bc --task pendulum-scripted-v0" in own and "configs/td3bc" not in own


def test_train_runs_and_its_closing_line_names_td3bc(trained):
    run_dir, result = trained
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 200
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["algo"] == "td3bc"
    closing = [line for line in result.stdout.splitlines() if line.startswith("TD3+BC: ")]
    assert len(closing) == 1, result.stdout
    best = summary["best"]["metrics"]["eval/normalized_score"]
    assert "(mean over 2 seeds)" in closing[0] and f"best mean {best:.1f}" in closing[0]
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/critic_loss" in row for row in logged) and any("train/actor_loss" in row for row in logged)


def test_resume_continues_the_plugin_run_exactly(plugin, trained):
    """Stopped at step 100 and resumed to 200, a run logs what the uninterrupted run logged (the TD3+BC state,
    its smoothing-noise generators included, goes through the family's checkpoints)."""
    run_dir = plugin / "resumed_run"
    first = [a if a != "max_steps=200" else "max_steps=100" for a in TINY]
    _cli("train", "td3bc", "--task", "pendulum-scripted-v0", "--seeds", "0,1", "--run-dir", str(run_dir), *first,
         cwd=plugin)
    _cli("train", "td3bc", "--run-dir", str(run_dir), "--resume", "--set", "max_steps=200", cwd=plugin)

    def logged(path: Path) -> list[dict]:
        rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if not k.startswith("time")} for row in rows if row["step"] > 100]

    expected = logged(trained[0])
    assert expected and logged(run_dir) == expected


def test_eval_prints_every_seed_as_json(plugin, trained):
    run_dir, _ = trained
    out = _cli("eval", "td3bc", "--run-dir", str(run_dir), "--checkpoint", "best", "--episodes", "1",
               cwd=plugin).stdout
    report = json.loads(out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert report["checkpoint_step"] == summary["best"]["step"]
    assert report["results"].keys() == {"seed0", "seed1"}
    for result in report["results"].values():
        assert result["episodes"] == 1 and math.isfinite(result["return_mean"])
        assert math.isfinite(result["normalized_score_mean"])


@pytest.fixture(scope="module")
def collected(plugin, trained) -> Path:
    """``rlcore data collect --policy <the td3bc run>``: the HDF5 file it wrote."""
    run_dir, _ = trained
    out = plugin / "collected.hdf5"
    result = _cli("data", "collect", "--env", "Pendulum-v1", "--policy", str(run_dir), "--steps", "40",
                  "--num-envs", "2", "--no-progress", "--out", str(out), cwd=plugin)
    assert f"wrote {out}: 40 steps" in result.stdout
    return out


def test_data_collect_with_the_run_as_policy_writes_a_dataset(collected, trained):
    from rlcore.envs.offline import load_dataset

    data = load_dataset(collected)
    n = 40 - data.metadata["dropped_timeout_steps"]  # the cut episode's last step has no next observation
    assert data.metadata["source_steps"] == 40 and len(data) == n >= 39
    assert data.observations.shape == (n, 3) and data.actions.shape == (n, 1)
    assert np.all(np.abs(data.actions) <= 2.0)  # Pendulum's torque bounds, mapped back from [-1, 1]
    assert data.metadata["policy"] == f"run:{trained[0]}"


def test_report_on_the_run_writes_report_md(plugin, trained):
    run_dir, _ = trained
    for name in ("report.md", "report.csv"):  # written at the end of training: make the command write them again
        (run_dir / name).unlink()
    _cli("report", str(run_dir), cwd=plugin)
    text = (run_dir / "report.md").read_text()
    best = json.loads((run_dir / "summary.json").read_text())["best"]["metrics"]["eval/normalized_score"]
    row = next(line for line in text.splitlines() if line.startswith(f"| {run_dir.name} |"))
    assert row.split("|")[2].strip() == "2" and f"{best:.2f}" in row  # 2 seeds; the best mean over them


def test_ablate_runs_a_td3bc_sweep(plugin):
    base = plugin / "td3bc_base.yaml"
    base.write_text("algo: td3bc\ntask: pendulum-scripted-v0\n")
    spec = plugin / "td3bc_sweep.yaml"
    spec.write_text(textwrap.dedent(f"""\
        base: {base}
        set: {{max_steps: 100, eval_every: 50, eval_episodes: 1, log_every: 50, ckpt_every: 50, hidden: [32, 32],
              policy_hidden: [32, 32], tensorboard: false}}
        grid:
          alpha: [1.0, 2.5]
        seeds: [0]
        metric: eval/normalized_score
        backend: process
        workers: 2
        """))
    out = plugin / "sweep"
    result = _cli("ablate", str(spec), "--out", str(out), cwd=plugin)
    assert "2/2 runs finished, 0 failed" in result.stderr + result.stdout
    for alpha in (1.0, 2.5):
        cell = out / f"alpha={alpha}" / "seed_0"
        assert json.loads((cell / "summary.json").read_text())["status"] == "finished"
        config = yaml.safe_load((cell / "config.yaml").read_text())
        assert config["algo"] == "td3bc" and config["alpha"] == alpha
    text = (out / "report.md").read_text()
    assert "| alpha=1.0 |" in text and "| alpha=2.5 |" in text


def test_python_api_trains_and_loads_the_policy(plugin, collected, trained):
    """In a fresh interpreter outside the repository: the installed module (not the repo's copy) trains through
    ``rlcore.train`` and its policy acts on one observation and on a batch; ``load_policy`` on the CLI run gives
    the very actions ``data collect`` recorded (deterministic policy, no noise)."""
    script = textwrap.dedent(f"""\
        import json, sys
        import numpy as np
        import rlcore
        import rlcore_td3bc
        from rlcore.envs.offline import load_dataset

        cfg = rlcore_td3bc.TD3BCConfig(task="pendulum-scripted-v0", max_steps=100, eval_every=50, eval_episodes=1,
                                       hidden=[32, 32], policy_hidden=[32, 32], tensorboard=False, progress=False)
        result = rlcore.train(cfg, run_dir={str(plugin / "api_run")!r})
        policy = rlcore.load_policy(result.run_dir)
        one, batch = policy.act(np.zeros(3)), policy.act(np.zeros((5, 3)))
        data = load_dataset({str(collected)!r})
        recorded = rlcore.load_policy({str(trained[0])!r}, "latest").act(data.observations)
        print(json.dumps({{"module": rlcore_td3bc.__file__, "type": type(result).__name__,
                          "status": result.status, "run_dir": str(result.run_dir),
                          "one": [list(one.shape), str(one.dtype)], "batch": [list(batch.shape), str(batch.dtype)],
                          "in_bounds": bool(np.all(np.abs(batch) <= 2.0)),
                          "same_actions": float(np.abs(recorded - data.actions).max())}}))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=plugin, timeout=240,
                            env={**os.environ})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    module = Path(out["module"]).resolve()  # the installed copy, not examples/plugins/td3bc
    assert "site-packages" in module.parts and PLUGIN.resolve() not in module.parents
    assert out["type"] == "RunResult" and out["status"] == "finished"
    assert json.loads((Path(out["run_dir"]) / "summary.json").read_text())["step"] == 100
    assert out["one"] == [[1], "float32"] and out["batch"] == [[5, 1], "float32"] and out["in_bounds"]
    assert out["same_actions"] < 1e-5


def test_a_run_of_a_plugin_that_is_not_installed_says_to_install_it(tmp_path):
    import rlcore
    from rlcore.errors import UserError

    (tmp_path / "config.yaml").write_text("algo: nosuchplugin\n")
    with pytest.raises(UserError, match="unknown algorithm 'nosuchplugin'.*registered: .*odice.*pip install that "
                                        "package .*entry-point group 'rlcore.algorithms'") as info:
        rlcore.load_policy(tmp_path)
    assert "\n" not in str(info.value)


def test_architecture_doc_describes_what_td3bc_does():
    """docs/ARCHITECTURE.md's "A new offline algorithm" recipe, checked against the example and the built-ins."""
    from rlcore.algorithms.offline import OfflineConfig
    from rlcore.algorithms.offline.ensemble import EnsembleAlgorithm

    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = doc.split("### A new offline algorithm", 1)[1].split("\n### ", 1)[0]
    source = (PLUGIN / "rlcore_td3bc.py").read_text()
    spec_line = re.search(r"```python\n(.*?)```", section, re.S).group(1).strip()
    assert spec_line in source  # the doc's SPEC line is the example's, verbatim
    entry = re.search(r'`(td3bc = "rlcore_td3bc:SPEC")`', section).group(1)
    assert entry in (PLUGIN / "pyproject.toml").read_text()

    module_spec = importlib.util.spec_from_file_location("rlcore_td3bc", PLUGIN / "rlcore_td3bc.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["rlcore_td3bc"] = module
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.modules.pop("rlcore_td3bc")
    assert issubclass(module.TD3BCConfig, OfflineConfig) and module.TD3BCConfig.auto_reward_transform == {}
    assert issubclass(module.TD3BC, EnsembleAlgorithm) and "device" in inspect.signature(module.TD3BC).parameters
    for method in ("modules", "optimizers", "update", "state_dict", "load_state_dict"):
        assert method in module.TD3BC.__dict__, method
    for name in ("act", "state_dict", "load_state_dict", "compile_networks"):
        assert f"`{name}`" in section and callable(getattr(EnsembleAlgorithm, name))

    # "the layout every built-in follows": each offline built-in's package has config, losses, algorithm and spec
    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    spec_files = [REPO / "algorithms" / Path(*target.split(":")[0].split(".")[2:]).with_suffix(".py")
                  for target in entry_points["rlcore.algorithms"].values()]
    offline = [f for f in spec_files if f.is_file() and "offline_algorithm(" in f.read_text()]
    assert len(offline) >= 3, spec_files  # odice, iql, bc
    for spec_file in offline:
        package = spec_file.parent
        assert spec_file.name == "spec.py" and package.parent == REPO / "algorithms"
        assert {"config.py", "losses.py", f"{package.name}.py", "spec.py"} <= {p.name for p in package.iterdir()}
