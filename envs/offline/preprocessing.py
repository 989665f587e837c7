"""Reward and observation preprocessing used by the offline RL papers (pure functions on datasets, plus the
observation normaliser whose statistics travel with a checkpoint)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch

from rlcore.envs.offline.dataset import OfflineDataset
from rlcore.errors import DataError


def scale_rewards_by_return_range(dataset: OfflineDataset, scale: float = 1000.0) -> OfflineDataset:
    """MuJoCo reward scaling of IQL / O-DICE: ``r * scale / (max episode return - min episode return)``.

    Episodes are the dataset's own (split at terminals and time limits: for D4RL MuJoCo files, "terminal or 1000
    steps"). The factor is recorded in ``metadata["reward_scale"]``.
    """
    returns = dataset.episode_returns()
    span = float(returns.max() - returns.min()) if len(returns) else 0.0
    if not span > 0:
        raise DataError(f"{dataset.metadata.get('source', 'dataset')}: all {len(returns)} episodes have the same "
                        "return, so the return range is 0; return-range scaling needs episodes of different returns")
    factor = scale / span
    return dataset.replace(rewards=dataset.rewards.astype(np.float64) * factor,
                           metadata={**dataset.metadata, "reward_scale": factor})


AntMazeMode = Literal["penalty", "shift"]


def antmaze_rewards(dataset: OfflineDataset, mode: AntMazeMode = "penalty") -> OfflineDataset:
    """AntMaze reward shaping: ``penalty`` maps r -> 0 if r == 1 else -3 (the O-DICE reference); ``shift`` maps
    r -> r - 1 (IQL's).

    AntMaze rewards are sparse 0/1; anything else is an error (wrong dataset for this transform).
    """
    r = dataset.rewards
    if not np.all((r == 0) | (r == 1)):
        bad = r[(r != 0) & (r != 1)][0]
        raise DataError(f"{dataset.metadata.get('source', 'dataset')}: AntMaze rewards must be 0 or 1, found {bad}; "
                        "apply antmaze_rewards only to AntMaze datasets")
    if mode == "penalty":
        shaped = np.where(r == 1, 0.0, -3.0)
    elif mode == "shift":
        shaped = r - 1.0
    else:
        raise ValueError(f"unknown antmaze reward mode '{mode}'; use 'penalty' or 'shift'")
    return dataset.replace(rewards=shaped, metadata={**dataset.metadata, "antmaze_rewards": mode})


RewardTransform = Literal["none", "return_range", "antmaze", "antmaze_iql"]


def transform_rewards(dataset: OfflineDataset, transform: RewardTransform) -> OfflineDataset:
    """Apply a reward transform by name: ``return_range`` (:func:`scale_rewards_by_return_range`), ``antmaze``
    (O-DICE's r -> 0 if r == 1 else -3), ``antmaze_iql`` (IQL's r - 1) or ``none``."""
    if transform == "none":
        return dataset
    if transform == "return_range":
        return scale_rewards_by_return_range(dataset)
    if transform == "antmaze":
        return antmaze_rewards(dataset, "penalty")
    if transform == "antmaze_iql":
        return antmaze_rewards(dataset, "shift")
    raise ValueError(f"unknown reward transform {transform!r}; use none, return_range, antmaze or antmaze_iql")


class ObservationNormalizer:
    """Per-dimension ``(obs - mean) / std`` with statistics from a dataset (``std`` is the population standard
    deviation plus ``eps``, as the O-DICE reference's IL setting).

    Works on numpy arrays and torch tensors (any device; copies of the statistics are cached per device).
    ``state_dict()`` holds two float32 tensors, so it goes into a checkpoint; ``wrap(policy)`` applies it in front
    of a policy at evaluation.

    Example::

        norm = ObservationNormalizer.from_dataset(dataset)
        train_data = norm.normalize_dataset(dataset)      # train on normalised observations
        checkpoint_state["obs_norm"] = norm.state_dict()  # two float32 tensors
        result = evaluate(norm.wrap(policy), task)        # the policy sees normalised observations
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} must be equal 1-D shapes")
        if not np.all(self.std > 0):
            raise ValueError("std must be positive")
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_dataset(cls, dataset: OfflineDataset, eps: float = 1e-3) -> ObservationNormalizer:
        obs = dataset.observations.astype(np.float64)
        return cls(obs.mean(axis=0), obs.std(axis=0) + eps)

    def __call__(self, observations: Any) -> Any:
        if isinstance(observations, torch.Tensor):
            key = (observations.device, observations.dtype)
            if key not in self._cache:
                self._cache[key] = (torch.as_tensor(self.mean, dtype=observations.dtype, device=observations.device),
                                    torch.as_tensor(self.std, dtype=observations.dtype, device=observations.device))
            mean, std = self._cache[key]
            return (observations - mean) / std
        return ((np.asarray(observations, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def normalize_dataset(self, dataset: OfflineDataset) -> OfflineDataset:
        """The dataset with observations and next observations normalised."""
        return dataset.replace(observations=self(dataset.observations),
                               next_observations=self(dataset.next_observations),
                               metadata={**dataset.metadata, "observations_normalized": True})

    def wrap(self, policy: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
        """A policy taking raw observations: normalise, then call ``policy``."""
        return lambda observations: policy(self(observations))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__init__(np.asarray(state["mean"]), np.asarray(state["std"]))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> ObservationNormalizer:
        return cls(np.asarray(state["mean"]), np.asarray(state["std"]))
