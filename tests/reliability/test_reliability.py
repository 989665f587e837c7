"""Safe loading (no pickle/eval/exec on user data, torch.load only with weights_only=True) and flat memory."""

from __future__ import annotations

import ast
import gc
import resource
from pathlib import Path

import pytest
import torch
from conftest import REPO

from rlcore.algorithms.odice import ODICE, ODICEConfig

SOURCE_DIRS = ("rlcore", "algorithms", "envs", "benchmarks")


def _python_files():
    return sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py"))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):  # a bare call such as eval(...)
                yield node, None, f.id
            elif isinstance(f, ast.Attribute):  # owner.name(...); owner "" when it is not a plain name
                yield node, f.value.id if isinstance(f.value, ast.Name) else "", f.attr


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_unsafe_deserialisation(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n and n.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve")
                           for n in names), f"{path}:{node.lineno} imports a pickle-like module"
    for node, owner, name in _calls(tree):
        where = f"{path}:{node.lineno}"
        assert not (owner is None and name in ("eval", "exec", "compile")), f"{where} calls {name}()"
        assert not (owner == "builtins" and name in ("eval", "exec")), f"{where} calls builtins.{name}()"
        if owner == "torch" and name == "load":
            kw = {k.arg: k.value for k in node.keywords}
            assert "weights_only" in kw and isinstance(kw["weights_only"], ast.Constant) and \
                kw["weights_only"].value is True, f"{where}: torch.load without weights_only=True"
        if owner in ("yaml",) and name in ("load", "unsafe_load", "full_load"):
            raise AssertionError(f"{where}: yaml.{name}; use yaml.safe_load")
        if owner in ("np", "numpy") and name == "load":
            kw = {k.arg: k.value for k in node.keywords}
            assert not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value), where


def test_the_scanner_catches_what_it_looks_for(tmp_path):
    bad = "import pickle\ntorch.load(f)\neval('1')\n"
    tree = ast.parse(bad)
    found = {name for _, _, name in _calls(tree)}
    assert {"load", "eval"} <= found


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow
def test_memory_stays_flat_over_10k_odice_updates():
    torch.manual_seed(0)
    algo = ODICE(ODICEConfig(v_hidden=[32, 32], policy_hidden=[32, 32], batch_size=32), obs_dim=3, act_dim=1)
    g = torch.Generator().manual_seed(0)
    data = {"observations": torch.randn(1000, 3, generator=g), "actions": torch.rand(1000, 1, generator=g) * 2 - 1,
            "rewards": torch.randn(1000, generator=g), "next_observations": torch.randn(1000, 3, generator=g),
            "terminals": (torch.rand(1000, generator=g) < 0.05).float()}
    samples = []
    for step in range(10_000):
        idx = torch.randint(1000, (32,), generator=g)
        metrics = algo.update({k: v[idx] for k, v in data.items()})
        if step % 1000 == 999:
            gc.collect()
            samples.append(_rss_mb())
    assert torch.isfinite(metrics["v_loss"])
    growth = samples[-1] - samples[0]
    print(f"RSS over 10k O-DICE updates (MB, every 1000): {[round(s, 1) for s in samples]}; growth {growth:.1f}")
    assert growth < 8.0, samples


def test_dataset_files_are_read_once(tmp_path, monkeypatch):
    import h5py
    import numpy as np

    from rlcore.envs.offline import load_dataset

    n = 1000
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
        f["actions"] = np.zeros((n, 2), np.float32)
        f["rewards"] = np.ones(n, np.float32)
        f["terminals"] = np.zeros(n, bool)
        timeouts = np.zeros(n, bool)
        timeouts[499] = timeouts[-1] = True
        f["timeouts"] = timeouts
        f.create_group("infos")["qpos"] = np.zeros((n, 7))
    reads: dict[str, int] = {}
    real = h5py.Dataset.__getitem__

    def counting(self, key):
        reads[self.name] = reads.get(self.name, 0) + 1
        return real(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    data = load_dataset(path)
    assert len(data) == n - 2  # the two timeout steps are not transitions
    assert reads == {f"/{k}": 1 for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
