"""The GRPO trainer: one ``update`` is one whole step, run by ``rlcore.loop.train_loop``.

A step, on each of the N processes (the prompts of a step are split between them, whole groups each):

1. sample m responses per prompt with the rollout engine (HF: one seeded call per prompt, so the samples depend
   only on (seed, step, prompt) and a run gives the same samples on any number of processes);
2. score them with the verifier (+1 / -1);
3. ONE old-policy forward pass gives old log-probs, token entropies and G2RL's Phi together
   (:func:`rlcore.geometry.token_stats` over the LM head, no backward), plus mean-pooled hidden states when a
   shaper asks; a frozen reference pass gives reference log-probs when ``beta > 0``;
4. the reward shaper (G2RL, EVOL-style, or none) turns rewards into shaped rewards, standardised within groups
   into advantages; geometry diagnostics are computed from Phi;
5. the step's batch is gathered on every process; PPO epochs walk through mini-batches of ``mini_batch_size``
   sequences (each process takes its share, in micro-batches with gradient accumulation); each mini-batch ends
   with one optimiser step, so all processes keep identical parameters;
6. the rollout engine is brought up to date (a colocated HF engine shares the weights; vLLM reloads them).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.data import build_problems, load_records
from rlcore.algorithms.grpo.evaluation import evaluate_policy
from rlcore.algorithms.grpo.losses import grpo_loss, loss_units
from rlcore.algorithms.grpo.mismatch import rollout_correction
from rlcore.algorithms.grpo.phi_check import phi_check
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.algorithms.grpo.shaping import Groups, RewardShaper, advantages_from, flat_groups, geometry_diagnostics
from rlcore.distributed import Distributed
from rlcore.envs.reasoning import record_answer, score_records
from rlcore.envs.reasoning.rewards import REWARD_RANGES
from rlcore.errors import ConfigError
from rlcore.geometry import novelty_scores
from rlcore.llm import lm_head_weight, load_policy
from rlcore.rollout import Completion, SamplingParams, make_engine
from rlcore.run import Run

_MIX = 1_000_003  # odd multiplier to mix (seed, step, prompt) into one sampling seed


def resolve_model(cfg: GRPOConfig) -> str | Path:
    """'tiny' -> the random tiny Qwen3, 'tiny-arith' -> its cached warm start on the configured toy task, else
    ``cfg.model`` unchanged."""
    if cfg.model == "tiny":
        from rlcore.llm import tiny_qwen

        return tiny_qwen()
    if cfg.model == "tiny-arith":
        from rlcore.algorithms.grpo.warmstart import arith_warmstart

        return arith_warmstart(kinds=tuple(cfg.arith_kinds), max_number=cfg.arith_max_number)
    return cfg.model


def lr_factor(step: int, total: int, warmup_ratio: float, schedule: str) -> float:
    """Learning-rate multiplier after ``step`` optimiser steps: linear warm-up, then constant or cosine to 0.

    >>> [round(lr_factor(s, 10, 0.2, "cosine"), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    warm = int(round(total * warmup_ratio))
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _apply_lora(model: Any, cfg: GRPOConfig) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ConfigError("lora_rank > 0 needs peft: pip install 'rlcore[llm]'") from e
    targets: str | list[str] = cfg.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                            target_modules=targets, task_type="CAUSAL_LM"))


class GRPOTrainer:
    """The GRPO algorithm object for :func:`rlcore.loop.train_loop`: ``update(prompt indices) -> metrics``.

    ``shaper``: the reward-shaping hook (:class:`rlcore.algorithms.grpo.shaping.RewardShaper`); None is plain GRPO.
    """

    def __init__(self, cfg: GRPOConfig, dist: Distributed, shaper: RewardShaper | None = None):
        self._check(cfg, dist)
        self.cfg, self.dist, self.shaper = cfg, dist, shaper
        load = dict(data_dir=cfg.data_dir, arith_kinds=cfg.arith_kinds, arith_max_number=cfg.arith_max_number)
        train_records = load_records(cfg.dataset, limit=cfg.dataset_limit, **load)  # bad data fails before the model
        eval_records = load_records(cfg.eval_dataset, limit=cfg.eval_limit, **load) if cfg.eval_dataset else None
        self.model_path = resolve_model(cfg)
        model, self.tokenizer = load_policy(self.model_path, dtype="float32", device=str(dist.device))
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.reference = None
        if cfg.lora_rank:
            model = _apply_lora(model, cfg)  # the reference is the base model: adapters disabled
        elif cfg.beta > 0:
            self.reference = HiddenStates(copy.deepcopy(model)).eval().requires_grad_(False)
        model.train()
        self.model = model
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.policy, self.optimizer = dist.prepare(HiddenStates(model), optimizer)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
            s, cfg.optimizer_steps, cfg.warmup_ratio, cfg.lr_schedule))
        self.engine = self._make_engine()
        self._engine_stale = False
        self.steps = 0
        self.train_problems = build_problems(cfg.dataset, train_records, self.tokenizer,
                                             prompt_format=cfg.prompt_format, max_prompt_tokens=cfg.max_prompt_tokens)
        self.eval_problems = build_problems(cfg.eval_dataset, eval_records, self.tokenizer,
                                            prompt_format=cfg.prompt_format) if eval_records is not None else None
        self.low, self.high = REWARD_RANGES[cfg.reward_range]

    @staticmethod
    def _check(cfg: GRPOConfig, dist: Distributed) -> None:
        w = dist.world_size
        if cfg.prompts_per_step % w or cfg.mini_batch_size % w:
            raise ConfigError(f"with {w} processes, prompts_per_step ({cfg.prompts_per_step}) and mini_batch_size "
                              f"({cfg.mini_batch_size}) must be multiples of {w}")
        if cfg.engine == "vllm" and cfg.lora_rank:
            raise ConfigError("LoRA with the vllm engine is not supported yet; use lora_rank=0 or engine=hf")

    def _make_engine(self) -> Any:
        if self.cfg.engine == "hf":  # colocated: samples from the training model itself, no weight copies
            return make_engine("hf", self.model, tokenizer=self.tokenizer, batch_size=self.cfg.rollout_batch_size)
        return make_engine("vllm", self.model_path, seed=self.cfg.seed,
                           gpu_memory_utilization=self.cfg.vllm_gpu_memory_utilization)

    # ------------------------------------------------------------------------------------------------ one step

    def _seed(self, *parts: int) -> int:
        seed = self.cfg.seed
        for p in parts:
            seed = (seed * _MIX + p) % 2**62
        return seed

    def _ready_engine(self) -> None:
        self.engine.wake()
        if self._engine_stale:
            self.engine.update_weights(self.model)
            self._engine_stale = False

    def generate(self, indices: list[int], offset: int) -> list[list[Completion]]:
        """m responses per training problem ``indices`` (global positions ``offset + j`` in the step)."""
        cfg = self.cfg
        prompts = [self.train_problems.prompt_ids[i] for i in indices]

        def params(seed: int) -> SamplingParams:
            return SamplingParams(n=cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_new_tokens, seed=seed)

        self._ready_engine()
        if cfg.engine == "hf":
            groups = [self.engine.generate([p], params(self._seed(self.steps, offset + j)))[0]
                      for j, p in enumerate(prompts)]
        else:
            groups = self.engine.generate(prompts, params(self._seed(self.steps, offset)))
        self.engine.sleep()
        return groups

    @torch.no_grad()
    def _no_grad_pass(self, hidden: HiddenStates, batch: Rollouts, *, features: bool, pooled: bool
                      ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Log-probs, entropies (N, C), Phi and pooled hidden (N, d) over ``logprob_batch_size`` chunks."""
        outs = []
        for start in range(0, len(batch), self.cfg.logprob_batch_size):
            part = batch.select(slice(start, start + self.cfg.logprob_batch_size))
            out = sequence_pass(hidden, part, lm_head_weight(hidden.lm), temperature=self.cfg.temperature,
                                features=features, pooled=pooled, autocast=self.dist.autocast)
            width = batch.response_ids.shape[1] - out.logprobs.shape[1]
            outs.append((torch.nn.functional.pad(out.logprobs, (0, width)),
                         torch.nn.functional.pad(out.entropy, (0, width)), out.features, out.pooled))
        logprobs, entropy, phi, hidden = zip(*outs)
        cat = (lambda xs: torch.cat(xs) if xs[0] is not None else None)  # noqa: E731
        return torch.cat(logprobs), torch.cat(entropy), cat(phi), cat(hidden)

    def _reference_logprobs(self, batch: Rollouts) -> Tensor:
        if self.reference is not None:
            return self._no_grad_pass(self.reference, batch, features=False, pooled=False)[0]
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return self._no_grad_pass(HiddenStates(self.model), batch, features=False, pooled=False)[0]

    def update(self, indices: list[int]) -> dict[str, Tensor]:
        """One GRPO step on the global list of problem ``indices`` (the same on every process)."""
        cfg, dist = self.cfg, self.dist
        self.steps += 1
        t0 = time.perf_counter()
        offset, mine = dist.shard(indices)
        groups_out = self.generate(mine, offset)
        t1 = time.perf_counter()
        completions = [c for g in groups_out for c in g]
        records = [self.train_problems.records[i] for i in mine for _ in range(cfg.group_size)]
        texts = [c.text for c in completions]
        rewards = torch.tensor(score_records(texts, records, reward_range=cfg.reward_range)).view(-1, cfg.group_size)
        t2 = time.perf_counter()

        batch = Rollouts.from_completions(groups_out, self.tokenizer.pad_token_id, dist.device)
        shaper = self.shaper
        want_phi = cfg.geometry_diagnostics or (shaper is not None and shaper.needs_features)
        want_pooled = shaper is not None and shaper.needs_pooled_hidden
        batch.old_logprobs, _, phi, pooled = self._no_grad_pass(dist.unwrap(self.policy), batch,
                                                                      features=want_phi, pooled=want_pooled)
        if cfg.beta > 0:
            batch.ref_logprobs = self._reference_logprobs(batch)
        mismatch = rollout_correction(batch, mode=cfg.rollout_is, cap=cfg.rollout_is_cap, level=cfg.rollout_is_level)
        t3 = time.perf_counter()

        G, m = rewards.shape
        rewards = rewards.to(dist.device)
        features = phi.view(G, m, -1) if phi is not None else None
        groups = Groups(rewards=rewards, correct=rewards > (self.low + self.high) / 2,
                        answered=torch.tensor([record_answer(t, r) is not None for t, r in zip(texts, records)],
                                              device=dist.device).view(G, m),
                        texts=[texts[g * m:(g + 1) * m] for g in range(G)], features=features,
                        novelty=novelty_scores(features, rewards) if features is not None else None,
                        pooled_hidden=pooled.view(G, m, -1) if pooled is not None else None)
        advantages, shaped, shaping_metrics = advantages_from(groups, shaper, std=cfg.adv_std, eps=cfg.adv_eps,
                                                              eps_inside=cfg.adv_eps_inside)
        batch.advantages = advantages.reshape(-1).float()
        if cfg.filter_zero_variance:
            batch.keep = (~flat_groups(shaped)).repeat_interleave(m)

        lengths = batch.response_mask.sum(-1).float()
        metrics: dict[str, Tensor] = {
            "reward": rewards.mean(), "accuracy": groups.correct.float().mean(), "shaped_reward": shaped.mean(),
            "response_tokens": lengths.mean(),
            "truncated_frac": torch.tensor([c.finish_reason == "length" for c in completions]).float().mean(),
            **{f"shaping/{k}": v for k, v in shaping_metrics.items()},
            **{f"geom/{k}": v for k, v in geometry_diagnostics(groups, shaped).items()}, **mismatch,
        }
        batch = self._gather(batch)
        if cfg.phi_check_every and self.steps % cfg.phi_check_every == 0:  # same global group on every process
            check = phi_check(self.model, batch, m, layers=cfg.phi_check_layers, temperature=cfg.temperature)
            metrics.update({f"geom/{k}": v for k, v in check.items()})
        metrics.update(self.optimise(batch))
        t4 = time.perf_counter()
        self._engine_stale = True
        metrics.update({"time/generate_s": torch.tensor(t1 - t0), "time/reward_s": torch.tensor(t2 - t1),
                        "time/old_pass_s": torch.tensor(t3 - t2), "time/optimise_s": torch.tensor(t4 - t3)})
        return dist.mean({k: v.detach().float().cpu() for k, v in metrics.items()})

    def _gather(self, batch: Rollouts) -> Rollouts:
        """Every process's rollouts, concatenated in rank order (= the step's global prompt order)."""
        if self.dist.world_size == 1:
            return batch
        pad = self.tokenizer.pad_token_id
        g = self.dist.gather_rows
        return Rollouts(
            prompt_ids=g(batch.prompt_ids, pad, pad_first=True), prompt_mask=g(batch.prompt_mask, 0, pad_first=True),
            response_ids=g(batch.response_ids, pad), response_mask=g(batch.response_mask, 0),
            old_logprobs=g(batch.old_logprobs), advantages=g(batch.advantages),
            ref_logprobs=None if batch.ref_logprobs is None else g(batch.ref_logprobs),
            keep=None if batch.keep is None else g(batch.keep, 0),
            rollout_weights=None if batch.rollout_weights is None else g(batch.rollout_weights))

    def optimise(self, batch: Rollouts) -> dict[str, Tensor]:
        """PPO epochs over the global ``batch``: one optimiser step per mini-batch; returns mean metrics."""
        cfg, dist = self.cfg, self.dist
        share = cfg.mini_batch_size // dist.world_size
        weight = lm_head_weight(self.model)
        totals: dict[str, Tensor] = {}
        tokens = torch.zeros((), device=dist.device)
        grad_norms = []
        for _ in range(cfg.ppo_epochs):
            for start in range(0, len(batch), cfg.mini_batch_size):
                units = loss_units(batch.select(slice(start, start + cfg.mini_batch_size)).loss_mask(),
                                   cfg.aggregation)
                first = start + dist.rank * share
                micro = list(range(first, first + share, cfg.micro_batch_size))
                for j, lo in enumerate(micro):
                    part = batch.select(slice(lo, min(lo + cfg.micro_batch_size, first + share)))
                    with dist.no_sync(self.policy, skip=j < len(micro) - 1):
                        out = sequence_pass(self.policy, part, weight, temperature=cfg.temperature,
                                            autocast=dist.autocast)
                        mask = part.loss_mask()
                        loss, m = grpo_loss(
                            out.logprobs, part.old_logprobs, part.advantages, mask, ref_logprobs=part.ref_logprobs,
                            entropy=out.entropy, clip_low=cfg.clip_eps, clip_high=cfg.clip_eps_high, beta=cfg.beta,
                            entropy_coef=cfg.entropy_coef, aggregation=cfg.aggregation, normalizer=units,
                            horizon=cfg.max_new_tokens, is_level=cfg.is_level, rollout_weights=part.rollout_weights)
                        dist.backward(loss * dist.world_size)  # DDP averages gradients over processes
                    n = mask.sum()
                    tokens += n
                    for k, v in m.items():
                        totals[k] = totals.get(k, 0) + v * n
                grad_norms.append(dist.clip_grad_norm(self.model.parameters(), cfg.max_grad_norm))
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
        out = {k: v / tokens.clamp_min(1) for k, v in totals.items()}
        out["grad_norm"] = torch.stack([g.float() for g in grad_norms]).mean()
        out["lr"] = torch.tensor(self.scheduler.get_last_lr()[0])
        return out

    # ------------------------------------------------------------------------------------------ evaluation etc.

    def evaluate(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.eval_problems is None:
            return {}
        self._ready_engine()
        try:
            return evaluate_policy(self.engine, self.eval_problems, self.dist, k=cfg.eval_samples,
                                   temperature=cfg.eval_temperature,
                                   max_new_tokens=cfg.eval_max_new_tokens or cfg.max_new_tokens,
                                   seed=self._seed(7_777_777), reward_range=cfg.reward_range,
                                   batch_size=cfg.rollout_batch_size)
        finally:
            self.engine.sleep()

    def trainable_state(self) -> dict[str, Tensor]:
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def state_dict(self) -> dict[str, Any]:
        """Trainable parameters, optimiser, schedule and step count (frozen weights reload from the model path)."""
        return {"model": self.trainable_state(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "steps": self.steps}

    @torch.no_grad()
    def load_trainable(self, params: Mapping[str, Tensor]) -> None:
        own = dict(self.model.named_parameters())
        missing = [n for n, p in own.items() if p.requires_grad and n not in params]
        if missing or any(n not in own for n in params):
            raise ConfigError(f"checkpoint parameters do not match the model ({missing[:3] or list(params)[:3]}); "
                              "resume with the same model and LoRA settings")
        for name, value in params.items():
            own[name].copy_(value)
        self._engine_stale = True

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_trainable(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps = int(state["steps"])

    def parameter_checksum(self) -> Tensor:
        """float64 sum and sum of squares of the trainable parameters (to check processes agree)."""
        flat = [p.detach().double().reshape(-1) for p in self.trainable_state().values()]
        return torch.stack([sum(x.sum() for x in flat), sum(x.square().sum() for x in flat)])

    def export(self, directory: Path) -> None:
        """Write the policy (LoRA merged into a copy) and its tokenizer with ``save_pretrained``."""
        model = self.model
        if self.cfg.lora_rank:
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def close(self) -> None:
        self.engine.close()


def export_models(trainer: GRPOTrainer, run: Run) -> None:
    """``<run>/model`` (final) and ``<run>/best_model`` (best evaluation) in HF format; main process only."""
    if not run.is_main:
        return
    trainer.export(run.dir / "model")
    best = run.checkpoints.best
    if best is not None:
        trainer.load_trainable(run.checkpoints.load(int(best["step"]))["algo"]["model"])
        trainer.export(run.dir / "best_model")


def check_in_sync(trainer: GRPOTrainer, dist: Distributed) -> None:
    """Raise if the processes ended with different parameters (they must agree after every optimiser step)."""
    sums = dist.gather_rows(trainer.parameter_checksum()[None])
    if not torch.equal(sums.amin(0), sums.amax(0)):
        raise RuntimeError(f"processes ended with different parameters (checksums {sums.tolist()}); this is a bug")


@dataclasses.dataclass
class TrainResult:
    summary: dict[str, Any]
    """What summary.json holds: last and best evaluation, steps, wall time."""
    trainer: GRPOTrainer
    run_dir: Path


def train(cfg: GRPOConfig, *, algo: str, run_dir: str | Path | None = None, resume: bool = False,
          make_shaper: Any = None) -> TrainResult:
    """Run (or resume) a GRPO training in this process, one of ``world_size`` when launched with torchrun or
    ``accelerate launch``. ``make_shaper(cfg, dist)`` builds the reward shaper (None: plain GRPO)."""
    from rlcore.algorithms.grpo.data import PromptSampler
    from rlcore.loop import train_loop
    from rlcore.run import default_run_dir
    from rlcore.runtime import seed_everything, set_threads

    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    dist = Distributed(cfg.device, cfg.mixed_precision)
    shaper = make_shaper(cfg, dist) if make_shaper is not None else None
    trainer = GRPOTrainer(cfg, dist, shaper)
    sampler = PromptSampler(len(trainer.train_problems), cfg.prompts_per_step, cfg.seed)
    run_dir = dist.gather_objects([str(run_dir or default_run_dir(algo, cfg.dataset))])[0]  # the main's choice
    run = Run.open(algo, cfg, run_dir=run_dir, task=cfg.dataset, resume=resume, is_main=dist.is_main)
    try:
        summary = train_loop(run, trainer, sampler,
                             evaluate=(lambda t: t.evaluate()) if trainer.eval_problems is not None else None,
                             best_key="eval/pass@1",
                             console_keys=("train/reward", "train/accuracy", "eval/pass@1", "geom/mean_cos"))
        check_in_sync(trainer, dist)
        if cfg.export_model:
            export_models(trainer, run)
    finally:
        run.close()
        trainer.close()
    return TrainResult(summary, trainer, run.dir)
