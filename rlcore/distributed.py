"""One code path for 1 CPU process, N CPU processes (gloo) and N GPUs: a small interface over ``accelerate``.

Launch N processes with ``torchrun --standalone --nproc_per_node N -m rlcore train ...`` or
``accelerate launch --multi_gpu --num_processes N -m rlcore train ...`` (also on CPU-only machines, where it uses
gloo). Beware: ``accelerate launch --cpu --num_processes N`` starts ONE process; :attr:`Distributed.world_size`
tells what was actually launched. FSDP and DeepSpeed come from an accelerate config file
(``accelerate launch --config_file ...``); the code here does not change.

Conventions: every process runs the same steps; data is split by :meth:`Distributed.shard`; only the main
process writes files; collectives (:meth:`gather_rows`, :meth:`gather_objects`, :meth:`mean`) must be called by
every process in the same order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from rlcore.errors import ConfigError
from rlcore.runtime import resolve_device

T = TypeVar("T")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


def _mixed_precision(name: str, device: torch.device) -> str:
    if name not in MIXED_PRECISION:
        raise ConfigError(f"mixed_precision must be one of {MIXED_PRECISION}, got '{name}'")
    if name == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    if name != "no" and device.type == "cpu":
        raise ConfigError(f"mixed_precision={name} needs a GPU; use mixed_precision=no (or auto) on CPU")
    return name


class Distributed:
    """The processes of this run, their devices and collectives (a thin layer over ``accelerate.Accelerator``).

    ``device``: auto (a GPU when there is one, else CPU), cpu or cuda; in a multi-GPU launch every process gets
    its own GPU. ``mixed_precision``: auto (bf16 autocast on a bf16-capable GPU, else none), no, bf16 or fp16.

    >>> dist = Distributed("cpu")                                         # doctest: +SKIP
    >>> dist.world_size, dist.is_main                                     # doctest: +SKIP
    (1, True)
    """

    def __init__(self, device: str = "auto", mixed_precision: str = "auto"):
        from accelerate import Accelerator

        wanted = resolve_device(device)
        if wanted.type not in ("cpu", "cuda"):
            raise ConfigError(f"device '{device}' is not supported for training here; use cpu or cuda")
        self.accelerator = Accelerator(cpu=wanted.type == "cpu", mixed_precision=_mixed_precision(
            mixed_precision, wanted))

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def backend(self) -> str | None:
        """torch.distributed backend (gloo, nccl), None for a single process."""
        return None if self.world_size == 1 else str(self.accelerator.state.backend)

    def shard(self, items: Sequence[T]) -> tuple[int, list[T]]:
        """This process's contiguous share of ``items`` (whose length must divide evenly): (offset, items)."""
        if len(items) % self.world_size:
            raise ConfigError(f"{len(items)} items cannot be split evenly over {self.world_size} processes; make the "
                              f"batch a multiple of the number of processes")
        size = len(items) // self.world_size
        return self.rank * size, list(items[self.rank * size:(self.rank + 1) * size])

    def prepare(self, *objects: Any) -> Any:
        """Wrap models (DDP/FSDP), optimisers and schedulers for this launch; returns them in the same order."""
        return self.accelerator.prepare(*objects)

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return self.accelerator.unwrap_model(module)

    def backward(self, loss: Tensor) -> None:
        self.accelerator.backward(loss)

    def no_sync(self, module: torch.nn.Module, skip: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce of this backward when ``skip`` (all but the last micro-batch)."""
        return self.accelerator.no_sync(module) if skip else contextlib.nullcontext()

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.accelerator.autocast()

    def clip_grad_norm(self, parameters: Iterator[torch.nn.Parameter], max_norm: float) -> Tensor:
        """Clip the (global) gradient norm to ``max_norm`` (0 = only measure it); returns the norm before clipping."""
        params = [p for p in parameters if p.grad is not None]
        if max_norm > 0:
            return self.accelerator.clip_grad_norm_(params, max_norm)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))

    def gather_rows(self, tensor: Tensor, pad_value: float = 0, pad_dim: int = 1, pad_first: bool = False) -> Tensor:
        """Concatenate every process's ``tensor`` along dim 0 (in rank order), first padding dim ``pad_dim`` to
        the longest (at the front when ``pad_first``, e.g. left-padded prompts)."""
        if self.world_size == 1:
            return tensor
        is_bool = tensor.dtype == torch.bool  # padding would promote bool to int64 on some processes only
        if is_bool:
            tensor = tensor.to(torch.uint8)
        if tensor.ndim > pad_dim:
            tensor = self.accelerator.pad_across_processes(tensor, dim=pad_dim, pad_index=pad_value,
                                                           pad_first=pad_first)
        gathered = self.accelerator.gather(tensor.contiguous())
        return gathered.bool() if is_bool else gathered

    def gather_objects(self, objects: list[Any]) -> list[Any]:
        """Concatenate every process's list of small Python values (in rank order; torch.distributed pickles them
        between the processes of this run, never from files)."""
        if self.world_size == 1:
            return list(objects)
        from accelerate.utils import gather_object

        return list(gather_object(objects))

    def mean(self, metrics: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Average 0-d metric tensors over processes with one collective (same keys on every process)."""
        if self.world_size == 1 or not metrics:
            return dict(metrics)
        keys = sorted(metrics)
        stacked = torch.stack([metrics[k].detach().reshape(()).float().to(self.device) for k in keys])
        reduced = self.accelerator.reduce(stacked, reduction="mean")
        return dict(zip(keys, reduced.unbind()))

    def any(self, flags: list[bool]) -> list[bool]:
        """Per flag, whether any process raised it (one collective): decisions all processes must take together,
        such as stopping or writing a checkpoint."""
        if self.world_size == 1:
            return list(flags)
        raised = torch.tensor([float(f) for f in flags], device=self.device)
        return [v > 0 for v in self.accelerator.reduce(raised, reduction="sum").tolist()]

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()
