"""G2RL inside TRL's ``GRPOTrainer``, through TRL's public extension points only: the reward functions.

Usage (the same arguments as ``trl.GRPOTrainer``, plus the G2RL settings)::

    from trl import GRPOConfig
    from rlcore.algorithms.g2rl.trl_adapter import G2RLGRPOTrainer

    trainer = G2RLGRPOTrainer(model="path/to/model", reward_funcs=my_reward, train_dataset=dataset,
                              args=GRPOConfig(output_dir="out", num_generations=8, beta=0.001),
                              scaler="literal", lam=1.0, reward_clip=3.0)
    trainer.train()

Supported TRL versions: :data:`TRL_VERSIONS` (the ``llm`` extra pins the same range); any other version stops at
construction with one line. How it works: G2RL changes only the rewards that enter the group standardisation
(docs/g2rl.md "Reward scaling"), so the adapter wraps each reward function given to ``GRPOTrainer`` (same name, so
TRL still logs ``rewards/<name>``) and overrides no TRL method. When TRL calls the first wrapper of a batch, the
shared :class:`G2RLRewards` evaluates every user function, forms TRL's weighted sum r (``reward_weights``), runs
one no-gradient forward of the current (= sampling) policy over prompt and completion tokens to get Phi at TRL's
sampling temperature (:func:`rlcore.geometry.token_stats`), gathers r and Phi over processes, computes nu within
each group of ``num_generations`` completions and the shaped reward r~; every wrapper then returns its function's
rewards times ``f = r~ / r`` (1 where r = 0), so TRL's weighted sum is r~. TRL then standardises as configured
(``scale_rewards``; its default is the unbiased std plus 1e-4, not the paper's population form). G2RL metrics go
through the ``log_metric`` callback TRL hands to reward functions: ``g2rl/mean_nu``, ``g2rl/mean_cos``,
``g2rl/neg_frac``.

Limits: synchronous callable reward functions (wrap a reward model or an async function in one); text or chat
prompts without tools, environments or images (the prompt ids are re-tokenised the way TRL tokenises those);
``multi_objective_aggregation="sum_then_normalize"`` (TRL's default). Differences from ``rlcore train g2rl``: the
Phi pass is an extra forward (TRL computes no old-policy log-probs when ``num_iterations == 1``), and the logged
per-function rewards are the shaped ones.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from rlcore.algorithms.g2rl.config import DEFAULT_LAM
from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.errors import UserError
from rlcore.geometry import SCALE_MODES, cosine_matrix, novelty_scores, pairwise_stats, scale_rewards
from rlcore.llm import lm_head_weight

try:
    import trl
    from trl import GRPOTrainer, is_conversational
except ImportError as e:  # pragma: no cover - trl is part of the llm extra
    raise ImportError("the TRL adapter needs trl: pip install 'rlcore[llm]'") from e

TRL_VERSIONS = ">=1.16,<1.17"
"""TRL releases the adapter is tested with (the ``llm`` extra in pyproject.toml pins the same range)."""


def check_trl_version(version: str) -> None:
    """Raise UserError (one line) unless ``version`` lies in :data:`TRL_VERSIONS` (pre-releases included)."""
    if not SpecifierSet(TRL_VERSIONS).contains(Version(version), prereleases=True):
        raise UserError(f"the G2RL TRL adapter supports trl{TRL_VERSIONS}, found trl {version}; "
                        f"install a supported one: pip install 'trl{TRL_VERSIONS}'")


def shaping_factors(rewards: torch.Tensor, shaped: torch.Tensor) -> torch.Tensor:
    """Per-completion factors ``shaped / rewards`` (1 where the reward is 0, which G2RL leaves at 0).

    >>> shaping_factors(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.5, -0.5, 0.0]))
    tensor([1.5000, 0.5000, 1.0000])
    """
    safe = torch.where(rewards == 0, torch.ones_like(rewards), rewards)
    return torch.where(rewards == 0, torch.ones_like(rewards), shaped / safe)


def _name(func: Callable) -> str:
    while hasattr(func, "func") and hasattr(func, "args"):  # functools.partial, as TRL names it
        func = func.func
    return getattr(func, "__name__", type(func).__name__)


class _ShapedReward:
    """One user reward function as TRL sees it: same name, G2RL-scaled values."""

    def __init__(self, owner: G2RLRewards, index: int, name: str):
        self.owner, self.index, self.__name__ = owner, index, name

    def __call__(self, prompts: list, completions: list, completion_ids: list, **kwargs: Any) -> list[float | None]:
        return self.owner.rewards(self.index, prompts, completions, completion_ids, kwargs)


class G2RLRewards:
    """The reward functions of one trainer, G2RL-shaped together (see the module docstring)."""

    def __init__(self, funcs: Sequence[Callable], scaler: str, lam: float, clip: float):
        self.funcs, self.scaler, self.lam, self.clip = list(funcs), scaler, lam, clip
        self.trainer: Any = None
        self._batch: tuple[int, list[torch.Tensor], torch.Tensor] | None = None
        self.last: dict[str, torch.Tensor] = {}

    def wrapped(self) -> list[_ShapedReward]:
        return [_ShapedReward(self, i, _name(f)) for i, f in enumerate(self.funcs)]

    def prompt_ids(self, prompts: list) -> list[list[int]]:
        """The prompts tokenised as TRL 1.16 tokenises text and chat prompts (no tools, no images)."""
        tokenizer = self.trainer.processing_class
        if is_conversational({"prompt": prompts[0]}):
            out = tokenizer.apply_chat_template(conversation=prompts, add_generation_prompt=True, tokenize=True,
                                                return_dict=True, **(self.trainer.args.chat_template_kwargs or {}))
            return [list(ids) for ids in out["input_ids"]]
        return [list(ids) for ids in tokenizer(text=prompts)["input_ids"]]

    @torch.no_grad()
    def features(self, prompts: list, completion_ids: list) -> torch.Tensor:
        """Phi (n, d) of this process's completions under the current policy: one forward, no backward."""
        t = self.trainer
        model = t.accelerator.unwrap_model(t.model)
        batch = Rollouts.from_token_ids(self.prompt_ids(prompts), completion_ids, t.processing_class.pad_token_id,
                                        t.accelerator.device)
        size = t.args.per_device_train_batch_size
        parts = [sequence_pass(HiddenStates(model), batch.select(slice(i, i + size)), lm_head_weight(model),
                               temperature=t.temperature, features=True).features for i in range(0, len(batch), size)]
        return torch.cat(parts)

    def rewards(self, index: int, prompts: list, completions: list, completion_ids: list, kwargs: dict[str, Any]
                ) -> list[float | None]:
        """Function ``index``'s rewards for this batch, scaled; the first function's call shapes the batch."""
        if index == 0:
            self._shape(prompts, completions, completion_ids, kwargs)
        if self._batch is None or self._batch[0] != id(completions):
            raise RuntimeError("G2RL rewards: TRL called the reward functions out of order; this is a bug")
        _, raw, factors = self._batch
        return [None if math.isnan(v) else v for v in (raw[index] * factors).tolist()]

    def _shape(self, prompts: list, completions: list, completion_ids: list, kwargs: dict[str, Any]) -> None:
        t = self.trainer
        raw = []
        for func in self.funcs:
            out = func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
            if len(out) != len(prompts):
                raise ValueError(f"reward function '{_name(func)}' returned {len(out)} rewards for {len(prompts)} "
                                 "completions")
            raw.append(torch.tensor([math.nan if r is None else float(r) for r in out], device=t.accelerator.device))
        local = (torch.stack(raw, 1) * t.reward_weights.to(t.accelerator.device)).nansum(1)
        rewards = t.accelerator.gather(local)
        features = t.accelerator.gather(self.features(prompts, completion_ids)).to(rewards.device)
        m = t.num_generations if t.model.training else t.num_generations_eval
        grouped = rewards.view(-1, m)
        phi = features.view(grouped.shape[0], m, -1)
        novelty = novelty_scores(phi, grouped)
        shaped = scale_rewards(grouped, novelty, self.lam, mode=self.scaler, clip=self.clip)
        factors = shaping_factors(rewards, shaped.reshape(-1))
        stats = pairwise_stats(cosine_matrix(phi))
        log = kwargs["log_metric"]
        log("g2rl/mean_nu", novelty.mean().item())
        log("g2rl/mean_cos", stats.mean_cos.item())
        log("g2rl/neg_frac", stats.neg_frac.item())
        start = t.accelerator.process_index * len(prompts)
        self._batch = (id(completions), raw, factors[start:start + len(prompts)])
        self.last = {"rewards": grouped.clone(), "novelty": novelty, "shaped": shaped}


class G2RLGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with G2RL reward shaping (``scaler``: literal, centered or none; ``lam`` defaults to
    1.0 / 0.5; ``reward_clip``: c of eq. 13). Everything else is TRL's."""

    def __init__(self, *args: Any, scaler: str = "literal", lam: float | None = None, reward_clip: float = 3.0,
                 **kwargs: Any):
        check_trl_version(trl.__version__)
        if scaler not in SCALE_MODES:
            raise ValueError(f"scaler must be one of {SCALE_MODES}, got {scaler!r}")
        args_list = list(args)
        funcs = args_list[1] if len(args_list) > 1 else kwargs.get("reward_funcs")
        funcs = [] if funcs is None else funcs if isinstance(funcs, list) else [funcs]
        self.g2rl_rewards: G2RLRewards | None = None
        if scaler != "none":
            self._check_supported(funcs, args_list[2] if len(args_list) > 2 else kwargs.get("args"), kwargs)
            self.g2rl_rewards = G2RLRewards(funcs, scaler, DEFAULT_LAM[scaler] if lam is None else lam, reward_clip)
            if len(args_list) > 1:
                args_list[1] = self.g2rl_rewards.wrapped()
            else:
                kwargs["reward_funcs"] = self.g2rl_rewards.wrapped()
        super().__init__(*args_list, **kwargs)
        if self.g2rl_rewards is not None:
            if len(self.reward_funcs) != len(funcs):
                raise UserError("G2RLGRPOTrainer does not support environments that add their own rewards")
            self.g2rl_rewards.trainer = self

    @staticmethod
    def _check_supported(funcs: list, config: Any, kwargs: dict[str, Any]) -> None:
        if not funcs:
            raise UserError("G2RLGRPOTrainer needs reward_funcs: the rewards it shapes")
        for f in funcs:
            if isinstance(f, str | torch.nn.Module) or not callable(f):
                raise UserError(f"G2RLGRPOTrainer shapes callable reward functions; wrap the reward model {f!r} "
                                "in a function that returns one float per completion")
            if inspect.iscoroutinefunction(f) or inspect.iscoroutinefunction(type(f).__call__):
                raise UserError(f"G2RLGRPOTrainer needs synchronous reward functions; '{_name(f)}' is async")
        if kwargs.get("tools") or kwargs.get("environment_factory"):
            raise UserError("G2RLGRPOTrainer does not support tools or environments (prompt ids are re-tokenised)")
        aggregation = getattr(config, "multi_objective_aggregation", "sum_then_normalize")
        if aggregation != "sum_then_normalize":
            raise UserError(f"G2RLGRPOTrainer needs multi_objective_aggregation='sum_then_normalize', got "
                            f"'{aggregation}' (G2RL shapes the weighted sum of the rewards)")

    @property
    def g2rl_last(self) -> dict[str, torch.Tensor]:
        """The last batch's rewards, novelty and shaped rewards (all processes), for inspection."""
        return self.g2rl_rewards.last if self.g2rl_rewards is not None else {}
