"""Problems and prompts for GRPO: load a benchmark (or the toy task), build prompt texts, sample steps' prompts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlcore.envs.reasoning import MathRecord, load_math_dataset, make_arith_dataset, record_prompt
from rlcore.errors import DataError
from rlcore.logging import announce

ARITH_SIZES = {"arith": (1024, 0), "arith-heldout": (64, 1)}
"""Toy-task names -> (default number of problems, generator seed): the held-out set draws different problems."""


@dataclass
class Problems:
    """Problems with their prompt texts (chat template applied) and prompt token ids."""

    records: list[MathRecord]
    prompts: list[str]
    prompt_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.records)


def load_records(name: Any, *, data_dir: str = "", limit: int = 0, arith_kinds: Sequence[str] = (),
                 arith_max_number: int = 9) -> list[MathRecord]:
    """Records of ``name`` (see ``GRPOConfig.dataset``; also a ``datasets.Dataset`` or a list of dicts): the toy
    task's generated problems, or prompts and problems (:func:`rlcore.envs.reasoning.load_math_dataset`)."""
    if isinstance(name, str) and name in ARITH_SIZES:
        size, seed = ARITH_SIZES[name]
        return make_arith_dataset(limit or size, seed=seed, kinds=tuple(arith_kinds or ("sum", "expr")),
                                  max_number=arith_max_number)
    return load_math_dataset(name, data_dir=data_dir or None, limit=limit or None)


def build_problems(name: str, records: list[MathRecord], tokenizer: Any, *, prompt_format: str = "chat",
                   max_prompt_tokens: int | None = None) -> Problems:
    """``records`` with prompt texts and ids; prompts longer than ``max_prompt_tokens`` are dropped (a DataError
    if none is left)."""
    announce(f"tokenising {len(records)} prompts of {name}")
    texts = [record_prompt(r, tokenizer, chat=prompt_format == "chat") for r in records]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    keep = [i for i, x in enumerate(ids) if max_prompt_tokens is None or len(x) <= max_prompt_tokens]
    if not keep:
        raise DataError(f"every prompt of '{name}' is longer than max_prompt_tokens={max_prompt_tokens}; raise it")
    return Problems([records[i] for i in keep], [texts[i] for i in keep], [ids[i] for i in keep])


class PromptSampler:
    """Indices of ``per_step`` problems per step, walking through shuffled epochs with its own generator.

    >>> sampler = PromptSampler(5, per_step=2, seed=0)
    >>> len(sampler.sample()), len({*sampler.sample(), *sampler.sample()}) >= 2
    (2, True)
    """

    def __init__(self, size: int, per_step: int, seed: int):
        if size < 1:
            raise DataError("no training problems to sample from; check the dataset")
        self.size, self.per_step = size, per_step
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.cursor = 0
        self.epoch = 0

    def sample(self) -> list[int]:
        out: list[int] = []
        while len(out) < self.per_step:
            if self.cursor == len(self.order):
                self.order = torch.randperm(self.size, generator=self.generator).tolist()
                self.cursor = 0
                self.epoch += 1
            take = min(self.per_step - len(out), len(self.order) - self.cursor)
            out += self.order[self.cursor:self.cursor + take]
            self.cursor += take
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": list(self.order), "cursor": self.cursor,
                "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.cursor, self.epoch = list(state["order"]), int(state["cursor"]), int(state["epoch"])
