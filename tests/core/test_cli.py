from __future__ import annotations

import pytest
from conftest import run_cli

from rlcore.algorithm import ALGORITHMS
from rlcore.cli import GROUPS, main
from rlcore.cli.registry import DATA, EVALUATIONS


def _plugin_commands():
    return [("train", n) for n in ALGORITHMS.names()] + [("data", n) for n in DATA.names()] + \
        [("eval", n) for n in EVALUATIONS.names()] + \
        [("eval", n) for n in ALGORITHMS.names() if ALGORITHMS.get(n).evaluate is not None]


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


def test_every_builtin_is_registered_under_its_group():
    """The built-ins rlcore declares in pyproject.toml, each loading as the kind its group promises."""
    assert {"odice", "iql", "bc", "toy", "grpo", "g2rl"} <= set(ALGORITHMS.names())
    assert {"collect", "mix", "info", "download", "list"} <= set(DATA.names())
    assert "llm" in EVALUATIONS.names()
    for name in ALGORITHMS.names():
        spec = ALGORITHMS.get(name)
        assert spec.name == name and spec.title and spec.help
    offline_evals = {n for _, n in _plugin_commands() if _ == "eval"} - set(EVALUATIONS.names())
    assert {"odice", "iql", "bc"} <= offline_evals


def test_eval_of_an_algorithm_without_evaluation_is_one_line(capsys):
    code, _, err = _in_process(capsys, "eval", "toy", "--help")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "has no evaluation command" in err


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
    assert set(ALGORITHMS.names()) | set(DATA.names()) | set(EVALUATIONS.names()) <= words
    assert set(GROUPS) | {"ablate", "report"} <= words


def test_help_imports_no_torch():
    """`import rlcore` and `rlcore --help` stay light: no torch (the public names are lazy attributes)."""
    import subprocess
    import sys

    code = ("import sys, rlcore; assert 'torch' not in sys.modules, 'import'; from rlcore.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'help'; rlcore.train; rlcore.ODICEConfig\n"
            "assert 'torch' in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
