"""Rollouts with transformers ``generate``: batched, left-padded, seeded; for CPU runs, tests and small GPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlcore.errors import ConfigError
from rlcore.llm.policy import load_policy, prepare_tokenizer, stop_token_ids
from rlcore.rollout.base import Completion, Prompts, RolloutEngine, SamplingParams


class _SampledLogprobs:
    """A logits processor that records log softmax(scores) of each sampled token.

    It runs last in the engine's own processor list (temperature, top-k, top-p), so ``scores`` are those of the
    distribution actually sampled. The token drawn at step t is only known at step t + 1 (last column of
    ``input_ids``), so one step of scores is kept: memory (B, V), not (steps, B, V).
    """

    def __init__(self) -> None:
        self.columns: list[torch.Tensor] = []
        self._scores: torch.Tensor | None = None
        self._lse: torch.Tensor | None = None

    def _take(self, tokens: torch.Tensor) -> None:
        picked = self._scores.gather(-1, tokens[:, None].to(self._scores.device)).squeeze(-1)
        self.columns.append(picked - self._lse)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._scores is not None:
            self._take(input_ids[:, -1])
        self._scores = scores.float()
        self._lse = torch.logsumexp(self._scores, dim=-1)
        return scores

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) generated tokens -> (B, L) their log-probs."""
        if len(self.columns) < new_tokens.shape[1]:
            self._take(new_tokens[:, len(self.columns)])
        self._scores = self._lse = None
        return torch.stack(self.columns, dim=1)


class HFEngine(RolloutEngine):
    """transformers ``generate`` behind the rollout interface.

    ``model``: a directory / hub id / "tiny" (loaded with :func:`rlcore.llm.load_policy`), or a loaded model,
    in which case ``tokenizer`` is required and the engine samples from that very object (colocated: no weight
    copy is ever needed). ``batch_size``: sequences per ``generate`` call (prompts x n are split into chunks).

    >>> engine = HFEngine("tiny")                                      # doctest: +SKIP
    >>> out = engine.generate(["1+1="], SamplingParams(n=2, max_new_tokens=8, seed=0))  # doctest: +SKIP
    >>> len(out), len(out[0]), out[0][0].finish_reason                 # doctest: +SKIP
    (1, 2, 'length')
    """

    def __init__(self, model: str | Path | Any, tokenizer: Any | None = None, *, device: str = "auto",
                 dtype: str | torch.dtype | None = None, batch_size: int = 64):
        self._owns_model = isinstance(model, (str, Path))
        if self._owns_model:
            model, loaded_tokenizer = load_policy(model, dtype=dtype, device=device)
            tokenizer = tokenizer or loaded_tokenizer
        elif tokenizer is None:
            raise ConfigError("HFEngine(model=<loaded model>) needs tokenizer=...; or pass a model directory")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.batch_size = batch_size
        self.stop_ids = stop_token_ids(self.tokenizer, model)
        self._offloaded_from: torch.device | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _generation_config(self, params: SamplingParams) -> tuple[Any, list[Any]]:
        """generate's config with its own warpers off, and our processors: warpers, then the log-prob recorder
        (generate would otherwise apply its warpers after every custom processor)."""
        from transformers import GenerationConfig, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        sample = params.temperature > 0
        config = GenerationConfig(
            do_sample=sample, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=params.max_new_tokens,
            eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(params.stop) or None)
        processors: list[Any] = []
        if sample and params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(params.temperature))
        if sample and params.top_k > 0:
            processors.append(TopKLogitsWarper(params.top_k))
        if sample and params.top_p < 1.0:
            processors.append(TopPLogitsWarper(params.top_p))
        return config, processors

    def _pad_left(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _end(self, tokens: list[int], stop: tuple[str, ...]) -> tuple[int, str]:
        """Length of the response within ``tokens`` (generate pads finished rows) and its finish reason."""
        for t, tok in enumerate(tokens):
            if tok in self.stop_ids:
                return t + 1, "stop"
        if stop:
            for t in range(1, len(tokens) + 1):
                if any(s in self.tokenizer.decode(tokens[:t], skip_special_tokens=True) for s in stop):
                    return t, "stop"
        return len(tokens), "length"

    @torch.no_grad()
    def generate(self, prompts: Prompts, params: SamplingParams) -> list[list[Completion]]:
        encoded = self.encode_prompts(prompts)
        if any(len(p) == 0 for p in encoded):
            raise ConfigError("a prompt is empty; every prompt needs at least one token")
        rows = [i for i in range(len(encoded)) for _ in range(params.n)]
        config, warpers = self._generation_config(params)
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item())
        results: list[list[Completion]] = [[] for _ in encoded]
        was_training = self.model.training
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                for start in range(0, len(rows), self.batch_size):
                    chunk = rows[start:start + self.batch_size]
                    input_ids, mask = self._pad_left([encoded[i] for i in chunk])
                    recorder = _SampledLogprobs()
                    out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                              logits_processor=[*warpers, recorder], tokenizer=self.tokenizer)
                    new = out[:, input_ids.shape[1]:]
                    logprobs = recorder.finish(new).cpu()
                    for b, i in enumerate(chunk):
                        tokens = new[b].tolist()
                        length, reason = self._end(tokens, params.stop)
                        tokens = tokens[:length]
                        results[i].append(Completion(
                            prompt_index=i, token_ids=tokens,
                            text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                            logprobs=logprobs[b, :length].tolist(), finish_reason=reason,
                            prompt_token_ids=list(encoded[i])))
        finally:
            self.model.train(was_training)
        return results

    @torch.no_grad()
    def update_weights(self, model: Any) -> None:
        if model is self.model:
            return
        ours, theirs = list(self.model.named_parameters()), list(model.named_parameters())
        if [n for n, _ in ours] != [n for n, _ in theirs]:
            raise ConfigError("update_weights got a model with different parameters; pass the unwrapped training "
                              "model of the same architecture (merge LoRA adapters first)")
        for (_, dst), (_, src) in zip(ours, theirs):
            dst.copy_(src)

    def sleep(self) -> None:
        """Offload the engine's own model to CPU memory (a shared training model is left where it is)."""
        if self._owns_model and self.device.type != "cpu":
            self._offloaded_from = self.device
            self.model.to("cpu")
            torch.cuda.empty_cache()

    def wake(self) -> None:
        if self._offloaded_from is not None:
            self.model.to(self._offloaded_from)
            self._offloaded_from = None
