from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rlcore import checkpoint as ckpt_mod
from rlcore.checkpoint import CheckpointManager, flatten_state, load_state, save_state, unflatten_state
from rlcore.errors import UserError
from rlcore.runtime import rng_state, set_rng_state


def _example_state():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "numpy": np.arange(6, dtype=np.float32).reshape(2, 3),
        "tuple": (1, 2.5, "x", None, True),
        "floats": [float("nan"), float("inf"), -float("inf"), 0.1],
        "int_keys": {0: "a", 7: torch.tensor([1, 2])},
        "rng": rng_state(),
        "scalar": np.float64(1.5),
    }


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and type(a) is type(b) or (isinstance(a, np.floating) and float(a) == b)


def test_flatten_round_trip_in_memory():
    state = _example_state()
    tensors, tree = flatten_state(state)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    _assert_same(state, unflatten_state(tensors, tree))


def test_save_load_round_trip_and_optimizer_resumes(tmp_path):
    state = _example_state()
    save_state(state, tmp_path / "c")
    loaded = load_state(tmp_path / "c")
    _assert_same(state, loaded)
    # the loaded optimizer state is usable by torch
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    model.load_state_dict(loaded["model"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.load_state_dict(loaded["optimizer"])
    assert opt.state_dict()["state"][0]["step"] == state["optimizer"]["state"][0]["step"]


def test_loading_part_of_a_checkpoint_reads_only_its_tensors(tmp_path, monkeypatch):
    state = {"algo": _example_state(), "step": 3}
    save_state(state, tmp_path / "c")
    read = []
    real_open = ckpt_mod.safe_open

    class Recording:
        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)

        def __enter__(self):
            self.inner = self.file.__enter__()
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def get_tensor(self, name):
            read.append(name)
            return self.inner.get_tensor(name)

    monkeypatch.setattr(ckpt_mod, "safe_open", Recording)
    _assert_same(state["algo"]["model"], load_state(tmp_path / "c", ("algo", "model")))
    assert read and all(name.startswith("state.algo.model.") for name in read)  # no optimiser tensor was read
    assert len(read) == len(state["algo"]["model"])
    _assert_same(state["algo"]["numpy"], load_state(tmp_path / "c", ["algo", "numpy"]))
    manager = CheckpointManager(tmp_path / "run")
    manager.save(3, state)
    _assert_same(state["algo"]["model"], manager.load(3, ("algo", "model")))
    with pytest.raises(UserError, match=r"has no state 'algo\.weights'$"):
        load_state(tmp_path / "c", ("algo", "weights"))


def test_rng_state_round_trip(tmp_path):
    import random

    save_state({"rng": rng_state()}, tmp_path / "r")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_state(tmp_path / "r")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_no_pickle_in_checkpoint_files(tmp_path):
    save_state(_example_state(), tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["state.json", "tensors.safetensors"]


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=1)
    manager.save(1, {"w": torch.ones(3)})

    def explode(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt_mod.json, "dump", explode)
    with pytest.raises(OSError, match="simulated"):
        manager.save(2, {"w": torch.zeros(3)})
    monkeypatch.undo()
    assert manager.steps() == [1]
    assert not list(tmp_path.glob(".*.tmp")), "temporary files must be cleaned up"
    step, state = manager.load_latest()
    assert step == 1 and torch.equal(state["w"], torch.ones(3))


def test_replacing_same_step_is_atomic(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=1)
    manager.save(5, {"w": torch.ones(2)})
    real_rename = os.rename
    calls = []

    def crash_on_second_rename(src, dst):
        calls.append((src, dst))
        real_rename(src, dst)
        if len(calls) == 1:  # parked the old one; die before moving the new one in
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.os, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        manager.save(5, {"w": torch.zeros(2)})
    monkeypatch.undo()
    step, state = manager.load_latest()  # the parked checkpoint is restored
    assert step == 5 and torch.equal(state["w"], torch.ones(2))


_WRITER = """
import sys, torch
from rlcore.checkpoint import CheckpointManager, write_state
m = CheckpointManager(sys.argv[1], keep_last=2)
step = 0
while True:
    step += 1
    m.save(step, {"w": torch.full((300_000,), float(step)), "step": step})
    if step % 3 == 0:
        m.save_best(step, "s", {"s": float(step)}, lambda d: write_state({"w": torch.full((300_000,), step)}, d))
"""


@pytest.mark.parametrize("delay", [0.35, 0.8, 1.3])
def test_sigkill_during_writes_leaves_loadable_checkpoints(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)])
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob("step_*")) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    manager = CheckpointManager(tmp_path, keep_last=2)
    steps = manager.steps()
    assert steps, "at least one checkpoint must survive"
    for step in steps:
        state = manager.load(step)
        assert state["step"] == step and torch.all(state["w"] == step)
    best = manager.best
    if best is not None:  # the best policy on disk is the one its record names, whatever the moment of the kill
        assert torch.all(load_state(manager.best_path())["w"] == best["step"])
    manager.save(steps[-1] + 1, {"w": torch.zeros(1), "step": 0})  # cleans up and continues
    assert not list(tmp_path.glob(".*.tmp"))


def test_keeps_last_n_and_the_best_policy_apart(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 6):
        manager.save(step, {"s": step})
        if step == 2:
            manager.save_best(2, "eval/score", {"eval/score": 0.9, "eval/mse": 0.1},
                              lambda d: ckpt_mod.write_state({"policy": torch.full((2,), 2.0)}, d))
    assert manager.steps() == [4, 5]  # the best is its own directory, not a kept checkpoint
    assert manager.best == {"step": 2, "key": "eval/score", "metric": 0.9,
                            "metrics": {"eval/score": 0.9, "eval/mse": 0.1}, "path": "best"}
    assert json.loads((tmp_path / "best.json").read_text()) == manager.best
    assert torch.equal(load_state(manager.best_path())["policy"], torch.full((2,), 2.0))
    manager.save_best(5, "eval/score", {"eval/score": 1.0}, None)  # no policy writer: best.json only
    assert manager.best["step"] == 5 and manager.best_path() is None


def test_damaged_checkpoint_is_reported_and_skipped(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {"w": torch.ones(2)})
    manager.save(2, {"w": torch.ones(2) * 2})
    (manager.path(2) / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="damaged"):
        manager.load(2)
    step, state = manager.load_latest()
    assert step == 1
    with pytest.raises(UserError, match="is not a checkpoint"):
        load_state(tmp_path)


def test_stale_temporaries_of_a_crash_are_removed_on_the_next_save(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save(1, {"w": torch.zeros(1)})
    (tmp_path / ".latest.json.abc123.tmp").write_text('{"st')  # a pointer killed mid-write (a file)
    (tmp_path / ".step_000000002.xyz.tmp").mkdir()  # a checkpoint killed mid-write (a folder)
    manager.save(2, {"w": torch.ones(1)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step_000000001", "step_000000002"]
