"""Acting with a trained offline policy and evaluating it in its simulator, for every seed of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlcore.algorithms.offline.config import OfflineConfig
from rlcore.algorithms.offline.data import ActionScaler, PreparedData
from rlcore.envs.offline import ObservationNormalizer, evaluate


def policy_fn(algo: Any, seed_index: int, normalizer: ObservationNormalizer | None, scaler: ActionScaler,
              device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """Seed ``seed_index``'s deterministic policy on raw observations (N, obs_dim) -> env actions (N, act_dim)."""

    @torch.no_grad()
    def act(observations: np.ndarray) -> np.ndarray:
        obs = normalizer(observations) if normalizer is not None else np.asarray(observations, np.float32)
        x = torch.as_tensor(obs, dtype=torch.float32, device=device)
        if algo.num_seeds > 1:
            x = x.unsqueeze(0).expand(algo.num_seeds, *x.shape)
            actions = algo.act(x)[seed_index]
        else:
            actions = algo.act(x)
        return scaler.to_env(actions.cpu().numpy())

    return act


def eval_seed(seed: int) -> int:
    """First reset seed of a policy seed's evaluation episodes (away from the seeds data is usually made with)."""
    return 100_000 + 1_000 * seed


def make_evaluator(cfg: OfflineConfig, data: PreparedData, device: torch.device
                   ) -> Callable[[Any], dict[str, float]]:
    """Evaluation for train_loop: every seed's policy for ``cfg.eval_episodes`` episodes.

    Keys (under ``eval/``): return_mean, return_stderr, normalized_score, normalized_score_stderr (with reference
    returns), success_rate (when the env reports it), length_mean; with several seeds each is the mean over seeds
    and ``eval/<key>/seed<s>`` holds every seed's value.
    """
    seeds = cfg.seed_list

    def run(algo: Any) -> dict[str, float]:
        per_seed: list[dict[str, float]] = []
        for k, seed in enumerate(seeds):
            result = evaluate(policy_fn(algo, k, data.normalizer, data.actions, device), data.target,
                              episodes=cfg.eval_episodes, seed=eval_seed(seed))
            m = {"return_mean": result["return_mean"], "return_stderr": result["return_stderr"],
                 "length_mean": float(np.mean(result["lengths"]))}
            if result["normalized_score_mean"] is not None:
                m["normalized_score"] = result["normalized_score_mean"]
                m["normalized_score_stderr"] = result["normalized_score_stderr"]
            if result["success_rate"] is not None:
                m["success_rate"] = result["success_rate"]
            per_seed.append(m)
        out = {f"eval/{key}": float(np.mean([m[key] for m in per_seed])) for key in per_seed[0]}
        if len(seeds) > 1:
            for seed, m in zip(seeds, per_seed):
                out.update({f"eval/{key}/seed{seed}": value for key, value in m.items()})
        return out

    return run


def policy_state(data: PreparedData) -> dict[str, Any]:
    """What a checkpoint needs besides the networks to act: sizes, observation statistics, action bounds."""
    return {
        "obs_dim": data.dataset.obs_dim,
        "act_dim": data.dataset.act_dim,
        "normalizer": data.normalizer.state_dict() if data.normalizer is not None else None,
        "action_low": torch.from_numpy(data.actions.low),
        "action_high": torch.from_numpy(data.actions.high),
    }
