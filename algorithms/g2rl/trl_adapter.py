"""G2RL inside TRL's ``GRPOTrainer``: a subclass that shapes each completion's reward before TRL standardises it.

Usage (the same arguments as ``trl.GRPOTrainer``, plus the G2RL settings)::

    from trl import GRPOConfig
    from rlcore.algorithms.g2rl.trl_adapter import G2RLGRPOTrainer

    trainer = G2RLGRPOTrainer(model="path/to/model", reward_funcs=my_reward, train_dataset=dataset,
                              args=GRPOConfig(output_dir="out", num_generations=8, beta=0.001),
                              scaler="literal", lam=1.0, reward_clip=3.0)
    trainer.train()

How it works. G2RL changes only the rewards that enter the group standardisation (docs/g2rl.md "Reward scaling"), so
the subclass overrides two TRL methods and nothing else:

- ``_generate`` additionally keeps the prompt and completion token ids of the batch;
- ``_calculate_rewards`` runs one no-gradient forward of the current (= sampling) policy over them, gets Phi
  with :func:`rlcore.geometry.token_stats` at TRL's sampling temperature, gathers Phi over processes, computes nu
  within each group of ``num_generations`` completions, and multiplies every completion's row of rewards by
  ``f = r_tilde / r`` (the G2RL factor, clipped; 1 where r = 0), so that TRL's weighted sum of reward functions
  equals the shaped reward ``r_tilde``. TRL then standardises as configured (``scale_rewards``; its default is
  the unbiased std plus 1e-4, not the paper's population form).

Differences from ``rlcore train g2rl``: TRL computes no old-policy log-probs when ``num_iterations == 1``, so the
Phi pass here is an extra forward (no backward); logged per-function rewards are the shaped ones; G2RL metrics
appear in TRL's logs as ``g2rl/mean_nu``, ``g2rl/mean_cos``, ``g2rl/neg_frac``.
"""

from __future__ import annotations

from typing import Any

import torch

from rlcore.algorithms.grpo.rollouts import HiddenStates, Rollouts, sequence_pass
from rlcore.geometry import SCALE_MODES, cosine_matrix, novelty_scores, pairwise_stats, scale_rewards
from rlcore.llm import lm_head_weight

try:
    from trl import GRPOTrainer
except ImportError as e:  # pragma: no cover - trl is part of the llm extra
    raise ImportError("the TRL adapter needs trl: pip install 'rlcore[llm]'") from e

DEFAULT_LAM = {"literal": 1.0, "centered": 0.5, "none": 0.0}


def shaping_factors(rewards: torch.Tensor, shaped: torch.Tensor) -> torch.Tensor:
    """Per-completion factors ``shaped / rewards`` (1 where the reward is 0, which G2RL leaves at 0).

    >>> shaping_factors(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.5, -0.5, 0.0]))
    tensor([1.5000, 0.5000, 1.0000])
    """
    safe = torch.where(rewards == 0, torch.ones_like(rewards), rewards)
    return torch.where(rewards == 0, torch.ones_like(rewards), shaped / safe)


class G2RLGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with G2RL reward shaping (``scaler``: literal, centered or none; ``lam`` defaults to
    1.0 / 0.5; ``reward_clip``: c of eq. 13). Everything else is TRL's."""

    def __init__(self, *args: Any, scaler: str = "literal", lam: float | None = None, reward_clip: float = 3.0,
                 **kwargs: Any):
        if scaler not in SCALE_MODES:
            raise ValueError(f"scaler must be one of {SCALE_MODES}, got {scaler!r}")
        super().__init__(*args, **kwargs)
        self.g2rl_scaler = scaler
        self.g2rl_lam = DEFAULT_LAM[scaler] if lam is None else lam
        self.g2rl_clip = reward_clip
        self._g2rl_batch: tuple[list[list[int]], list[list[int]]] | None = None
        self.g2rl_last: dict[str, torch.Tensor] = {}
        """The last batch's rewards, novelty and shaped rewards (all processes), for inspection."""

    def _generate(self, prompts: list) -> Any:
        out = super()._generate(prompts)
        self._g2rl_batch = (out[0], out[1])  # prompt ids, completion ids of this process
        return out

    @torch.no_grad()
    def _g2rl_features(self) -> torch.Tensor:
        """Phi (n, d) of this process's completions under the current policy, one forward, no backward."""
        prompt_ids, completion_ids = self._g2rl_batch
        model = self.accelerator.unwrap_model(self.model)
        batch = Rollouts.from_token_ids(prompt_ids, completion_ids, self._tokenizer.pad_token_id,
                                        self.accelerator.device)
        size = self.args.per_device_train_batch_size
        parts = [sequence_pass(HiddenStates(model), batch.select(slice(i, i + size)), lm_head_weight(model),
                               temperature=self.temperature, features=True).features
                 for i in range(0, len(batch), size)]
        return torch.cat(parts)

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any
                           ) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.g2rl_scaler == "none":
            return rewards_per_func
        mode = "train" if self.model.training else "eval"
        m = self.num_generations if mode == "train" else self.num_generations_eval
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        features = self.accelerator.gather(self._g2rl_features()).to(rewards.device)
        grouped = rewards.view(-1, m)
        phi = features.view(grouped.shape[0], m, -1)
        novelty = novelty_scores(phi, grouped)
        shaped = scale_rewards(grouped, novelty, self.g2rl_lam, mode=self.g2rl_scaler, clip=self.g2rl_clip)
        stats = pairwise_stats(cosine_matrix(phi))
        self._metrics[mode]["g2rl/mean_nu"].append(novelty.mean().item())
        self._metrics[mode]["g2rl/mean_cos"].append(stats.mean_cos.item())
        self._metrics[mode]["g2rl/neg_frac"].append(stats.neg_frac.item())
        self.g2rl_last = {"rewards": grouped.clone(), "novelty": novelty, "shaped": shaped}
        return rewards_per_func * shaping_factors(rewards, shaped.reshape(-1)).unsqueeze(1)
