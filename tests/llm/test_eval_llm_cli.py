"""``rlcore eval llm`` end to end on the tiny model."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import run_cli, shared_data

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")


def test_eval_llm_tiny_writes_samples_and_tables(tmp_path):
    data = shared_data("math")
    out = tmp_path / "eval"
    result = run_cli("eval", "llm", "--model", "tiny", "--benchmarks", "arith,amc23", "--data-dir", str(data),
                     "--limit", "3", "--k", "2", "--max-new-tokens", "4", "--workers", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 3 * 2
    assert {s["benchmark"] for s in samples} == {"arith", "amc23"}
    assert all(isinstance(s["correct"], bool) and s["tokens"] <= 4 for s in samples)
    rows = list(csv.DictReader((out / "results.csv").open()))
    for row in rows[:2]:  # pass@1 is the share of samples the verifier judged correct
        verdicts = [s["correct"] for s in samples if s["benchmark"] == row["benchmark"]]
        assert float(row["pass@1"]) == pytest.approx(100 * sum(verdicts) / len(verdicts))
    assert [r["benchmark"] for r in rows] == ["arith", "amc23", "average"]
    assert set(rows[0]) == {"benchmark", "prompts", "pass@1", "maj@2", "pass@2"}
    assert "| benchmark |" in (out / "results.md").read_text() and "| average |" in result.stdout


def test_eval_llm_bad_input_is_one_line(tmp_path):
    result = run_cli("eval", "llm", "--benchmarks", "nope", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "neither a JSONL or Parquet file" in result.stderr
    result = run_cli("eval", "llm", "--benchmarks", "arith", "--top-p", "0", "--out", str(tmp_path))
    assert result.returncode == 2 and "top-p" in result.stderr
