from __future__ import annotations

import pytest
from conftest import run_cli

from rlcore.cli import main
from rlcore.cli.registry import targets

GROUPS = ["train", "eval", "data"]


def _plugin_commands():
    return [(group, name) for group in GROUPS for name in targets(group)]


def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run the console script's own function (argparse exits on --help and usage errors)."""
    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("args", [[], ["train"], ["eval"], ["data"], ["ablate"], ["report"]])
def test_help_for_every_top_level_command(args, capsys):
    code, out, err = _in_process(capsys, *args, "--help")
    assert code == 0, err
    assert "usage: rlcore" in out


@pytest.mark.parametrize("group, name", _plugin_commands())
def test_help_for_every_plugin(group, name, capsys):
    code, out, err = _in_process(capsys, group, name, "--help")
    assert code == 0, err
    assert f"usage: rlcore {group} {name}" in out


def test_plugins_are_registered():
    names = {name for _, name in _plugin_commands()}
    assert "toy" in names


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("rlcore ")


def test_list_config_documents_every_key():
    result = run_cli("train", "toy", "--list-config")
    assert result.returncode == 0, result.stderr
    assert "max_steps" in result.stdout and "Adam learning rate." in result.stdout


def _write(path, text):
    path.write_text(text)
    return str(path)


BAD_INPUTS = [
    ("missing config file", lambda d: ["--config", str(d / "nope.yaml")], "not found"),
    ("bad yaml", lambda d: ["--config", _write(d / "b.yaml", "lr: [1\n")], "not valid YAML"),
    ("wrong type", lambda d: ["--set", "lr=fast"], "expects a number"),
    ("unknown key", lambda d: ["--set", "learning_rate=1e-3"], "unknown config key 'learning_rate'"),
    ("out of range", lambda d: ["--set", "lr=-1"], "out of range"),
    ("wrong algo preset", lambda d: ["--config", _write(d / "a.yaml", "algo: odice\n")], "is for 'odice'"),
    ("bad flag value", lambda d: ["--seed", "x"], "invalid int value"),
    ("unknown flag", lambda d: ["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize("name, make_args, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_one_clear_line(tmp_path, capsys, name, make_args, message):
    run_dir = tmp_path / "run"
    code, out, err = _in_process(capsys, "train", "toy", *make_args(tmp_path), "--run-dir", str(run_dir))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not (run_dir / "checkpoints").exists(), "a failed start must not leave checkpoints behind"


def test_resume_needs_run_dir():
    result = run_cli("train", "toy", "--resume")
    assert result.returncode == 2 and "--resume needs --run-dir" in result.stderr


def test_unknown_plugin_is_one_line():
    result = run_cli("train", "nosuchalgo")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "invalid choice" in result.stderr


def test_debug_shows_traceback(tmp_path):
    result = run_cli("train", "toy", "--set", "lr=-1", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = _in_process(capsys, "--help")
    assert code == 0
    words = set(out.replace(",", " ").split())
    assert {name for group in GROUPS for name in targets(group)} <= words
    assert {"ablate", "report"} <= words
