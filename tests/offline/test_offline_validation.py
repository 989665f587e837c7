"""Every bad dataset gives one DataError line that names the file, the key and the fix; the CLI prints it alone."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli
from offline_helpers import episodic_arrays, write_file

from rlcore.envs.offline import load_dataset
from rlcore.errors import DataError


def good(**changes):
    arrays = episodic_arrays([6, 4], ["terminal", "timeout"], obs_dim=11, act_dim=3)
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def renamed(old, new):
    arrays = good()
    arrays[new] = arrays.pop(old)
    return arrays


def with_value(key, index, value):
    arrays = good()
    arrays[key] = arrays[key].astype(np.float32 if key != "terminals" else np.float64)
    arrays[key][index] = value
    return arrays


BAD = [
    ("missing key", good(rewards=None), "has no key 'rewards'; D4RL files need observations, actions, rewards"),
    ("misnamed rewards", renamed("rewards", "reward"), "has no key 'rewards' but has 'reward'; rename 'reward'"),
    ("misnamed terminals", renamed("terminals", "dones"), "has no key 'terminals' but has 'dones'; rename"),
    ("missing timeouts", good(timeouts=None), "has no key 'timeouts'; add it, or name the task"),
    ("length mismatch", good(rewards=np.zeros(9, np.float32)), "key 'rewards' has 9 rows but 'observations' has 10"),
    ("nan", with_value("observations", (3, 1), np.nan), "key 'observations' has NaN at row 3, column 1"),
    ("inf", with_value("rewards", 7, np.inf), "key 'rewards' has inf at row 7"),
    ("nan next obs", with_value("next_observations", (2, 0), np.nan), "key 'next_observations' has NaN at row 2"),
    ("bad flag", with_value("terminals", 4, 2.0), "key 'terminals' has value 2.0 at row 4; flags must be 0/1"),
    ("discrete", good(actions=np.arange(10) % 3), "key 'actions' holds integers (3 distinct values"),
    ("1-D actions", good(actions=np.zeros(10, np.float32)), "key 'actions' has shape (10,), expected (N, act_dim)"),
    ("2-D rewards", good(rewards=np.zeros((10, 1), np.float32)), "key 'rewards' has shape (10, 1), expected (N,)"),
    ("next obs shape", good(next_observations=np.zeros((10, 4), np.float32)), "'next_observations' has shape"),
    ("zero rows", {k: v[:0] for k, v in good().items()}, "has 0 rows"),
    ("empty file", {}, "is empty (no arrays)"),
]


@pytest.mark.parametrize("name, arrays, message", BAD, ids=[b[0] for b in BAD])
def test_bad_files_give_one_clear_line(tmp_path, name, arrays, message):
    path = write_file(tmp_path / "bad.hdf5", arrays)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


@pytest.mark.parametrize("task, message", [
    ("halfcheetah-medium-v2", "observations of size 11 but task 'halfcheetah-medium-v2' (HalfCheetah-v5) expects 17"),
    ("pendulum-expert-v0", "observations of size 11 but task 'pendulum-expert-v0' (Pendulum-v1) expects 3"),
])
def test_wrong_sizes_for_the_task(tmp_path, task, message):
    path = write_file(tmp_path / "hopper.hdf5", good())
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(path, task=task)


def test_wrong_action_size_for_the_task(tmp_path):
    path = write_file(tmp_path / "x.hdf5", good(actions=np.zeros((10, 6), np.float32)))
    with pytest.raises(DataError, match="actions of size 6 but task 'hopper-medium-v2' .* expects 3"):
        load_dataset(path, task="hopper-medium-v2")


def test_truncated_and_foreign_files(tmp_path):
    path = write_file(tmp_path / "whole.hdf5", good())
    data = path.read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.hdf5' is not a readable HDF5 file \\(truncated or damaged"):
        load_dataset(cut)
    text = tmp_path / "notes.hdf5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="is not an HDF5 file; it looks like plain text"):
        load_dataset(text)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing.hdf5")


def test_cli_prints_the_error_as_one_line(tmp_path):
    path = write_file(tmp_path / "bad.hdf5", renamed("observations", "obs"))
    result = run_cli("data", "info", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "rename 'obs' to 'observations'" in lines[0]


@pytest.mark.parametrize("head, words", [
    (b"", "empty (0 bytes)"),
    (b"obs,act,rew\n0.1,0.2,1\n0.3,0.4,0\n", "CSV text (first line 'obs,act,rew')"),
    (b"a\tb\n1\t2\n", "tab-separated text"),
    (b'{"observations": []}', "JSON text"),
    (b"<html><body>502 Bad Gateway</body></html>", "HTML or XML text"),
    (b"PK\x03\x04rest", "ZIP archive"),
    (b"\x1f\x8b\x08\x00", "gzip-compressed"),
    (b"\x93NUMPY\x01\x00", "NumPy .npy"),
    (b"\x80\x04\x95\x00", "Python pickle"),
    (b"\xff\xfe\x00\x01\x02", "binary data of another format"),
    ("héllo wörld".encode()[:2], "plain text"),  # a character cut in two at the end of the sample
    (b"just some notes\n", "plain text (first line 'just some notes')"),
])
def test_sniff_names_what_a_non_hdf5_file_looks_like(head, words):
    from rlcore.envs.offline.hdf5 import sniff

    assert words in sniff(head)
