"""Uniform minibatches for K seeds trained together."""

from __future__ import annotations

from typing import Any

import torch

from rlcore.envs.offline import OfflineDataset, dataset_tensors


class MultiSeedSampler:
    """Uniform minibatches for K seeds: seed k draws with its own generator exactly the batches a one-seed
    :class:`rlcore.envs.offline.DatasetSampler` with seed k draws; arrays are (K, B, ...) (or (B, ...) for one seed).
    The dataset lives on ``device`` once."""

    def __init__(self, dataset: OfflineDataset, batch_size: int, seeds: list[int], device: torch.device | str):
        self.device = torch.device(device)
        self.data, self.size, self.batch_size = dataset_tensors(dataset, self.device), len(dataset), batch_size
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]

    def sample(self) -> dict[str, torch.Tensor]:
        index = torch.stack([torch.randint(self.size, (self.batch_size,), generator=g, device=self.device)
                             for g in self.generators])
        if len(self.generators) == 1:
            index = index[0]
        return {key: value[index] for key, value in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"generators": [g.get_state() for g in self.generators]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for g, saved in zip(self.generators, state["generators"]):
            g.set_state(saved)
