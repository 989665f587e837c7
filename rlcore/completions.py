"""The completions log of a run (``completions.jsonl``): one JSON object per sampled response, and a view of it.

An algorithm that samples responses (GRPO, G2RL) appends a record per response every ``log_completions_every``
steps; the keys it writes are its own (GRPO: ``step``, ``round``, ``prompt_id``, ``response``, ``rewards`` per
function, ``reward``, ``shaped_reward``, ``advantage``, ``nu``, ``length``, ``truncated``, ``correct``,
``trained``). ``rlcore report RUN --completions STEP`` prints the most and least novel correct responses of a step
(by ``nu``, G2RL's novelty of the response's gradient feature within its group).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlcore.errors import UserError
from rlcore.io import atomic_write_text
from rlcore.logging import read_jsonl

COMPLETIONS_FILE = "completions.jsonl"


def read_completions(path: str | Path) -> list[dict[str, Any]]:
    """All records of a completions log (a run directory or the file); skips a torn last line."""
    p = Path(path)
    return read_jsonl(p / COMPLETIONS_FILE if p.is_dir() else p)


class CompletionLog:
    """Appends records to ``<run_dir>/completions.jsonl``.

    ``resume_step``: records after that step (from an interrupted attempt) are dropped first (the file is
    rewritten atomically), so a resumed run's log reads as one run; None keeps everything. ``write=False``
    (non-main processes) writes nothing.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, write: bool = True):
        self.path = Path(run_dir) / COMPLETIONS_FILE
        self.write = write
        if write and resume_step is not None and self.path.is_file():
            kept = [r for r in read_completions(self.path) if r.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append the records as JSON lines in one write, flushed to disk."""
        if not self.write:
            return
        text = "".join(json.dumps(r) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def novel_correct(records: list[dict[str, Any]], step: int | None = None, k: int = 3
                  ) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """(step, the ``k`` most novel correct responses, the ``k`` least novel) of ``step`` (None: the last step
    with correct responses that have a novelty ``nu``), most novel first in both lists."""
    usable = [r for r in records if r.get("correct") and r.get("nu") is not None]
    if not usable:
        raise UserError("the completions log has no correct response with a novelty nu; log completions of a run "
                        "that computes Phi (G2RL, or geometry_diagnostics=true) with log_completions_every")
    steps = sorted({int(r["step"]) for r in usable})
    if step is None:
        step = steps[-1]
    if step not in steps:
        raise UserError(f"no correct response with a novelty nu at step {step}; steps with some: "
                        f"{', '.join(map(str, steps[-10:]))}")
    ranked = sorted((r for r in usable if int(r["step"]) == step), key=lambda r: -float(r["nu"]))
    return step, ranked[:k], ranked[::-1][:k][::-1]


def _line(r: dict[str, Any], width: int = 100) -> str:
    text = " ".join(str(r.get("response", "")).split())
    text = text if len(text) <= width else text[:width - 3] + "..."
    return f"  nu {float(r['nu']):.3f}  reward {float(r.get('reward', float('nan'))):+.2f}  " \
           f"prompt {r.get('prompt_id', '?')}: {text}"


def format_novel(run_dir: str | Path, step: str = "last", k: int = 3) -> str:
    """Text block with the most and least novel correct responses of ``step`` ('last' or a number)."""
    records = read_completions(run_dir)
    if not records:
        raise UserError(f"no {COMPLETIONS_FILE} under '{run_dir}'; train with --set log_completions_every=N")
    if step != "last" and not step.isdigit():
        raise UserError(f"--completions takes a step number or 'last', got '{step}'")
    found, most, least = novel_correct(records, None if step == "last" else int(step), k)
    lines = [f"step {found}: most novel correct responses"] + [_line(r) for r in most]
    lines += [f"step {found}: least novel correct responses"] + [_line(r) for r in least]
    return "\n".join(lines)
