"""The wire format between a trainer and a generation server (``rlcore vllm-serve``), shared by both ends.

Endpoints (TRL's ``vllm-serve`` names where it has one)::

    GET  /health/          -> {"status": "ok", "model", "weights_version", "server_id"}
    POST /generate/        {"prompts": [[ids]], "params": {SamplingParams}, "weights_version": v | null}
                           -> {"completions": [[Completion]]}; 409 when the server's weights are not version v
    POST /update_weights/  header X-Weights-Version: v, and either the weights as body (safetensors bytes) or,
                           with X-Weights-Transport: collective, their spec (JSON [{name, dtype, shape}]) while
                           the tensors are broadcast over the communicator -> {"weights_version"}
    POST /init_communicator/  {"host", "port", "backend"}: join the trainer's two-member process group (rank 1)

A server's ``server_id`` changes when it restarts, and its ``weights_version`` starts at 0 (the weights it loaded
from ``--model``): a trainer that pushed version v > 0 and gets 409 pushes its current weights again.

The weights are the transformers model's ``state_dict`` (LoRA adapters merged), tensors only, no pickle. They
travel either in the HTTP body (one safetensors archive) or over a :class:`Channel`: a two-member torch process
group between the trainer (rank 0) and the server (rank 1), NCCL between GPUs, gloo on CPU. Everything else
(endpoints, versions, names, the spec) is the same for every transport.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from rlcore.rollout.base import Completion, SamplingParams

HEALTH, GENERATE, UPDATE_WEIGHTS = "/health/", "/generate/", "/update_weights/"
INIT_COMMUNICATOR = "/init_communicator/"
VERSION_HEADER, TRANSPORT_HEADER = "X-Weights-Version", "X-Weights-Transport"
COLLECTIVES = ("gloo", "nccl")
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


def weights_spec(weights: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """What a receiver needs to allocate ``weights``: ``[{"name", "dtype", "shape"}]`` in sending order."""
    return [{"name": k, "dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape)}
            for k, v in weights.items()]


def _by_dtype(spec: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in spec:
        groups.setdefault(entry["dtype"], []).append(entry)
    return groups


class Channel:
    """Weights from the trainer (rank 0) to the server (rank 1) over a two-member torch process group of its own
    (the default group of a distributed training is not touched): ``backend`` nccl (GPU tensors) or gloo (CPU).

    One broadcast per dtype of all tensors flattened. Both ends construct it at the same time (the TCP store on
    ``host:port`` is the trainer's); ``timeout_s`` bounds every wait.
    """

    def __init__(self, host: str, port: int, rank: int, backend: str, timeout_s: float = 300.0):
        import torch.distributed as dist

        if backend not in COLLECTIVES:
            raise ValueError(f"backend must be one of {COLLECTIVES}, got '{backend}'")
        timeout = timedelta(seconds=timeout_s)
        self._store = dist.TCPStore(host, port, 2, rank == 0, timeout=timeout)
        if backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
            self.group = dist.ProcessGroupNCCL(self._store, rank, 2)
        else:
            self.device = torch.device("cpu")
            self.group = dist.ProcessGroupGloo(self._store, rank, 2, timeout)
        self._options = dist.BroadcastOptions()
        self._options.rootRank = 0

    def _broadcast(self, flat: torch.Tensor) -> None:
        self.group.broadcast([flat], self._options).wait()

    def send(self, weights: Mapping[str, torch.Tensor]) -> None:
        for entries in _by_dtype(weights_spec(weights)).values():
            self._broadcast(torch.cat([weights[e["name"]].detach().to(self.device).reshape(-1) for e in entries]))

    def receive(self, spec: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        out = {}
        for dtype, entries in _by_dtype(spec).items():
            sizes = [int(torch.Size(e["shape"]).numel()) for e in entries]
            flat = torch.empty(sum(sizes), dtype=getattr(torch, dtype), device=self.device)
            self._broadcast(flat)
            for e, part in zip(entries, flat.split(sizes)):
                out[e["name"]] = part.view(e["shape"])
        return out
