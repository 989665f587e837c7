"""The completions log (``completions.jsonl``) and ``rlcore report RUN --completions STEP``, its viewer.

The log is a file format, written by any algorithm that samples several responses per prompt (GRPO and G2RL
with ``log_completions_every``): one JSON object per response with

- ``step`` (int), ``round`` (int, 0 unless extra sampling rounds), ``group`` (int, the prompt's position in the
  step), ``prompt_id`` (str), ``prompt`` (str, the question as the dataset gives it), ``response`` (str);
- ``rewards`` ({function name: score or null}), ``reward`` (their weighted sum, the reward before shaping),
  ``shaped_reward`` (after reward shaping), ``advantage`` (what the loss used), ``nu`` (novelty or null);
- ``length`` (tokens), ``truncated``, ``correct``, ``trained`` (bool).

The viewer shows one step: per prompt (text shortened), its distinct responses with how many times each was
sampled, each reward function's score, the reward, the shaped reward and the advantage (means over the copies).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlcore.errors import UserError
from rlcore.logging import read_jsonl

COMPLETIONS_FILE = "completions.jsonl"


def read_completions(path: str | Path) -> list[dict[str, Any]]:
    """All records of a completions log (a run directory or the file); skips a torn last line."""
    p = Path(path)
    return read_jsonl(p / COMPLETIONS_FILE if p.is_dir() else p)


def shorten(text: str, width: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``width`` characters with ``...``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def _mean(values: list[Any]) -> float:
    found = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(found) / len(found) if found else math.nan


def distinct_responses(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct responses among one prompt's records, most sampled first (then highest advantage): each with
    ``response``, ``count``, ``rewards`` (per function), ``reward``, ``shaped_reward``, ``advantage`` and ``nu``
    (means over its copies; nan where none was recorded) and ``correct`` (any copy correct)."""
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_text.setdefault(str(r.get("response", "")), []).append(r)
    out = []
    for text, copies in by_text.items():
        names = list(dict.fromkeys(n for c in copies for n in (c.get("rewards") or {})))
        out.append({"response": text, "count": len(copies),
                    "rewards": {n: _mean([(c.get("rewards") or {}).get(n) for c in copies]) for n in names},
                    **{k: _mean([c.get(k) for c in copies]) for k in ("reward", "shaped_reward", "advantage", "nu")},
                    "correct": any(bool(c.get("correct")) for c in copies)})
    return sorted(out, key=lambda d: (-d["count"], -(d["advantage"] if not math.isnan(d["advantage"]) else 0.0)))


def _number(name: str, value: float, sign: str = "") -> str:
    return f"{name} {'-' if math.isnan(value) else format(value, sign + '.2f')}"


def _response_line(d: dict[str, Any], width: int) -> str:
    scores = "  ".join(_number(n, v) for n, v in d["rewards"].items())
    parts = [f"x{d['count']:<3}", scores, _number("reward", d["reward"], "+"),
             _number("shaped", d["shaped_reward"], "+"), _number("adv", d["advantage"], "+")]
    if not math.isnan(d["nu"]):
        parts.append(_number("nu", d["nu"]))
    parts.append("correct" if d["correct"] else "wrong")
    return "    " + "  ".join(p for p in parts if p) + f"  | {shorten(d['response'], width) or '(empty)'}"


def format_completions(run_dir: str | Path, step: str = "last", top: int = 5, width: int = 80) -> str:
    """Text view of ``step`` ('last' or a number) of a run's completions log: per prompt, its text and its
    ``top`` most sampled distinct responses with counts and scores."""
    if step != "last" and not step.isdigit():
        raise UserError(f"--completions takes a step number or 'last', got '{step}'")
    records = read_completions(run_dir)
    if not records:
        raise UserError(f"no {COMPLETIONS_FILE} under '{run_dir}'; train with --set log_completions_every=N")
    steps = sorted({int(r["step"]) for r in records if "step" in r})
    found = steps[-1] if step == "last" else int(step)
    if found not in steps:
        raise UserError(f"no completions logged at step {found}; steps with some: {', '.join(map(str, steps[-10:]))}")
    prompts: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for r in records:
        if int(r.get("step", -1)) == found:
            key = (int(r.get("round", 0)), int(r.get("group", 0)), str(r.get("prompt_id", "?")))
            prompts.setdefault(key, []).append(r)
    total = sum(len(v) for v in prompts.values())
    lines = [f"step {found}: {total} responses to {len(prompts)} prompts (distinct responses, most sampled first; "
             "scores are means over the copies; reward = weighted sum of the functions, before shaping)"]
    for (rnd, _, prompt_id), group in sorted(prompts.items()):
        distinct = distinct_responses(group)
        where = f" (round {rnd})" if rnd else ""
        text = group[0].get("prompt")
        lines.append(f"prompt {prompt_id}{where}: " + (shorten(text, 2 * width) if text else "(no prompt text logged)")
                     + f"  [{len(group)} responses, {len(distinct)} distinct]")
        lines += [_response_line(d, width) for d in distinct[:top]]
        if len(distinct) > top:
            lines.append(f"    ... {len(distinct) - top} more distinct responses (--top {len(distinct)} shows all)")
    return "\n".join(lines)
