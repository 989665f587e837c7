"""math-verify reward throughput: the parallel verifier pool against one worker, in the same run.

Scores MATH-500 gold solutions (from $RLCORE_MATH_DATA, else ../shared/data/math) or, without them, synthetic
boxed fractions. Prints one JSON line last: medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def _workload(n: int) -> tuple[list[str], list[str]]:
    folder = os.environ.get("RLCORE_MATH_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/math"))
    if Path(folder, "math500.jsonl").is_file():
        from rlcore.envs.reasoning import load_math_dataset

        records = load_math_dataset("math500", data_dir=folder, limit=n)
        return [r.metadata["solution"] for r in records], [r.answer for r in records]
    return [rf"so \boxed{{\frac{{{i}}}{{{i + 1}}}}}" for i in range(n)], [f"{i}/{i + 1}" for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 answers, 3 repeats")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = 100, 3
    from rlcore.envs.reasoning import score_completions
    from rlcore.envs.reasoning.verifier import shared_pool

    completions, answers = _workload(args.n)
    shared_pool(args.workers)  # start every worker before timing
    score_completions(completions[:8], answers[:8], workers=args.workers)
    times: dict[str, list[float]] = {"one_worker": [], "pool": []}
    for _ in range(args.repeats):
        for name, workers in (("one_worker", 1), ("pool", args.workers)):
            start = time.perf_counter()
            rewards = score_completions(completions, answers, workers=workers)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"benchmark": "rewards", "answers": args.n, "workers": args.workers,
                      "correct_share": sum(r > 0 for r in rewards) / len(rewards),
                      "one_worker_answers_per_s": args.n / med["one_worker"],
                      "pool_answers_per_s": args.n / med["pool"], "speedup": med["one_worker"] / med["pool"]}))


if __name__ == "__main__":
    main()
