"""The bad-input corpus: every bad file, config or command-line value gives ONE line that names the problem and
the fix, a non-zero exit code, no traceback and no partial output; every bad answer gets the incorrect reward
within its timeout without crashing the scorer.

The commands run in-process through ``rlcore.cli.main`` (the console script's own function) to keep the suite
fast; ``test_subprocess_exit_codes`` checks a few of them as real processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO, run_cli

from rlcore.cli import main

DEMO = str(REPO / "configs/odice/demo.yaml")


# ---------------------------------------------------------------------------------------------------------------
# files, made in the test


def _arrays(n=50, obs=3, act=1):
    rng = np.random.default_rng(0)
    timeouts = np.zeros(n, bool)
    timeouts[24] = timeouts[-1] = True
    return {"observations": rng.normal(size=(n, obs)).astype(np.float32),
            "actions": rng.uniform(-2, 2, size=(n, act)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "terminals": np.zeros(n, bool), "timeouts": timeouts}


def _h5(path: Path, **changes) -> str:
    arrays = {**_arrays(), **changes}
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if v is not None:
                f.create_dataset(k, data=v)
    return str(path)


def _truncated(path: Path) -> str:
    good = Path(_h5(path.with_suffix(".good.hdf5")))
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return str(path)


def _nan_rewards(path: Path) -> str:
    r = _arrays()["rewards"]
    r[7] = np.nan
    return _h5(path, rewards=r)


def _inf_obs(path: Path) -> str:
    o = _arrays()["observations"]
    o[3, 1] = np.inf
    return _h5(path, observations=o)


DATASETS = {
    # name: (make file, expected text in the one error line)
    "truncated hdf5": (_truncated, "truncated"),
    "missing key": (lambda p: _h5(p, rewards=None), "rewards"),
    "misnamed key": (lambda p: _h5(p, rewards=None, reward=_arrays()["rewards"]), "reward"),
    "nan rewards": (_nan_rewards, "NaN"),
    "inf observations": (_inf_obs, "inf"),
    "length mismatch": (lambda p: _h5(p, actions=_arrays()["actions"][:40]), "actions"),
    "empty file": (lambda p: (p.write_bytes(b""), str(p))[1], "not an HDF5 file; it is empty (0 bytes)"),
    "not hdf5": (lambda p: (p.write_text("hello"), str(p))[1], "not an HDF5 file; it looks like plain text"),
    "csv": (lambda p: (p.write_text("obs,action,reward\n0.1,0.2,1\n"), str(p))[1],
            "not an HDF5 file; it looks like CSV text"),
    "json": (lambda p: (p.write_text('{"observations": [[0.1]]}'), str(p))[1], "not an HDF5 file; it looks like JSON"),
    "npz": (lambda p: (np.savez(open(p, "wb"), observations=np.zeros(3)), str(p))[1],
            "not an HDF5 file; it looks like a ZIP archive"),
    "discrete actions": (lambda p: _h5(p, actions=np.zeros((50, 1), np.int64)), "discrete"),
    "flags not 0/1": (lambda p: _h5(p, terminals=np.full(50, 2, np.int64)), "terminals"),
    "zero rows": (lambda p: _h5(p, **{k: v[:0] for k, v in _arrays().items()}), "0 rows"),
    "wrong observation size": (lambda p: _h5(p, observations=np.zeros((50, 5), np.float32)), "size"),
}


def _one_line(capsys, code: int, must_contain: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert must_contain.lower() in err.lower(), err
    return err


@pytest.mark.parametrize("name", list(DATASETS))
def test_bad_dataset_info(tmp_path, capsys, name):
    make, text = DATASETS[name]
    path = make(tmp_path / "bad.hdf5")
    code = main(["data", "info", path, "--task", "pendulum-scripted-v0"])
    _one_line(capsys, code, text)


@pytest.mark.parametrize("name", ["truncated hdf5", "nan rewards", "wrong observation size", "discrete actions", "csv"])
def test_bad_dataset_train_leaves_no_run_directory(tmp_path, capsys, name):
    make, text = DATASETS[name]
    path = make(tmp_path / "bad.hdf5")
    run_dir = tmp_path / "run"
    code = main(["train", "odice", "--env", "Pendulum-v1", "--dataset", path, "--run-dir", str(run_dir)])
    _one_line(capsys, code, text)
    assert not run_dir.exists(), "a failed start must leave nothing behind"


# ---------------------------------------------------------------------------------------------------------------
# configs and command-line values


def _yaml(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


CONFIGS = {
    "unknown key": (lambda d: ["--config", DEMO, "--set", "lamda=0.5"], "did you mean 'lam'"),
    "wrong type": (lambda d: ["--config", DEMO, "--set", "eta=big"], "expects a number"),
    "lambda out of range": (lambda d: ["--config", DEMO, "--set", "lam=1.5"], "'lam' = 1.5 is out of range"),
    "lambda zero": (lambda d: ["--config", DEMO, "--set", "lam=0"], "out of range"),
    "eta negative": (lambda d: ["--config", DEMO, "--set", "eta=-1"], "'eta' = -1.0 is out of range"),
    "weight clip zero": (lambda d: ["--config", DEMO, "--set", "weight_clip=0"], "weight_clip"),
    "gamma one": (lambda d: ["--config", DEMO, "--set", "gamma=1"], "gamma"),
    "bad literal": (lambda d: ["--config", DEMO, "--set", "grad_rule=orthogonl"], "must be one of"),
    "expert data without discriminator": (lambda d: ["--config", DEMO, "--set", "expert_dataset=x.hdf5"],
                                          "only used with il_mode=discriminator"),
    "discriminator without expert data": (lambda d: ["--config", DEMO, "--set", "il_mode=discriminator"],
                                          "needs expert_dataset"),
    "log std bounds crossed": (lambda d: ["--config", DEMO, "--set", "log_std_min=3"], "log_std_min"),
    "half the reference returns": (lambda d: ["--config", DEMO, "--set", "ref_min_return=-5"], "give both"),
    "bad yaml": (lambda d: ["--config", _yaml(d, "lam: [0.3\n")], "not valid YAML"),
    "yaml list": (lambda d: ["--config", _yaml(d, "- 1\n")], "must hold a mapping"),
    "preset of another algorithm": (lambda d: ["--config", str(REPO / "configs/toy/demo.yaml")], "is for 'toy'"),
    "missing preset": (lambda d: ["--config", str(d / "nope.yaml")], "not found"),
    "seeds not integers": (lambda d: ["--config", DEMO, "--seeds", "0,x"], "expects an integer"),
    "duplicate seeds": (lambda d: ["--config", DEMO, "--seeds", "1,1"], "distinct"),
    "unavailable device": (lambda d: ["--config", DEMO, "--device", "cuda:3"], "not available"),
    "unknown task": (lambda d: ["--task", "hoper-medium-v2"], "hopper-medium-v2"),
    "no task or env": (lambda d: ["--dataset", "pendulum-scripted-v0"], "--task"),
    "task without simulator": (lambda d: ["--task", "maze2d-umaze-v1"], "no simulator"),
    "bad seed flag": (lambda d: ["--config", DEMO, "--seed", "one"], "invalid int value"),
    "unknown flag": (lambda d: ["--config", DEMO, "--lambda", "0.3"], "unrecognized arguments"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bad_config_or_flag(tmp_path, capsys, name):
    make_args, text = CONFIGS[name]
    run_dir = tmp_path / "run"
    try:
        code = main(["train", "odice", *make_args(tmp_path), "--run-dir", str(run_dir)])
    except SystemExit as e:  # argparse errors exit directly, with code 2
        code = e.code
    _one_line(capsys, code, text)
    assert not run_dir.exists()


G2RL = str(REPO / "configs/g2rl/tiny-arith.yaml")
G2RL_CONFIGS = {
    "unknown key": (["--set", "lamda=1"], "did you mean 'lam'"),
    "bad scaler": (["--set", "scaler=centred"], "must be one of"),
    "group of one": (["--set", "group_size=1"], "group_size must be >= 2"),
    "mini-batch not dividing the step": (["--set", "mini_batch_size=5"], "mini_batch_size"),
    "zero temperature": (["--set", "temperature=0"], "temperature"),
    "clip out of range": (["--set", "clip_eps=1.5"], "clip_eps"),
    "negative reward clip": (["--set", "reward_clip=-1"], "reward_clip"),
    "missing dataset": (["--set", "dataset=no/such.jsonl"], "no/such.jsonl"),
    "GRPO preset": (["--config", str(REPO / "configs/grpo/tiny-arith.yaml")], "is for 'grpo'"),
    "unknown model": (["--set", "model=no/such-model"], "no/such-model"),
}


@pytest.mark.parametrize("name", list(G2RL_CONFIGS))
def test_bad_g2rl_config(tmp_path, capsys, name):
    args, text = G2RL_CONFIGS[name]
    run_dir = tmp_path / "run"
    base = [] if "--config" in args else ["--config", G2RL]
    code = main(["train", "g2rl", *base, *args, "--run-dir", str(run_dir)])
    _one_line(capsys, code, text)
    assert not (run_dir / "checkpoints").exists()


def test_run_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code = main(["train", "odice", "--config", DEMO, "--set", "max_steps=1", "--run-dir", str(target)])
    _one_line(capsys, code, "is a file")


@pytest.mark.parametrize("args, text", [
    (["eval", "odice", "--run-dir", "/nonexistent/run"], "config.yaml"),
    (["data", "collect", "--env", "NoSuchEnv-v0", "--policy", "random", "--steps", "5"], "NoSuchEnv-v0"),
    (["data", "collect", "--env", "Pendulum-v1", "--policy", "/no/agent.zip", "--steps", "5"], "agent.zip"),
    (["data", "collect", "--env", "CartPole-v1", "--policy", "random", "--steps", "5"], "Discrete"),
    (["data", "mix", "a.hdf5", "--out"], "expected one argument"),
    (["report", "/nonexistent/folder"], "is not a folder"),
    (["eval", "odice", "--run-dir", "{odice_run}", "--checkpoint", "bogus"], "is not latest, best or a step number"),
    (["eval", "llm", "--model", "{odice_run}", "--benchmarks", "arith"],
     "run directory of odice, not a language model; evaluate it with `rlcore eval odice --run-dir"),
    (["train", "odice", "--run-dir", "{folder}", "--resume"], "not a run directory (no config.yaml)"),
    (["train", "odice", "--run-dir", "{odice_run}", "--resume"], "has no checkpoint to resume from"),
    (["ablate", "/nonexistent/spec.yaml"], "not found"),
])
def test_bad_command_values(tmp_path, capsys, args, text):
    odice_run = tmp_path / "odice_run"  # what an O-DICE run leaves when it is killed before its first checkpoint
    odice_run.mkdir()
    (odice_run / "config.yaml").write_text("algo: odice\ntask: pendulum-scripted-v0\n")
    (tmp_path / "folder").mkdir()
    out = tmp_path / "out.hdf5"
    args = [a.format(odice_run=odice_run, folder=tmp_path / "folder") for a in args]
    full = args + (["--out", str(out)] if args[:2] in (["data", "collect"], ["eval", "llm"]) else [])
    try:
        code = main(full)
    except SystemExit as e:
        code = e.code
    _one_line(capsys, code, text)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------------------------
# math data and answers


MATH_FILES = {
    "empty jsonl": (b"", "no problem"),
    "non-utf8 line": (b'{"problem": "1+1", "answer": "2"}\n\xff\xfe{"problem"}\n', "UTF-8"),
    "missing answer field": (b'{"problem": "1+1"}\n{"problem": "2+2"}\n', "answer"),
    "invalid json": (b'{"problem": "1+1", "answer": 2\n', "JSON"),
}


@pytest.mark.parametrize("name", list(MATH_FILES))
def test_bad_math_data(tmp_path, capsys, name):
    content, text = MATH_FILES[name]
    path = tmp_path / "bench.jsonl"
    path.write_bytes(content)
    out = tmp_path / "eval"
    code = main(["eval", "llm", "--model", "tiny", "--benchmarks", str(path), "--k", "1", "--max-new-tokens", "2",
                 "--out", str(out)])
    _one_line(capsys, code, text)
    assert not out.exists()


ADVERSARIAL = {
    "tower of powers": r"\boxed{10^{10^{10^{10}}}}",
    "deep braces": r"\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "huge factorial": r"\boxed{(10^{100})!}",
    "unterminated box": r"the answer is \boxed{" + "x" * 10000,
    "megabyte of text": "a" * 1_000_000 + r"\boxed{3}",
    "nested fractions": r"\boxed{" + r"\frac{1}{" * 300 + "2" + "}" * 300 + "}",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_answers_get_the_incorrect_reward_in_time(name):
    from rlcore.envs.reasoning import math_reward

    start = time.perf_counter()
    reward = math_reward(ADVERSARIAL[name], "7", timeout=3.0)
    assert reward == -1.0
    assert time.perf_counter() - start < 15.0
    assert math_reward(r"\boxed{7}", "7") == 1.0  # the scorer still works afterwards


def test_subprocess_exit_codes(tmp_path):
    bad = _nan_rewards(tmp_path / "bad.hdf5")
    result = run_cli("data", "info", bad)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("train", "odice", "--config", DEMO, "--set", "lam=2", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
