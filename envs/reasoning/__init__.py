"""Reasoning tasks: math benchmarks, the G2RL prompt, math-verify rewards, pass@k / maj@k, a toy arithmetic task.

>>> from rlcore.envs.reasoning import load_math_dataset, build_prompt, math_reward, pass_at_k   # doctest: +SKIP
"""

from rlcore.envs.reasoning.arith import arith_reward, make_arith_dataset
from rlcore.envs.reasoning.datasets import BENCHMARK_FILES, MathRecord, load_math_dataset, require_answers
from rlcore.envs.reasoning.extract import extract_answer
from rlcore.envs.reasoning.metrics import benchmark_metrics, maj_at_k, mean_at_k, pass_at_k, summary_rows
from rlcore.envs.reasoning.prompts import G2RL_INSTRUCTION, build_prompt, record_prompt
from rlcore.envs.reasoning.rewards import math_reward, score_completions
from rlcore.envs.reasoning.scoring import check_records, record_answer, score_records

__all__ = [
    "BENCHMARK_FILES", "G2RL_INSTRUCTION", "MathRecord", "arith_reward", "benchmark_metrics", "build_prompt",
    "check_records", "extract_answer", "load_math_dataset", "maj_at_k", "make_arith_dataset", "math_reward",
    "mean_at_k", "pass_at_k", "record_answer", "record_prompt", "require_answers", "score_completions",
    "score_records", "summary_rows",
]
