"""docs/offline-data.md: its Python example runs as written, and its data.json example has the keys a D4RL run
records."""

from __future__ import annotations

import json
import re

from conftest import REPO
from offline_helpers import episodic_arrays

from rlcore.envs.offline import load_dataset
from rlcore.envs.offline.hdf5 import write_hdf5
from rlcore.envs.offline.provenance import provenance

DOC_PATH = REPO / "docs" / "offline-data.md"
DOC = DOC_PATH.read_text()


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    assert blocks, "the page shows a runnable example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOC_PATH), "exec"), {})  # noqa: S102 (our own documentation)
    assert capsys.readouterr().out.strip().endswith("user user")


def test_data_json_example_has_the_keys_of_a_d4rl_run(tmp_path):
    (example,) = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, flags=re.S)]
    path = write_hdf5(tmp_path / "hopper_medium-v2.hdf5", episodic_arrays([4, 4], ["terminal", "timeout"], 11, 3))
    recorded = provenance(load_dataset(path, task="hopper-medium-v2"), d4rl_name="hopper-medium-v2")
    assert example.keys() == recorded.keys() and example["source"] == recorded["source"] == "d4rl"
