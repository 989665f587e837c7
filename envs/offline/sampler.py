"""Uniform minibatches from an :class:`OfflineDataset`, for ``rlcore.loop.train_loop``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rlcore.envs.offline.dataset import OfflineDataset

BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


def dataset_tensors(dataset: OfflineDataset, device: str | torch.device = "cpu",
                    keys: Sequence[str] = BATCH_KEYS) -> dict[str, torch.Tensor]:
    """The arrays ``keys`` of ``dataset`` as float32 tensors on ``device`` (one copy, indexed by every batch)."""
    if len(dataset) == 0:
        raise ValueError("cannot sample from an empty dataset")
    return {key: torch.from_numpy(np.array(getattr(dataset, key), dtype=np.float32)).to(device) for key in keys}


class DatasetSampler:
    """Samples ``batch_size`` transitions uniformly with replacement, with its own ``torch.Generator`` per seed.

    The dataset is copied to ``device`` once and indexed there (no per-step host-to-device copies); the generators
    live on the same device. With one ``seed`` (an int), ``sample()`` returns float32 tensors: observations
    (B, obs_dim), actions (B, act_dim), rewards (B,), next_observations (B, obs_dim) and terminals (B,) as 0.0/1.0.
    With a list of K seeds (the offline family trains K seeds in one process) every array gets a leading seed
    dimension, (K, B, ...), and row k holds exactly the batch a sampler with seed ``seeds[k]`` alone draws.
    ``state_dict()`` holds the generator states, so a resumed run draws the same batches as an uninterrupted one.

    Example::

        >>> from rlcore.envs.offline import load_dataset
        >>> sampler = DatasetSampler(load_dataset("pendulum-scripted-v0"), batch_size=256, seed=0)
        >>> sampler.sample()["observations"].shape
        torch.Size([256, 3])
        >>> DatasetSampler(load_dataset("pendulum-scripted-v0"), 256, seed=[0, 1]).sample()["rewards"].shape
        torch.Size([2, 256])
    """

    def __init__(self, dataset: OfflineDataset, batch_size: int, seed: int | Sequence[int] = 0,
                 device: str | torch.device = "cpu", keys: Sequence[str] = BATCH_KEYS):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.size = len(dataset)
        self.data = dataset_tensors(dataset, self.device, keys)
        self.per_seed = not isinstance(seed, (int, np.integer))
        seeds = [int(s) for s in seed] if self.per_seed else [int(seed)]
        if not seeds:
            raise ValueError("seed must be an int or a non-empty list of ints")
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]

    def sample(self) -> dict[str, torch.Tensor]:
        draws = [torch.randint(self.size, (self.batch_size,), generator=g, device=self.device)
                 for g in self.generators]
        index = torch.stack(draws) if self.per_seed else draws[0]
        return {key: value[index] for key, value in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        if self.per_seed:
            return {"generators": [g.get_state() for g in self.generators]}
        return {"generator": self.generators[0].get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state["generators"] if self.per_seed else [state["generator"]]
        if len(saved) != len(self.generators):
            raise ValueError(f"sampler state holds {len(saved)} generators, this sampler has {len(self.generators)}")
        for g, value in zip(self.generators, saved):
            g.set_state(value)
