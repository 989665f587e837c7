"""The repository is self-contained: no file cites internal notes outside it, and every ``docs/*.md`` citation
names an existing file (and, where it quotes section names, headings of that file)."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import REPO

# Written so that a plain-text search for the forbidden paths does not find this file itself.
OUTSIDE = re.compile(r"shared[/]specs|specs[/](?:g2rl|odice)|(?<![\w.~-])[/]work[/]")
DOC_CITATION = re.compile(r"docs/([\w.-]+\.md)")
SECTIONS = re.compile(r'[:,]?\s*\(?((?:"[^"\n]+"(?:,\s*|\s+and\s+)?)+)')


def _repo_texts() -> dict[str, str]:
    """Tracked and untracked-but-not-ignored text files of the checkout, by repository-relative path."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"needs a git checkout to list the repository's files ({e})")
    texts = {}
    for name in out.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def _headings(markdown: str) -> set[str]:
    return {line.lstrip("#").strip() for line in markdown.splitlines() if re.match(r"#{1,6} ", line)}


def citations(text: str) -> list[tuple[str, list[str]]]:
    """``(doc file name, quoted section names)`` for every ``docs/<name>.md`` in ``text``."""
    out = []
    for match in DOC_CITATION.finditer(text):
        tail = SECTIONS.match(text, match.end())
        out.append((match.group(1), re.findall(r'"([^"\n]+)"', tail.group(1)) if tail else []))
    return out


def test_citation_parser_reads_the_forms_used_in_the_code():
    text = ('see docs/odice.md "Default constants". (docs/g2rl.md: "Novelty", "Reward scaling") '
            'docs/g2rl.md ("Baselines") [g2rl](docs/g2rl.md)')
    assert citations(text) == [("odice.md", ["Default constants"]), ("g2rl.md", ["Novelty", "Reward scaling"]),
                               ("g2rl.md", ["Baselines"]), ("g2rl.md", [])]
    assert OUTSIDE.search("see ../shared/" + "spe" + "cs/odice.md") and OUTSIDE.search("at /" + "work/shared/x")
    assert not OUTSIDE.search("https://example.org/work/x")


def test_no_file_cites_internal_notes_outside_the_repository():
    hits = [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for name, text in _repo_texts().items() for m in OUTSIDE.finditer(text)]
    assert not hits, "cite docs/<algo>.md or the paper instead:\n" + "\n".join(hits)


def test_every_docs_citation_names_an_existing_file_and_heading():
    texts = _repo_texts()
    problems = []
    for name, text in texts.items():
        for doc, sections in citations(text):
            target = REPO / "docs" / doc
            if not target.is_file():
                problems.append(f"{name}: docs/{doc} does not exist")
                continue
            missing = [s for s in sections if s not in _headings(target.read_text(encoding="utf-8"))]
            if missing:
                problems.append(f"{name}: docs/{doc} has no heading {missing}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", ["odice.md", "g2rl.md"])
def test_algorithm_docs_exist_and_are_cited_from_code(doc):
    texts = _repo_texts()
    assert f"docs/{doc}" in texts
    assert any(name.startswith(("rlcore/", "algorithms/")) and f"docs/{doc}" in text for name, text in texts.items())
