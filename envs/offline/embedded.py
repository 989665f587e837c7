"""The embedded default dataset, ``pendulum-scripted-v0``: made from the installed packages alone, in about a
second, so the demo needs no external file.

50 Pendulum-v1 episodes (reset seeds 0-49) of the scripted swing-up controller with Gaussian torque noise of
standard deviation 2.0 (clipped to [-2, 2]), 10,000 steps, read back with D4RL ``qlearning_dataset`` semantics
(9,950 transitions). Its episodes average a normalised score of 76.2 (return -434; reference returns in
``rlcore.envs.offline.registry``); the noise-free controller scores 104.8 on the same reset seeds, so a good offline
learner can beat the data.
"""

from __future__ import annotations

from rlcore.envs.offline.collect import collect
from rlcore.envs.offline.dataset import OfflineDataset
from rlcore.envs.offline.readers import DEFAULT_DATASET, qlearning_dataset

EPISODES = 50
NOISE = 2.0
SEED = 0


def default_dataset(episodes: int = EPISODES, noise: float = NOISE, seed: int = SEED) -> OfflineDataset:
    """Generate the embedded default dataset (the arguments only change it for experiments)."""
    raw = collect("Pendulum-v1", "scripted", episodes=episodes, noise=noise, seed=seed)
    return qlearning_dataset(raw.arrays(), DEFAULT_DATASET,
                             metadata={**raw.metadata, "format": "embedded", "task": DEFAULT_DATASET})
