"""Math benchmarks as one normalised record type, read from local JSONL (or a datasets-hub id when reachable).

Names resolve to files in a data folder (``data_dir=``, else ``$RLCORE_MATH_DATA``) with the layouts of the
public releases: MATH / MATH-500 (``problem``, ``solution``, ``answer``), GSM8K (``question``, ``answer`` ending in
``#### x``), AIME 2024 / 2025 and AMC 2023 (``problem``, ``answer``; AIME answers may be zero-padded, AMC floats).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.envs.reasoning.extract import extract_boxed
from rlcore.errors import DataError

BENCHMARK_FILES = {
    "math_train": "math_train.jsonl", "math500": "math500.jsonl", "gsm8k": "gsm8k_test.jsonl",
    "gsm8k_train": "gsm8k_train.jsonl", "aime24": "aime24.jsonl", "aime25": "aime25.jsonl", "amc23": "amc23.jsonl",
}
"""Benchmark name -> JSONL file name in the data folder."""
DATA_DIR_ENV = "RLCORE_MATH_DATA"


@dataclass(frozen=True)
class MathRecord:
    """One problem: ``prompt`` is the bare question (apply :func:`rlcore.envs.reasoning.prompts.build_prompt` to it)."""

    id: str
    prompt: str
    answer: str
    """Gold final answer as text ("025", "27.0", "\\frac{1}{2}")."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Everything else in the source row (solution, level, subject, url, ...) and ``benchmark`` (its source name)."""
    verifier: str = "math"
    """Which reward checks it: "math" (math-verify) or "arith" (the exact toy-task checker)."""


def normalize_row(row: dict[str, Any], source: str, index: int) -> MathRecord | None:
    """Map a row of any supported layout to a :class:`MathRecord`; None when it has no usable answer."""
    question = row.get("problem", row.get("question"))
    if not isinstance(question, str) or "answer" not in row and "solution" not in row:
        raise DataError(f"{source} row {index}: expected a 'problem' or 'question' text and an 'answer' (or "
                        f"'solution'), found keys {sorted(row)}; use the MATH, GSM8K, AIME or AMC JSONL layout")
    meta = {k: v for k, v in row.items() if k not in ("problem", "question", "answer", "id", "unique_id")}
    answer = row.get("answer")
    if isinstance(answer, str) and "####" in answer:  # GSM8K: the worked solution, then "#### final"
        meta["solution"], _, answer = answer.rpartition("####")
        answer = answer.strip().replace(",", "")
    if answer is None and isinstance(row.get("solution"), str):
        answer = extract_boxed(row["solution"])
    if answer is None or str(answer).strip() == "":
        return None
    rid = row.get("unique_id", row.get("id", index))
    return MathRecord(id=f"{source}/{rid}", prompt=question, answer=str(answer).strip(),
                      metadata={**meta, "benchmark": source})


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n} is not UTF-8 text ({e.reason} at byte {e.start}); save the file as "
                                "UTF-8 JSONL") from e
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise DataError(f"{path}:{n} is not valid JSON ({e}); each line must be one JSON object") from e
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n} is not a JSON object; each line must be one problem as an object")
            rows.append(row)
    return rows


def resolve_benchmark(name: str, data_dir: str | Path | None = None) -> Path:
    """The JSONL file of benchmark ``name`` in ``data_dir`` (else ``$RLCORE_MATH_DATA``)."""
    folder = data_dir or os.environ.get(DATA_DIR_ENV)
    if not folder:
        raise DataError(f"benchmark '{name}' needs its JSONL folder: pass --data-dir DIR (or data_dir=) or set "
                        f"{DATA_DIR_ENV}=DIR, with files {', '.join(sorted(set(BENCHMARK_FILES.values())))}")
    path = Path(folder).expanduser() / BENCHMARK_FILES[name]
    if not path.is_file():
        raise DataError(f"benchmark '{name}' expects {path}, which does not exist; put {BENCHMARK_FILES[name]} "
                        "there or point --data-dir / RLCORE_MATH_DATA at the folder that has it")
    return path


def _load_hub(name: str, split: str) -> tuple[list[dict[str, Any]], str]:
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"'{name}' is not a local file or known benchmark; loading it from the datasets hub needs "
                        "the datasets package (pip install datasets)") from e
    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as e:  # the hub raises many types (connection, missing repo, missing split)
        raise DataError(f"cannot load '{name}' (split {split}) from the datasets hub ({type(e).__name__}); use a "
                        f"local JSONL file or one of {', '.join(BENCHMARK_FILES)} with --data-dir") from e
    return [dict(r) for r in data], name.rsplit("/", 1)[-1]


def load_math_dataset(name_or_path: str | Path, *, data_dir: str | Path | None = None, split: str = "test",
                      limit: int | None = None) -> list[MathRecord]:
    """Records of a benchmark name (``math500``, ``aime24``, ``aime25``, ``amc23``, ``gsm8k``, ``math_train``,
    ``gsm8k_train``, or ``arith`` for the toy task), a JSONL path, or a datasets-hub id (``split`` applies there).

    Rows without any answer (two in MATH train) are dropped. ``limit`` keeps the first rows.

    >>> records = load_math_dataset("aime24", data_dir="path/to/math")          # doctest: +SKIP
    >>> records[0].answer                                                        # doctest: +SKIP
    '204'
    """
    name = str(name_or_path)
    if name == "arith":
        from rlcore.envs.reasoning.arith import make_arith_dataset

        return make_arith_dataset()[:limit]
    if Path(name).expanduser().is_file():
        path = Path(name).expanduser()
        rows, source = _read_jsonl(path), path.stem
    elif name in BENCHMARK_FILES:
        rows, source = _read_jsonl(resolve_benchmark(name, data_dir)), name
    elif "/" in name and not Path(name).suffix:
        rows, source = _load_hub(name, split)
    else:
        raise DataError(f"'{name}' is neither a JSONL file nor a benchmark name; use a path or one of "
                        f"{', '.join([*BENCHMARK_FILES, 'arith'])}")
    records = [r for i, row in enumerate(rows) if (r := normalize_row(row, source, i)) is not None]
    if not records:
        raise DataError(f"'{name}' has no problem with an answer; check that it is a math JSONL file")
    return records[:limit]
