"""Prompts and math problems as one normalised record type, from the forms users have them in.

:func:`load_records` takes a ``datasets.Dataset``, a list of dicts, a JSONL or Parquet path, a benchmark name or a
datasets-hub id. Two row layouts:

- TRL's: ``prompt`` (a string used as it is, or a list of ``{"role", "content"}`` chat messages rendered with the
  model's chat template) and optionally ``answer`` or ``solution`` (its last ``\\boxed{}``); rows without answers
  train on reward functions alone;
- the math releases': MATH / MATH-500 (``problem``, ``solution``, ``answer``), GSM8K (``question``, ``answer``
  ending in ``#### x``), AIME 2024 / 2025 and AMC 2023 (``problem``, ``answer``); the question gets the G2RL
  instruction (:func:`rlcore.envs.reasoning.prompts.build_prompt`), and rows without any answer are dropped.

Every other field of a row is kept in ``metadata`` and reaches the reward functions. Benchmark names resolve to
files in a data folder (``data_dir=``, else ``$RLCORE_MATH_DATA``).
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
    """One problem: ``prompt`` is the bare question (:func:`rlcore.envs.reasoning.prompts.build_prompt` adds the
    instruction), or, when ``verbatim``, the prompt text or chat messages to use as they are."""

    id: str
    prompt: str | list[dict[str, str]]
    answer: str | None
    """Gold final answer as text ("025", "27.0", "\\frac{1}{2}"); None when the row has none."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Everything else in the source row (solution, level, subject, url, ...) and ``benchmark`` (its source name)."""
    verifier: str = "math"
    """Which reward checks it: "math" (math-verify) or "arith" (the exact toy-task checker)."""
    verbatim: bool = False
    """True for TRL-layout rows: the prompt is used as given, without the instruction."""


def _is_chat(prompt: Any) -> bool:
    return isinstance(prompt, list) and bool(prompt) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt)


def _prompt_row(row: dict[str, Any], source: str, index: int) -> MathRecord:
    """A TRL-layout row (``prompt`` and optionally ``answer`` / ``solution``)."""
    prompt = row["prompt"]
    if not isinstance(prompt, str) and not _is_chat(prompt):
        raise DataError(f"{source} row {index}: 'prompt' must be a string or a list of {{'role', 'content'}} chat "
                        f"messages, got {str(prompt)[:60]!r}")
    answer = row.get("answer")
    if answer is None and isinstance(row.get("solution"), str):
        answer = extract_boxed(row["solution"]) or row["solution"]
    meta = {k: v for k, v in row.items() if k not in ("prompt", "answer", "id")}
    return MathRecord(id=f"{source}/{row.get('id', index)}", prompt=prompt,
                      answer=None if answer is None else str(answer).strip(),
                      metadata={**meta, "benchmark": source}, verbatim=True)


def normalize_row(row: dict[str, Any], source: str, index: int) -> MathRecord | None:
    """Map a row of any supported layout to a :class:`MathRecord`; None when a math-layout row has no answer."""
    if "prompt" in row:
        return _prompt_row(row, source, index)
    question = row.get("problem", row.get("question"))
    if not isinstance(question, str) or "answer" not in row and "solution" not in row:
        raise DataError(f"{source} row {index}: expected a 'prompt' (TRL layout), or a 'problem' or 'question' text "
                        f"with an 'answer' (or 'solution'); found keys {sorted(row)}")
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


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(f"reading {path} needs pyarrow (pip install pyarrow, or the datasets package)") from e
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path} is not a readable Parquet file ({type(e).__name__}: {e})") from e


def _rows_of(data: Any) -> list[dict[str, Any]]:
    """Rows of an in-memory dataset: a ``datasets.Dataset`` or any sequence of dicts."""
    try:
        rows = [dict(r) for r in data]
    except (TypeError, ValueError) as e:
        raise DataError(f"a dataset must be a datasets.Dataset, a list of dicts, a JSONL or Parquet path or a "
                        f"benchmark name; got {type(data).__name__}") from e
    return rows


def load_math_dataset(name_or_path: Any, *, data_dir: str | Path | None = None, split: str = "test",
                      limit: int | None = None) -> list[MathRecord]:
    """Records of a benchmark name (``math500``, ``aime24``, ``aime25``, ``amc23``, ``gsm8k``, ``math_train``,
    ``gsm8k_train``, or ``arith`` for the toy task), a JSONL or Parquet path, a datasets-hub id (``split`` applies
    there), a ``datasets.Dataset`` or a list of dicts (rows in either layout of the module docstring).

    Math-layout rows without any answer (two in MATH train) are dropped. ``limit`` keeps the first rows.

    >>> records = load_math_dataset([{"prompt": "Say hi", "lang": "en"}])
    >>> records[0].prompt, records[0].answer, records[0].metadata["lang"]
    ('Say hi', None, 'en')
    """
    if not isinstance(name_or_path, (str, Path)):
        rows, source, name = _rows_of(name_or_path), "data", type(name_or_path).__name__
    else:
        name = str(name_or_path)
        if name == "arith":
            from rlcore.envs.reasoning.arith import make_arith_dataset

            return make_arith_dataset()[:limit]
        path = Path(name).expanduser()
        if path.is_file():
            rows, source = (_read_parquet(path) if path.suffix == ".parquet" else _read_jsonl(path)), path.stem
        elif name in BENCHMARK_FILES:
            rows, source = _read_jsonl(resolve_benchmark(name, data_dir)), name
        elif "/" in name and not path.suffix:
            rows, source = _load_hub(name, split)
        else:
            raise DataError(f"'{name}' is neither a JSONL or Parquet file nor a benchmark name; use a path or one of "
                            f"{', '.join([*BENCHMARK_FILES, 'arith'])}")
    records = [r for i, row in enumerate(rows) if (r := normalize_row(row, source, i)) is not None]
    if not records:
        raise DataError(f"'{name}' has no problem or prompt; give rows with a 'prompt', or math problems with answers")
    return records[:limit]


def require_answers(records: list[MathRecord], why: str) -> None:
    """DataError naming the missing field unless every record has an answer (``why``: what needs them)."""
    missing = next((r for r in records if r.answer is None), None)
    if missing is not None:
        raise DataError(f"{why} needs the field 'answer' (or 'solution') in every row; row '{missing.id}' has none")
