"""docs/python-api.md's examples, run as written (from a folder that sees the repository's configs/), so the page
cannot drift from the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO

DOC = (REPO / "docs" / "python-api.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, re.S)


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    (cwd / "configs").symlink_to(REPO / "configs")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def test_the_page_has_both_families():
    text = "".join(BLOCKS)
    assert "configs/odice/" in text and "G2RL" in DOC and ".act(" in text and "result.policy(" in text
    assert "dataset=arrays" in text and "reward_funcs=" in text and "def short(" in text


def test_examples_run_in_order(tmp_path):
    """The blocks are one session, as a reader would paste them into a notebook."""
    result = _run("\n".join(BLOCKS), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    out = result.stdout
    assert re.search(r"^finished -?\d", out, re.M), out  # status and the best normalised score
    assert re.search(r"^\[-?[\d.]+\] \(2, 1\)$", out, re.M), out  # one action, then a batch's shape
    assert re.search(r"^-?[\d.]+ -?[\d.]+$", out, re.M), out  # evaluation: return and normalised score
    assert re.search(r"^-?\d+\.\d+$", out, re.M), out  # the run on arrays: its last return
    assert re.search(r"^2 qwen3 ", out, re.M), out  # the G2RL run: steps, model type, eos token
    assert lines[-1] == "2", out  # the run on the user's rows with a callable reward finished its 2 steps
    metrics = (tmp_path / "runs" / "python-api-rows" / "metrics.jsonl").read_text()
    assert '"train/reward/short"' in metrics, "a callable reward is logged under its __name__"
