"""G2RL's cost over GRPO, and our GRPO step against TRL's GRPOTrainer, on the tiny Qwen3 on CPU.

1. ``g2rl_over_grpo``: one whole training step (generation, rewards, old-policy pass, shaping, PPO update) of G2RL
   (literal scaler, Phi and the geometry diagnostics from the old-policy pass) over plain GRPO (no Phi at all), on
   the SAME batch: both trainers are reset to the same state before every timed step, so they sample the same
   responses. ``g2rl_over_grpo_after_rollout`` leaves generation out (the part G2RL can change).
2. ``ours_over_trl``: our plain GRPO step over a ``trl.GRPOTrainer`` step with the same model, prompts x
   generations, response length, KL reference, token-mean loss, micro-batches and one optimiser step per step
   (TRL skips the old-policy pass when on-policy; ours always makes it). The random tiny model never stops early,
   so both generate the full length.

Steps are timed interleaved, medians of several repeats. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

SETTINGS = dict(model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain",
                dataset_limit=64, prompts_per_step=4, group_size=8, mini_batch_size=32, micro_batch_size=16,
                logprob_batch_size=16, lr=1e-5, lr_schedule="constant", warmup_ratio=0.0, beta=0.001, device="cpu")


def _trainer(scaler: str, new_tokens: int):
    from rlcore.algorithms.g2rl.config import G2RLConfig
    from rlcore.algorithms.grpo.trainer import GRPOTrainer
    from rlcore.distributed import Distributed

    cfg = G2RLConfig(**SETTINGS, max_new_tokens=new_tokens, scaler=scaler, geometry_diagnostics=scaler != "none",
                     shaper="g2rl" if scaler != "none" else "none")
    return GRPOTrainer(cfg, Distributed("cpu"))


def time_ours(new_tokens: int, repeats: int) -> dict[str, float]:
    """Median step times of plain GRPO and G2RL on the same batch (same state and seeds before every step)."""
    torch.manual_seed(0)
    trainers = {"grpo": _trainer("none", new_tokens), "g2rl": _trainer("literal", new_tokens)}
    start = {name: copy.deepcopy(t.state_dict()) for name, t in trainers.items()}
    indices = list(range(SETTINGS["prompts_per_step"]))
    totals: dict[str, list[float]] = {n: [] for n in trainers}
    after: dict[str, list[float]] = {n: [] for n in trainers}
    for rep in range(repeats + 1):  # the first round warms up
        for name, trainer in trainers.items():
            trainer.load_state_dict(start[name])
            t0 = time.perf_counter()
            metrics = trainer.update(indices)
            elapsed = time.perf_counter() - t0
            if rep:
                totals[name].append(elapsed)
                after[name].append(elapsed - float(metrics["time/generate_s"]))
    return {**{f"{n}_step_s": statistics.median(v) for n, v in totals.items()},
            **{f"{n}_after_rollout_s": statistics.median(v) for n, v in after.items()}}


def time_trl(new_tokens: int, repeats: int, tmp: str) -> float:
    """Median step time of trl.GRPOTrainer configured like SETTINGS."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlcore.envs.reasoning import arith_reward, build_prompt, make_arith_dataset
    from rlcore.llm import tiny_qwen

    records = make_arith_dataset(64, kinds=("sum",))
    answers = {build_prompt(r.prompt): r.answer for r in records}

    def reward(prompts, completions, **_):
        return [arith_reward(c, answers[p]) for p, c in zip(prompts, completions)]

    class Timer(TrainerCallback):
        times: list[float] = []

        def on_step_begin(self, *args, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            self.times.append(time.perf_counter() - self.t0)

    m, sequences = SETTINGS["group_size"], SETTINGS["prompts_per_step"] * SETTINGS["group_size"]
    micro = SETTINGS["micro_batch_size"]
    args = GRPOConfig(output_dir=tmp, use_cpu=True, bf16=False, max_steps=repeats + 1, num_generations=m,
                      per_device_train_batch_size=micro, gradient_accumulation_steps=sequences // micro,
                      max_completion_length=new_tokens, learning_rate=SETTINGS["lr"], beta=SETTINGS["beta"],
                      loss_type="dapo", use_bias_correction_kl=False, temperature=1.0, gradient_checkpointing=False,
                      report_to=[], save_strategy="no", logging_steps=10_000, disable_tqdm=True, seed=0)
    timer = Timer()
    trainer = GRPOTrainer(model=str(tiny_qwen()), reward_funcs=reward, args=args, callbacks=[timer],
                          train_dataset=Dataset.from_dict({"prompt": list(answers)}))
    trainer.train()
    return statistics.median(timer.times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter responses (about 2 min)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.new_tokens = 3, 16
    torch.set_num_threads(args.threads)
    import tempfile

    ours = time_ours(args.new_tokens, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        trl = time_trl(args.new_tokens, args.repeats, tmp)
    result = {
        "benchmark": "g2rl", "model": "tiny-qwen3 (2 layers, hidden 64, vocab 151936)",
        "sequences": SETTINGS["prompts_per_step"] * SETTINGS["group_size"], "new_tokens": args.new_tokens,
        "threads": args.threads, "repeats": args.repeats, **{k: round(v, 4) for k, v in ours.items()},
        "trl_step_s": round(trl, 4),
        "g2rl_over_grpo": round(ours["g2rl_step_s"] / ours["grpo_step_s"], 4),
        "g2rl_over_grpo_after_rollout": round(ours["g2rl_after_rollout_s"] / ours["grpo_after_rollout_s"], 4),
        "ours_over_trl": round(ours["grpo_step_s"] / trl, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
