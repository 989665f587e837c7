"""The wire format between a trainer and a generation server (``rlcore vllm-serve``), shared by both ends.

Endpoints (TRL's ``vllm-serve`` names where it has one)::

    GET  /health/          -> {"status": "ok", "model", "weights_version", "server_id"}
    POST /generate/        {"prompts": [[ids]], "params": {SamplingParams}, "weights_version": v | null}
                           -> {"completions": [[Completion]]}; 409 when the server's weights are not version v
    POST /update_weights/  body: the weights (safetensors bytes), header X-Weights-Version: v -> {"weights_version"}

A server's ``server_id`` changes when it restarts, and its ``weights_version`` starts at 0 (the weights it loaded
from ``--model``): a trainer that pushed version v > 0 and gets 409 pushes its current weights again.

The weights travel as one safetensors archive (names as in the transformers model's ``state_dict``, LoRA
adapters merged): tensors only, no pickle. Only this payload's transport would differ for a collective (NCCL)
push; the endpoints, versions and names stay as here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from rlcore.rollout.base import Completion, SamplingParams

HEALTH, GENERATE, UPDATE_WEIGHTS = "/health/", "/generate/", "/update_weights/"
VERSION_HEADER = "X-Weights-Version"
STALE = 409
"""HTTP status of a generate request whose expected weights version the server does not hold."""


def params_to_json(params: SamplingParams) -> dict[str, Any]:
    return {**dataclasses.asdict(params), "stop": list(params.stop)}


def params_from_json(data: Mapping[str, Any]) -> SamplingParams:
    return SamplingParams(**{**data, "stop": tuple(data.get("stop", ()))})


def completions_to_json(groups: list[list[Completion]]) -> list[list[dict[str, Any]]]:
    return [[dataclasses.asdict(c) for c in group] for group in groups]


def completions_from_json(data: list[list[Mapping[str, Any]]]) -> list[list[Completion]]:
    return [[Completion(**c) for c in group] for group in data]


def weights_to_bytes(weights: Mapping[str, torch.Tensor]) -> bytes:
    """One safetensors archive of ``weights`` (tied tensors are stored once per name, as contiguous copies)."""
    return save_safetensors({k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()})


def weights_from_bytes(blob: bytes) -> dict[str, torch.Tensor]:
    return load_safetensors(blob)


def merged_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The transformers ``state_dict`` names and values a generation server loads: a PEFT model's LoRA adapters
    are merged into their base weights (then unmerged again), the adapter tensors themselves left out."""
    if not hasattr(model, "merge_adapter"):
        return dict(model.state_dict())
    model.merge_adapter()
    try:
        merged = {}
        for name, tensor in model.state_dict().items():
            if "lora_" in name:
                continue
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            merged[name] = tensor.detach().clone()
        return merged
    finally:
        model.unmerge_adapter()
