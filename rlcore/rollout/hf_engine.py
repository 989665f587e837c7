"""Rollouts with transformers ``generate``: batched, left-padded, seeded; for CPU runs, tests and small GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rlcore.errors import ConfigError
from rlcore.llm.policy import load_policy, prepare_tokenizer, stop_token_ids
from rlcore.rollout.base import Completion, Prompts, RolloutEngine, SamplingParams


class _Sampler:
    """A logits processor that draws each next token itself and records its log-prob.

    It runs last, after the engine's warpers (temperature, top-k, top-p), so it samples from and reports the
    distribution actually used. It returns -inf everywhere except the chosen token, and generate runs in greedy
    mode, so generate's ``torch.multinomial`` (slow on CPU over a 151k vocabulary) is replaced by one softmax, one
    cumulative sum and a binary search per row (inverse-CDF sampling with a seeded generator of our own).
    ``generator=None`` picks the arg-max (greedy decoding).
    """

    def __init__(self, generator: torch.Generator | None):
        self.generator = generator
        self.columns: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores.float(), dim=-1)
        if self.generator is None:
            tokens = probs.argmax(-1)
        else:
            cdf = probs.cumsum(-1)
            u = torch.rand((len(cdf), 1), generator=self.generator, device=cdf.device) * cdf[:, -1:]
            tokens = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_max(cdf.shape[1] - 1)
        picked = probs.gather(-1, tokens[:, None]).squeeze(-1)
        if bool((picked == 0).any()):  # u rounded onto the end of a float32 cdf: take the most likely token
            tokens = torch.where(picked == 0, probs.argmax(-1), tokens)
            picked = probs.gather(-1, tokens[:, None]).squeeze(-1)
        self.columns.append(picked.log())
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter_(1, tokens[:, None], 0.0)

    def logprobs(self) -> torch.Tensor:
        """(B, steps) log-probs of the chosen tokens."""
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
        """generate's config in greedy mode with no warpers of its own, and our warpers (temperature, top-k, top-p)
        to run before the sampler (generate would apply its own warpers after every custom processor)."""
        from transformers import GenerationConfig, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        sample = params.temperature > 0
        config = GenerationConfig(
            do_sample=False, max_new_tokens=params.max_new_tokens, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id, stop_strings=list(params.stop) or None)
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
        generator = torch.Generator(device=self.device).manual_seed(seed) if params.temperature > 0 else None
        results: list[list[Completion]] = [[] for _ in encoded]
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                input_ids, mask = self._pad_left([encoded[i] for i in chunk])
                sampler = _Sampler(generator)
                out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                          logits_processor=[*warpers, sampler], tokenizer=self.tokenizer)
                new = out[:, input_ids.shape[1]:]
                logprobs = sampler.logprobs().cpu()
                for b, i in enumerate(chunk):
                    tokens = new[b].tolist()
                    length, reason = self._end(tokens, params.stop)
                    tokens = tokens[:length]
                    results[i].append(Completion(
                        prompt_index=i, token_ids=tokens, text=self.tokenizer.decode(tokens, skip_special_tokens=True),
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

    @torch.no_grad()
    def load_weights(self, weights: Mapping[str, Any]) -> None:
        missing, unexpected = self.model.load_state_dict(dict(weights), strict=False)
        if missing or unexpected:
            raise ConfigError(f"pushed weights do not fit the model: missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}")

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
