"""LLM generation engines behind one interface: ``hf`` (transformers generate), ``vllm`` (colocated vLLM) and
``server`` (a remote ``rlcore vllm-serve``, see :mod:`rlcore.rollout.server_engine`).

>>> engine = make_engine("hf", "tiny")                                 # doctest: +SKIP
>>> groups = engine.generate(["2+2="], SamplingParams(n=4, max_new_tokens=16, seed=0))  # doctest: +SKIP
>>> [c.finish_reason for c in groups[0]]                               # doctest: +SKIP
['length', 'length', 'length', 'length']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcore.errors import ConfigError
from rlcore.rollout.base import Completion, Prompts, RolloutEngine, SamplingParams

ENGINES = ("hf", "vllm", "server")


def make_engine(name: str, model: str | Path | Any, **kwargs: Any) -> RolloutEngine:
    """Build the engine called ``name`` ("hf", "vllm" or "server") for ``model`` (a path, a built-in name such as
    "tiny" or "smollm2-135m", for hf a loaded model with ``tokenizer=``, for server its base URL with
    ``tokenizer=``); ``kwargs`` go to the engine's constructor."""
    if name == "hf":
        from rlcore.rollout.hf_engine import HFEngine

        return HFEngine(model, **kwargs)
    if name == "vllm":
        from rlcore.llm.policy import builtin_model
        from rlcore.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(builtin_model(model) or model, **kwargs)
    if name == "server":
        from rlcore.rollout.server_engine import ServerEngine

        return ServerEngine(str(model), **kwargs)
    raise ConfigError(f"unknown rollout engine '{name}'; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Completion", "Prompts", "RolloutEngine", "SamplingParams", "make_engine"]
