"""HF rollout engine throughput on the tiny Qwen3, against plain ``model.generate`` in the same run.

The engine adds left padding, seeding, per-token log-prob recording and response trimming around ``generate``;
and samples by inverse CDF instead of ``torch.multinomial``; the ratio says what all that costs or saves.
Tokens/s counts prompts x n x max_new_tokens (the random tiny model practically never emits EOS).
Prints one JSON line last: medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--batch", type=int, default=32, help="sequences per generate call")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.new_tokens, args.repeats = 16, 32, 3
    torch.set_num_threads(args.threads)

    from rlcore.llm import load_policy, tiny_qwen
    from rlcore.rollout import SamplingParams
    from rlcore.rollout.hf_engine import HFEngine

    model, tok = load_policy(tiny_qwen(), device="cpu")
    engine = HFEngine(model, tok, batch_size=args.batch)
    prompts = [f"Question {i}: what is {i} + {2 * i}?" for i in range(args.batch // 4)]
    params = SamplingParams(n=4, max_new_tokens=args.new_tokens, seed=0)
    batch = tok([p for p in prompts for _ in range(4)], return_tensors="pt", padding=True)
    total = len(prompts) * 4 * args.new_tokens

    def run_engine() -> None:  # a random model almost never samples EOS: nearly all rows run to the cap
        engine.generate(prompts, params)

    def run_plain() -> None:
        with torch.no_grad():
            model.generate(**batch, do_sample=True, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                           top_k=0, pad_token_id=tok.pad_token_id)

    times: dict[str, list[float]] = {"engine": [], "plain": []}
    run_engine()
    run_plain()  # warm-up
    for _ in range(args.repeats):
        for name, fn in (("plain", run_plain), ("engine", run_engine)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"benchmark": "rollout_hf", "model": "tiny-qwen3 (2 layers, hidden 64, vocab 151936)",
              "sequences": len(prompts) * 4, "new_tokens": args.new_tokens, "threads": args.threads,
              "engine_tokens_per_s": total / med["engine"], "plain_generate_tokens_per_s": total / med["plain"],
              "engine_s": med["engine"], "plain_s": med["plain"],
              "engine_over_plain_time": med["engine"] / med["plain"]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
