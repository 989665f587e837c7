"""The distribution installs everything under the rlcore name and lists every package folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import tomllib
from conftest import REPO

from rlcore.algorithm import AlgorithmSpec
from rlcore.algorithms.grpo.registry import ShaperSpec
from rlcore.cli.commands import Command
from rlcore.plugins import load_target


def _declared() -> tuple[dict[str, str], list[str]]:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return setuptools["package-dir"], setuptools["packages"]


def test_every_package_folder_is_declared_under_the_rlcore_name():
    package_dir, packages = _declared()
    found = set()
    for package, folder in package_dir.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]))
    assert found == set(packages)
    assert all(p == "rlcore" or p.startswith("rlcore.") for p in packages)


def test_wheel_holds_only_the_rlcore_package(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves no build/ folder in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("rlcore", "algorithms", "envs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("rlcore-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"rlcore"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "rlcore/algorithms/odice/odice.py" in names and "rlcore/envs/offline/d4rl_ref_scores.json" in names


KINDS = {"rlcore.algorithms": AlgorithmSpec, "rlcore.data": Command, "rlcore.eval": Command,
         "rlcore.shapers": ShaperSpec}


def test_every_declared_entry_point_loads_as_its_groups_kind():
    """Each built-in declared in pyproject.toml imports and is what its group promises (a spec named like its
    entry point, a command, a shaper spec, a reward or reference-score function)."""
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {"rlcore.algorithms", "rlcore.data", "rlcore.eval", "rlcore.reference_scores", "rlcore.shapers",
            "rlcore.rewards"} <= set(groups)
    for group, table in groups.items():
        for name, target in table.items():
            obj = load_target(target)
            if group in KINDS:
                assert isinstance(obj, KINDS[group]), (group, name, type(obj))
            else:
                assert callable(obj), (group, name)
            if group == "rlcore.algorithms":
                assert obj.name == name, (name, obj.name)
