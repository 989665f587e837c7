"""The rules docs/ARCHITECTURE.md states, read from the page and checked on the source tree: the import table, the
module-size alarm and "registered once"."""

from __future__ import annotations

import ast
import re

import pytest
import tomllib
from conftest import REPO

FOLDERS = {"rlcore": "rlcore", "algorithms": "rlcore.algorithms", "envs": "rlcore.envs"}
ALARM_LINES = 500
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text()


def _modules() -> dict[str, tuple[str, ast.Module]]:
    """Dotted module name -> (repository path, parsed source), for every module of the three code folders."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = (str(path.relative_to(REPO)), ast.parse(path.read_text()))
    return out


MODULES = _modules()


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def doc_rules() -> list[tuple[str, str]]:
    """(importer, forbidden) pairs from the page's "may import / never imports" table."""
    section = DOC.split("## Packages and what each may import", 1)[1].split("\n## ", 1)[0]
    rules = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        importer = re.findall(r"`([\w.]+)`", cells[0])[0]
        rules += [(importer, forbidden) for forbidden in re.findall(r"`([\w.]+)`", cells[2])]
    return rules


def _owners(importer: str) -> list[str]:
    if importer == "rlcore":  # the core proper: not the two mapped folders that also live under the name
        return [m for m in MODULES if not _within(m, "rlcore.algorithms") and not _within(m, "rlcore.envs")]
    return [m for m in MODULES if _within(m, importer)]


def test_the_doc_states_the_rules_we_promised():
    rules = set(doc_rules())
    assert {("rlcore", "rlcore.algorithms"), ("rlcore", "rlcore.envs"), ("rlcore.geometry", "rlcore"),
            ("rlcore.logging", "rlcore.sweep"), ("rlcore.envs", "rlcore.algorithms")} <= rules


@pytest.mark.parametrize("importer, forbidden", doc_rules())
def test_import_rule(importer, forbidden):
    owners = _owners(importer)
    assert owners, f"the table names {importer}, which does not exist"
    bad = {}
    for m in owners:
        found = [i for i in _imports(MODULES[m][1]) if _within(i, forbidden) and not _within(i, importer)]
        if found:
            bad[m] = sorted(found)
    assert not bad, f"{importer} must not import {forbidden}: {bad}"


def test_no_module_over_the_size_alarm():
    too_long = {path: len((REPO / path).read_text().splitlines()) for path, _ in MODULES.values()}
    too_long = {p: n for p, n in too_long.items() if n > ALARM_LINES}
    assert not too_long, f"modules over {ALARM_LINES} lines (one job each?): {too_long}"


ENTRY_POINTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
BUILTINS = {**ENTRY_POINTS["rlcore.shapers"], **ENTRY_POINTS["rlcore.algorithms"]}
BUILTINS.pop("none")  # plain GRPO's "no shaper": the word is everywhere


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_a_builtin_algorithm_or_shaper_is_named_in_its_package_only(name):
    """Issue rule: a built-in's name is written in its own package and at most one registry line, which for
    rlcore is its entry point in pyproject.toml (not a Python file)."""
    package = "/".join(BUILTINS[name].split(":")[0].split(".")[1:3])  # rlcore.algorithms.x.spec -> algorithms/x
    quoted = re.compile(rf"""["']{re.escape(name)}["']""")
    files = sorted(path for path, _ in MODULES.values()
                   if quoted.search((REPO / path).read_text()))
    assert any(f.startswith(package + "/") for f in files), (package, files)
    outside = [f for f in files if not f.startswith(package + "/")]
    assert not outside, f"'{name}' is written in {outside}; name it in its own package ({package}/) only"
