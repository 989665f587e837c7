"""Reward functions of a GRPO run: built-ins, user functions, their weighted sum, and DAPO's overlong penalty.

A reward function is called once per step with the batch (TRL's convention, so TRL reward functions work here):
``f(prompts=[question], completions=[response text], completion_ids=[[token]], answer=[gold], id=[problem id],
**row fields)`` and returns one float per completion, or None where it has no score. ``reward_funcs`` names
built-ins (:data:`BUILTIN_REWARDS`) or user functions as ``package.module:function``; ``reward_weights`` weighs
them; the run's reward is the weighted sum (None counts as 0, as TRL's ``nansum``), and each function's mean over
the responses it scored is logged as ``train/reward/<name>``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rlcore.envs.reasoning import MathRecord, score_records
from rlcore.envs.reasoning.extract import extract_boxed
from rlcore.errors import ConfigError, UserError

BUILTIN_REWARDS = ("math", "format", "length")
"""``math``: the verifier (correct / incorrect values of ``reward_range``); ``format``: 1 when the response has a
complete ``\\boxed{}`` final answer, else 0; ``length``: ``-len / max_new_tokens`` (a linear length penalty)."""
OVERLONG = "overlong"
"""Name under which DAPO's soft overlong penalty is added (and logged) when ``overlong_buffer > 0``."""

RewardFn = Callable[..., Sequence[float | None]]


def is_user_function(name: str) -> bool:
    """Whether ``name`` has the ``package.module:function`` form."""
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr.isidentifier() and all(p.isidentifier() for p in module.split(".")))


def load_user_function(spec: str) -> RewardFn:
    """Import ``package.module:function`` (no code is evaluated from the string)."""
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"reward function '{spec}' cannot be loaded ({type(e).__name__}: {e}); give an importable "
                          "package.module:function") from e
    if not callable(fn):
        raise ConfigError(f"reward function '{spec}' is not callable")
    return fn


def length_penalty(lengths: Tensor, max_len: int) -> Tensor:
    """Linear length penalty ``-len / max_len`` in [-1, 0], (N,) token counts -> (N,).

    >>> length_penalty(torch.tensor([0, 5, 10]), 10)
    tensor([ 0.0000, -0.5000, -1.0000], dtype=torch.float64)
    """
    return (0.0 - lengths.double()) / max_len  # 0 - x: no negative zero


def overlong_penalty(lengths: Tensor, max_len: int, buffer: int) -> Tensor:
    """DAPO's soft overlong punishment (Yu et al., 2025, section 3.4), (N,) token counts -> (N,) in [-1, 0].

    With ``L_max = max_len`` and ``L_cache = buffer``: 0 up to ``L_max - L_cache`` tokens, then
    ``((L_max - L_cache) - len) / L_cache`` (linear down to -1 at ``L_max``), and -1 beyond. Multiply by the
    penalty factor (verl's ``overlong_buffer.penalty_factor``) before adding it to the reward.

    >>> overlong_penalty(torch.tensor([4, 6, 7, 8, 9]), max_len=8, buffer=2)
    tensor([ 0.0000,  0.0000, -0.5000, -1.0000, -1.0000], dtype=torch.float64)
    """
    if buffer < 1 or buffer > max_len:
        raise ValueError(f"buffer must lie in 1..max_len ({max_len}), got {buffer}")
    return (((max_len - buffer) - lengths.double()) / buffer).clamp(-1.0, 0.0)


def combine_rewards(scores: Tensor, weights: Tensor) -> Tensor:
    """Weighted sum of the reward functions' scores, (N, K) with NaN = no score, (K,) -> (N,).

    NaN counts as 0 (TRL's ``nansum``); a response that no function scored is an error (TRL keeps it as NaN and
    leaves it out of its group's statistics, which group standardisation here does not do).

    >>> combine_rewards(torch.tensor([[1.0, float("nan")], [-1.0, 1.0]]), torch.tensor([1.0, 0.1]))
    tensor([ 1.0000, -0.9000])
    """
    unscored = torch.isnan(scores).all(-1)
    if unscored.any():
        raise UserError(f"no reward function scored response {int(unscored.nonzero()[0])} of the step (all returned "
                        "None); every response needs a score from at least one function")
    return (scores * weights).nansum(-1)


def _check_scores(name: str, out: Any, n: int) -> list[float]:
    if isinstance(out, Tensor):
        out = out.tolist()
    try:
        values = [math.nan if v is None else float(v) for v in out]
    except (TypeError, ValueError) as e:
        raise UserError(f"reward function '{name}' must return a list of floats or None, got {str(out)[:80]}") from e
    if len(values) != n:
        raise UserError(f"reward function '{name}' returned {len(values)} scores for {n} completions; return one "
                        "float (or None) per completion")
    return values


def row_fields(records: Sequence[MathRecord]) -> dict[str, list[Any]]:
    """The dataset row fields passed to reward functions: ``answer``, ``id`` and every metadata key (None where
    a row lacks it), one list entry per completion."""
    fields: dict[str, list[Any]] = {"answer": [r.answer for r in records], "id": [r.id for r in records]}
    for key in sorted({k for r in records for k in r.metadata}):
        if key not in fields and key not in ("prompts", "completions", "completion_ids"):
            fields[key] = [r.metadata.get(key) for r in records]
    return fields


@dataclass
class Scores:
    """One step's rewards: per function, their weighted sum, and the verifier's values."""

    names: list[str]
    per_function: Tensor
    """(N, K) float64, NaN where a function gave no score."""
    total: Tensor
    """(N,) float32 weighted sum: the reward the run trains on."""
    verifier: Tensor
    """(N,) float32 verifier rewards (``math``), which decide correctness."""

    def means(self) -> dict[str, Tensor]:
        """``reward/<name>``: each function's mean over the responses it scored (0 when it scored none)."""
        scored = ~torch.isnan(self.per_function)
        sums = self.per_function.nan_to_num(0.0).sum(0)
        means = (sums / scored.sum(0).clamp_min(1)).float()
        return {f"reward/{n}": means[k] for k, n in enumerate(self.names)}


class RewardFunctions:
    """The run's reward functions: ``names`` (built-ins or ``package.module:function``) with ``weights``;
    ``overlong_buffer > 0`` adds DAPO's penalty under the name ``overlong`` with weight ``overlong_penalty``."""

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None, *, reward_range: str,
                 max_new_tokens: int, overlong_buffer: int = 0, overlong_penalty: float = 1.0):
        self.reward_range, self.max_new_tokens, self.overlong_buffer = reward_range, max_new_tokens, overlong_buffer
        self.names = list(names)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.names)
        self.user = {n: load_user_function(n) for n in self.names if n not in BUILTIN_REWARDS}
        if overlong_buffer:
            self.names.append(OVERLONG)
            self.weights.append(overlong_penalty)

    def _builtin(self, name: str, texts: list[str], lengths: Tensor, verifier: list[float]) -> list[float]:
        if name == "math":
            return verifier
        if name == "format":
            return [float(extract_boxed(t) is not None) for t in texts]
        if name == "length":
            return length_penalty(lengths, self.max_new_tokens).tolist()
        return overlong_penalty(lengths, self.max_new_tokens, self.overlong_buffer).tolist()

    def __call__(self, texts: list[str], records: Sequence[MathRecord], token_ids: Sequence[Sequence[int]]) -> Scores:
        """Score the completions ``texts`` (with their ``token_ids``) of ``records``, one each."""
        verifier = score_records(texts, records, reward_range=self.reward_range)
        lengths = torch.tensor([len(ids) for ids in token_ids])
        kwargs = dict(prompts=[r.prompt for r in records], completions=list(texts),
                      completion_ids=[list(ids) for ids in token_ids], **row_fields(records))
        columns = []
        for name in self.names:
            if name in self.user:
                try:
                    out = self.user[name](**kwargs)
                except Exception as e:  # a user function's failure stops the run with one line naming it
                    raise UserError(f"reward function '{name}' raised {type(e).__name__}: {e}") from e
            else:
                out = self._builtin(name, texts, lengths, verifier)
            columns.append(_check_scores(name, out, len(texts)))
        per_function = torch.tensor(columns, dtype=torch.float64).T.reshape(len(texts), len(self.names))
        total = combine_rewards(per_function, torch.tensor(self.weights, dtype=torch.float64)).float()
        return Scores(self.names, per_function, total, torch.tensor(verifier))
