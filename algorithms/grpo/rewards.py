"""Reward functions of a GRPO run: the built-ins, user functions, their weighted sum, and DAPO's overlong penalty.

A reward function is called once per step with the batch (TRL's convention, so TRL reward functions work here):
``f(prompts=[prompt], completions=[response text], completion_ids=[[token]], id=[problem id], answer=[gold],
**row fields, **run context) -> one float (or None: no score) per completion``. Every field of a dataset row reaches
it as a list; the run context is ``correct`` (the verifier's verdicts, when every row has an answer),
``reward_range`` and ``max_new_tokens``. Write ``**kwargs`` to take what you do not use, as TRL asks.

``reward_funcs`` mixes registered names (entry-point group ``rlcore.rewards``: :data:`REWARDS`; the built-ins
``math``, ``format`` and ``length`` are registered there too), ``"package.module:function"`` strings (imported
like ``python -m`` would, so a module in the current folder is found) and callables. ``reward_weights`` weighs
them; the run's reward is the weighted sum (None counts as 0, as TRL's ``nansum``), and each function's mean over
the responses it scored is logged as ``train/reward/<name>`` (a callable's ``__name__``). A function that raises
stops the run with its own exception and traceback.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlcore.algorithms.grpo.registry import REWARDS, is_target
from rlcore.envs.reasoning import MathRecord, check_records
from rlcore.envs.reasoning.extract import extract_boxed
from rlcore.envs.reasoning.rewards import REWARD_RANGES
from rlcore.errors import ConfigError, DataError, UserError
from rlcore.plugins import load_target

OVERLONG = "overlong"
"""Name under which DAPO's soft overlong penalty is added (and logged) when ``overlong_buffer > 0``."""
CONTEXT = ("correct", "reward_range", "max_new_tokens")
"""Keyword arguments every reward function gets from the run (besides the batch and the row fields)."""

RewardFn = Callable[..., Sequence[float | None]]


def load_user_function(spec: str) -> RewardFn:
    """Import ``package.module:function``, finding modules of the current folder as ``python -m`` does (no code
    is evaluated from the string)."""
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        fn = load_target(spec)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"reward function '{spec}' cannot be loaded ({type(e).__name__}: {e}); give an importable "
                          "package.module:function (modules of the current folder are found)") from e
    if not callable(fn):
        raise ConfigError(f"reward function '{spec}' is not callable")
    return fn


def function_name(fn: Callable) -> str:
    """The name a callable reward function is logged under: its ``__name__`` (that of a partial's function)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def resolve_reward(entry: str | RewardFn) -> tuple[str, RewardFn]:
    """``(name, function)`` of one ``reward_funcs`` entry: a callable, a ``package.module:function`` string or a
    registered name (one-line error listing the registered ones when unknown)."""
    if callable(entry):
        return function_name(entry), entry
    if not isinstance(entry, str):
        raise ConfigError(f"a reward function must be a callable, a registered name or 'package.module:function', "
                          f"got {type(entry).__name__}")
    if is_target(entry):
        return entry, load_user_function(entry)
    return entry, REWARDS.get(entry)


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


def verifier_reward(*, correct: Sequence[bool] | None = None, reward_range: str = "pm1", **_: Any) -> list[float]:
    """``math``: the verifier's verdict as a reward, the correct or incorrect value of ``reward_range``."""
    if correct is None:
        raise DataError("reward function 'math' needs the field 'answer' (or 'solution') in every dataset row; "
                        "train on rows without answers with other reward functions")
    low, high = REWARD_RANGES[reward_range]
    return [high if ok else low for ok in correct]


def format_reward(*, completions: Sequence[str], **_: Any) -> list[float]:
    """``format``: 1 when the response has a complete ``\\boxed{}`` final answer, else 0."""
    return [float(extract_boxed(t) is not None) for t in completions]


def length_reward(*, completion_ids: Sequence[Sequence[int]], max_new_tokens: int, **_: Any) -> list[float]:
    """``length``: ``-len / max_new_tokens``, a linear length penalty in [-1, 0]."""
    return length_penalty(torch.tensor([len(ids) for ids in completion_ids]), max_new_tokens).tolist()


def overlong_reward(*, completion_ids: Sequence[Sequence[int]], max_new_tokens: int, buffer: int, **_: Any
                    ) -> list[float]:
    """DAPO's soft overlong penalty of the responses (:func:`overlong_penalty`), added when ``overlong_buffer > 0``."""
    return overlong_penalty(torch.tensor([len(ids) for ids in completion_ids]), max_new_tokens, buffer).tolist()


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
    """The dataset row fields passed to reward functions: ``id``, ``answer`` (when every row has one) and every
    other field of the rows (None where a row lacks it), one list entry per completion."""
    fields: dict[str, list[Any]] = {"id": [r.id for r in records]}
    if all(r.answer is not None for r in records):
        fields["answer"] = [r.answer for r in records]
    reserved = {"prompts", "completions", "completion_ids", *CONTEXT}
    for key in sorted({k for r in records for k in r.metadata}):
        if key not in fields and key not in reserved:
            fields[key] = [r.metadata.get(key) for r in records]
    return fields


@dataclass
class Scores:
    """One step's rewards: per function, their weighted sum, and the verifier's verdicts."""

    names: list[str]
    per_function: Tensor
    """(N, K) float64, NaN where a function gave no score."""
    total: Tensor
    """(N,) float32 weighted sum: the reward the run trains on."""
    correct: Tensor | None
    """(N,) bool verdicts of the verifier (None when the rows have no answers)."""

    def means(self) -> dict[str, Tensor]:
        """``reward/<name>``: each function's mean over the responses it scored (0 when it scored none)."""
        scored = ~torch.isnan(self.per_function)
        sums = self.per_function.nan_to_num(0.0).sum(0)
        means = (sums / scored.sum(0).clamp_min(1)).float()
        return {f"reward/{n}": means[k] for k, n in enumerate(self.names)}


class RewardFunctions:
    """The run's reward functions (``reward_funcs`` entries, see :func:`resolve_reward`) with ``weights``;
    ``overlong_buffer > 0`` adds DAPO's penalty under the name ``overlong`` with weight ``overlong_penalty``."""

    def __init__(self, funcs: Sequence[str | RewardFn], weights: Sequence[float] | None, *, reward_range: str,
                 max_new_tokens: int, overlong_buffer: int = 0, overlong_penalty: float = 1.0):
        if not funcs:
            raise ConfigError("reward_funcs is empty; give at least one reward function")
        if weights is not None and len(weights) != len(funcs):
            raise ConfigError(f"reward_weights has {len(weights)} values for {len(funcs)} reward_funcs; give one "
                              "weight per function")
        resolved = [resolve_reward(f) for f in funcs]
        self.names = [name for name, _ in resolved]
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"reward_funcs names must be distinct, got {self.names}")
        self.funcs = [fn for _, fn in resolved]
        self.weights = list(weights) if weights is not None else [1.0] * len(self.names)
        if overlong_buffer:
            self.names.append(OVERLONG)
            self.funcs.append(functools.partial(overlong_reward, buffer=overlong_buffer))
            self.weights.append(overlong_penalty)
        self.reward_range, self.max_new_tokens = reward_range, max_new_tokens

    def __call__(self, texts: list[str], records: Sequence[MathRecord], token_ids: Sequence[Sequence[int]]) -> Scores:
        """Score the completions ``texts`` (with their ``token_ids``) of ``records``, one each; the verifier judges
        them first when every record has an answer."""
        correct = check_records(texts, records) if all(r.answer is not None for r in records) else None
        kwargs = dict(prompts=[r.prompt for r in records], completions=list(texts),
                      completion_ids=[list(ids) for ids in token_ids], **row_fields(records),
                      correct=None if correct is None else list(correct), reward_range=self.reward_range,
                      max_new_tokens=self.max_new_tokens)
        columns = []
        for name, fn in zip(self.names, self.funcs):
            try:
                out = fn(**kwargs)
            except Exception as e:  # the user's own exception and frames go up; the note names the function
                if hasattr(e, "add_note"):
                    e.add_note(f"raised by reward function '{name}'")
                raise
            columns.append(_check_scores(name, out, len(texts)))
        per_function = torch.tensor(columns, dtype=torch.float64).T.reshape(len(texts), len(self.names))
        total = combine_rewards(per_function, torch.tensor(self.weights, dtype=torch.float64)).float()
        return Scores(self.names, per_function, total,
                      None if correct is None else torch.tensor(list(correct), dtype=torch.bool))
