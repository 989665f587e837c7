"""Writing the completions log of a GRPO run (``completions.jsonl``, the format of :mod:`rlcore.report.completions`).

Every ``log_completions_every`` steps the trainer appends one record per sampled response
(:func:`rlcore.algorithms.grpo.step.completion_records`); ``rlcore report RUN --completions STEP`` shows them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlcore.io import atomic_write_text
from rlcore.report.completions import COMPLETIONS_FILE, read_completions


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
