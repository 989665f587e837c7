"""The GRPO trainer: one ``update`` is one whole step, run by ``rlcore.loop.train_loop``.

A step, on each of the N processes (the prompts of a step are split between them, whole groups each):

1. sample m responses per prompt with the rollout engine (HF: one seeded call per prompt, so the samples depend
   only on (seed, step, prompt) and a run gives the same samples on any number of processes);
2. judge them with the verifier (when the rows have answers) and score them with the reward functions
   (``reward_funcs``: the verifier's +1 / -1 by default), summed with ``reward_weights`` (:mod:`.rewards`);
3. ONE old-policy forward pass gives old log-probs and token entropies, plus what the shaper and the geometry
   diagnostics declared in ``needs`` (``rlcore.algorithms.grpo.shaping``): the gradient feature Phi from the same
   LM-head pass (:func:`rlcore.geometry.token_stats`, no backward) and mean-pooled hidden states; a frozen
   reference pass gives reference log-probs when ``beta > 0``; the rollout/trainer mismatch is measured (:mod:`.step`);
4. the reward shaper named by ``cfg.shaper`` (:mod:`.registry`: G2RL, EVOL-style, none, or a plugin) turns
   rewards into shaped rewards, standardised within groups into advantages; the geometry diagnostics read the
   same groups;
5. with ``dynamic_sampling``, steps 1-4 repeat on further prompts until the step has ``prompts_per_step`` groups
   that carry a signal (:mod:`.dynamic`); ``mask_truncated`` leaves cut responses out of the loss;
6. the step's batch is gathered on every process; PPO epochs (:mod:`.optimise`) walk through mini-batches of
   ``mini_batch_size`` sequences (each process takes its share, in micro-batches with gradient accumulation); each
   mini-batch ends with one optimiser step, so all processes keep identical parameters, and the metrics are
   averaged over processes (``reward_std`` is computed from every process's rewards, gathered); every
   ``log_completions_every`` steps each response goes to ``completions.jsonl``;
7. the rollout engine is brought up to date (a colocated HF engine shares the weights; vLLM reloads them).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.completions import CompletionLog
from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.data import PromptSampler, build_problems, load_records
from rlcore.algorithms.grpo.dynamic import assemble_rounds, enough, informative_groups
from rlcore.algorithms.grpo.evaluation import evaluate_policy
from rlcore.algorithms.grpo.optimise import gather_rollouts, ppo_epochs
from rlcore.algorithms.grpo.phi_check import phi_check
from rlcore.algorithms.grpo.policy import build_policy, load_trainable, lr_factor, resolve_model
from rlcore.algorithms.grpo.registry import build_shaper
from rlcore.algorithms.grpo.rewards import RewardFn, RewardFunctions
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.algorithms.grpo.shaping import (
    FEATURES,
    LOGPROBS,
    POOLED_HIDDEN,
    TOKEN_ENTROPIES,
    GeometryDiagnostics,
    Groups,
    RewardShaper,
    advantages_from,
    needs_of,
)
from rlcore.algorithms.grpo.step import (
    Round,
    completion_records,
    loss_keep,
    reward_std,
    rollout_correction,
    round_metrics,
    step_metrics,
    truncated,
)
from rlcore.distributed import Distributed
from rlcore.envs.reasoning import record_answer, require_answers
from rlcore.errors import ConfigError
from rlcore.llm import lm_head_weight
from rlcore.rollout import Completion, SamplingParams, make_engine

__all__ = ["GRPOTrainer", "lr_factor", "resolve_model"]

_MIX = 1_000_003  # odd multiplier to mix (seed, step, prompt) into one sampling seed


class GRPOTrainer:
    """The GRPO algorithm object for :func:`rlcore.loop.train_loop`: ``update(prompt indices) -> metrics``.

    Everything a run plugs in is given here, nothing is set afterwards:

    - ``shaper``: the reward shaper (:class:`rlcore.algorithms.grpo.shaping.RewardShaper`); default: the one
      ``cfg.shaper`` names in the registry (None for 'none', plain GRPO);
    - ``prompts``: the run's prompt sampler, which dynamic sampling also draws its extra rounds from (default: a
      :class:`PromptSampler` over the training problems seeded with ``cfg.seed``); kept as ``self.sampler``;
    - ``completion_log``: where ``log_completions_every`` writes (an object with ``append(rows)``; None: the rows
      are gathered, not kept);
    - ``train_data``: the training rows instead of ``cfg.dataset`` (a ``datasets.Dataset``, a list of dicts, a
      JSONL or Parquet path, a benchmark name);
    - ``reward_funcs``: reward functions instead of ``cfg.reward_funcs`` (callables, ``package.module:function``
      strings or registered names, mixed).
    """

    def __init__(self, cfg: GRPOConfig, dist: Distributed, *, shaper: RewardShaper | None = None,
                 prompts: PromptSampler | None = None, completion_log: CompletionLog | None = None,
                 train_data: Any = None, reward_funcs: Sequence[str | RewardFn] | None = None):
        self._check(cfg, dist)
        self.cfg, self.dist = cfg, dist
        self.shaper = shaper if shaper is not None else build_shaper(cfg, dist)
        self.diagnostics = GeometryDiagnostics(enabled=cfg.geometry_diagnostics)
        self.needs = needs_of([self.shaper, self.diagnostics])
        self.rewards = RewardFunctions(reward_funcs if reward_funcs is not None else cfg.reward_funcs,
                                       cfg.reward_weights, reward_range=cfg.reward_range,
                                       max_new_tokens=cfg.max_new_tokens, overlong_buffer=cfg.overlong_buffer,
                                       overlong_penalty=cfg.overlong_penalty)
        load = dict(data_dir=cfg.data_dir, arith_kinds=cfg.arith_kinds, arith_max_number=cfg.arith_max_number)
        # bad data fails before the model loads
        train_records = load_records(train_data if train_data is not None else cfg.dataset, limit=cfg.dataset_limit,
                                     **load)
        if "math" in self.rewards.names:
            require_answers(train_records, "reward function 'math'")
        eval_records = load_records(cfg.eval_dataset, limit=cfg.eval_limit, **load) if cfg.eval_dataset else None
        if eval_records is not None:
            require_answers(eval_records, f"evaluation (pass@k) on eval_dataset '{cfg.eval_dataset}'")
        built = build_policy(cfg, dist)
        self.model_path, self.model, self.tokenizer, self.reference = (built.model_path, built.model, built.tokenizer,
                                                                       built.reference)
        self.policy, self.optimizer, self.scheduler = built.policy, built.optimizer, built.scheduler
        self._engine_stale = False
        self.engine = self._make_engine()
        self.steps = 0
        name = cfg.dataset if train_data is None or isinstance(train_data, str) else "the training data"
        self.train_problems = build_problems(name, train_records, self.tokenizer,
                                             prompt_format=cfg.prompt_format, max_prompt_tokens=cfg.max_prompt_tokens)
        self.eval_problems = build_problems(cfg.eval_dataset, eval_records, self.tokenizer,
                                            prompt_format=cfg.prompt_format) if eval_records is not None else None
        self.sampler = prompts if prompts is not None else PromptSampler(len(self.train_problems),
                                                                           cfg.prompts_per_step, cfg.seed)
        self.completion_log = completion_log

    @staticmethod
    def _check(cfg: GRPOConfig, dist: Distributed) -> None:
        w = dist.world_size
        if cfg.prompts_per_step % w or cfg.mini_batch_size % w:
            raise ConfigError(f"with {w} processes, prompts_per_step ({cfg.prompts_per_step}) and mini_batch_size "
                              f"({cfg.mini_batch_size}) must be multiples of {w}")
        if cfg.engine == "vllm" and cfg.vllm_mode == "colocate" and cfg.lora_rank:
            raise ConfigError("LoRA with the colocated vllm engine is not supported yet; use lora_rank=0, "
                              "vllm_mode=server or engine=hf")

    def _make_engine(self) -> Any:
        if self.cfg.engine == "hf":  # colocated: samples from the training model itself, no weight copies
            return make_engine("hf", self.model, tokenizer=self.tokenizer, batch_size=self.cfg.rollout_batch_size)
        if self.cfg.vllm_mode == "server":  # weights pushed before the first generation (the server's may be older)
            self._engine_stale = True
            return make_engine("server", self.cfg.vllm_server_base_url, tokenizer=self.tokenizer,
                               timeout_s=self.cfg.vllm_server_timeout, push=self.dist.is_main,
                               barrier=self.dist.barrier,
                               transport="nccl" if self.dist.device.type == "cuda" else "http")
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

    def generate(self, indices: list[int], offset: int, round_index: int = 0) -> list[list[Completion]]:
        """m responses per training problem ``indices`` (global positions ``offset + j`` in the step's generation
        round ``round_index``)."""
        cfg = self.cfg
        prompts = [self.train_problems.prompt_ids[i] for i in indices]

        def params(seed: int) -> SamplingParams:
            return SamplingParams(n=cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p,
                                  max_new_tokens=cfg.max_new_tokens, seed=seed)

        self._ready_engine()
        extra = (round_index,) if round_index else ()  # round 0 keeps the seeds of a step without rounds
        if cfg.engine == "hf":
            groups = [self.engine.generate([p], params(self._seed(self.steps, offset + j, *extra)))[0]
                      for j, p in enumerate(prompts)]
        else:
            groups = self.engine.generate(prompts, params(self._seed(self.steps, offset, *extra)))
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

    def _round(self, indices: list[int], index: int) -> Round:
        """Generate, score, run the no-gradient passes and shape one round of the global problem ``indices``."""
        cfg, dist = self.cfg, self.dist
        t0 = time.perf_counter()
        offset, mine = dist.shard(indices)
        groups_out = self.generate(mine, offset, index)
        t1 = time.perf_counter()
        completions = [c for g in groups_out for c in g]
        records = [self.train_problems.records[i] for i in mine for _ in range(cfg.group_size)]
        texts = [c.text for c in completions]
        scores = self.rewards(texts, records, [c.token_ids for c in completions])
        t2 = time.perf_counter()

        batch = Rollouts.from_completions(groups_out, self.tokenizer.pad_token_id, dist.device)
        batch.old_logprobs, entropies, phi, pooled = self._no_grad_pass(dist.unwrap(self.policy), batch,
                                                                        features=FEATURES in self.needs,
                                                                        pooled=POOLED_HIDDEN in self.needs)
        if cfg.beta > 0:
            batch.ref_logprobs = self._reference_logprobs(batch)
        mismatch = rollout_correction(batch, mode=cfg.rollout_is, cap=cfg.rollout_is_cap, level=cfg.rollout_is_level)
        t3 = time.perf_counter()

        m = cfg.group_size
        rewards = scores.total.view(-1, m).to(dist.device)
        G = rewards.shape[0]
        per_token = (lambda x: x.view(G, m, -1))  # noqa: E731
        correct = scores.correct if scores.correct is not None else torch.zeros(len(texts), dtype=torch.bool)
        groups = Groups(rewards=rewards, correct=correct.view(G, m).to(dist.device),
                        answered=torch.tensor([record_answer(t, r) is not None for t, r in zip(texts, records)],
                                              device=dist.device).view(G, m),
                        texts=[texts[g * m:(g + 1) * m] for g in range(G)],
                        response_mask=per_token(batch.response_mask),
                        features=phi.view(G, m, -1) if phi is not None else None,
                        pooled_hidden=pooled.view(G, m, -1) if pooled is not None else None,
                        logprobs=per_token(batch.old_logprobs) if LOGPROBS in self.needs else None,
                        token_entropies=per_token(entropies) if TOKEN_ENTROPIES in self.needs else None)
        advantages, shaped, shaping_metrics = advantages_from(groups, self.shaper, std=cfg.adv_std, eps=cfg.adv_eps,
                                                              eps_inside=cfg.adv_eps_inside)
        batch.advantages = advantages.reshape(-1).float()
        cut = truncated(completions)
        batch.keep = loss_keep(shaped, cut, filter_zero_variance=cfg.filter_zero_variance,
                               mask_truncated=cfg.mask_truncated)
        metrics = {**round_metrics(scores, groups, shaped, batch, cut, shaping_metrics,
                                   self.diagnostics(groups, shaped)), **mismatch}
        return Round(index, records, completions, scores, groups, shaped, advantages, batch, metrics,
                     times=[t1 - t0, t2 - t1, t3 - t2])

    def _assemble(self, rounds: list[Round], informative: list[Tensor]) -> tuple[Rollouts, dict[str, Tensor]]:
        """The step's global batch from its rounds (dynamic sampling: ``prompts_per_step`` groups, informative ones
        first; ``informative``: (G,) bool per round, over all processes); marks each round's ``trained`` responses;
        returns the dynamic-sampling metrics."""
        cfg, dist, pad = self.cfg, self.dist, self.tokenizer.pad_token_id
        if not cfg.dynamic_sampling:
            batch = gather_rollouts(rounds[0].batch, dist, pad)
            rounds[0].trained = rounds[0].batch.loss_mask().any(-1)
            return batch, {}
        return assemble_rounds(rounds, informative, dist=dist, pad_id=pad, per_step=cfg.prompts_per_step)

    def _log_completions(self, rounds: list[Round]) -> None:
        """Append every response of the step to the completions log (collective: all processes call it)."""
        G = rounds[0].shaped.shape[0]
        rows = [row for r in rounds for row in completion_records(
            self.steps, r, truncated(r.completions), group_offset=self.dist.rank * G)]
        gathered = self.dist.gather_objects(rows)
        if self.completion_log is not None:
            self.completion_log.append(sorted(gathered, key=lambda row: (row["round"], row["group"])))

    def update(self, indices: list[int]) -> dict[str, Tensor]:
        """One GRPO step on the global list of problem ``indices`` (the same on every process)."""
        cfg, dist = self.cfg, self.dist
        self.steps += 1
        t0 = time.perf_counter()
        self._ready_engine()  # the weights of the last optimiser step reach the engine (time/weight_sync_s)
        sync_s = time.perf_counter() - t0
        rounds = [self._round(indices, 0)]
        informative: list[Tensor] = []  # per round, over all processes' groups
        while cfg.dynamic_sampling:
            informative.append(dist.gather_rows(informative_groups(rounds[-1].shaped)))
            if len(rounds) == cfg.max_gen_batches or enough(informative, cfg.prompts_per_step):
                break
            rounds.append(self._round(self.sampler.sample(), len(rounds)))
        t3 = time.perf_counter()
        batch, sampling = self._assemble(rounds, informative)
        metrics = {**step_metrics(rounds), **sampling}
        step_rewards = torch.cat([r.groups.rewards.reshape(-1) for r in rounds])
        metrics["reward_std"] = reward_std(dist.gather_rows(step_rewards))  # equal on every process
        if cfg.phi_check_every and self.steps % cfg.phi_check_every == 0:  # same global group on every process
            check = phi_check(self.model, batch, cfg.group_size, layers=cfg.phi_check_layers,
                              temperature=cfg.temperature)
            metrics.update({f"geom/{k}": v for k, v in check.items()})
        metrics.update(self.optimise(batch))
        t4 = time.perf_counter()
        self._engine_stale = True
        if cfg.log_completions_every and self.steps % cfg.log_completions_every == 0:
            self._log_completions(rounds)
        metrics["time/optimise_s"] = torch.tensor(t4 - t3)
        metrics["time/weight_sync_s"] = torch.tensor(sync_s)
        return dist.mean({k: v.detach().float().cpu() for k, v in metrics.items()})

    def optimise(self, batch: Rollouts) -> dict[str, Tensor]:
        """PPO epochs over the global ``batch``: one optimiser step per mini-batch; returns mean metrics."""
        return ppo_epochs(batch, cfg=self.cfg, dist=self.dist, policy=self.policy, model=self.model,
                          optimizer=self.optimizer, scheduler=self.scheduler)

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
                                   seed=self._seed(7_777_777), batch_size=cfg.rollout_batch_size)
        finally:
            self.engine.sleep()

    def close(self) -> None:
        self.engine.close()

    # ------------------------------------------------------------------------------ state, checkpoints, export

    def trainable_state(self) -> dict[str, Tensor]:
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def state_dict(self) -> dict[str, Any]:
        """Trainable parameters, optimiser, schedule and step count (frozen weights reload from the model path)."""
        return {"model": self.trainable_state(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "steps": self.steps}

    def load_trainable(self, params: Mapping[str, Tensor]) -> None:
        load_trainable(self.model, params)
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

