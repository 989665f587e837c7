"""Offline RL data and environments: read D4RL / Minari datasets, map D4RL names to maintained simulators, score,
preprocess, sample, collect and evaluate.

Example::

    from rlcore.envs.offline import DatasetSampler, evaluate, load_dataset, normalized_score

    data = load_dataset("pendulum-scripted-v0")            # the embedded default; or a D4RL .hdf5 path
    sampler = DatasetSampler(data, batch_size=256, seed=0)  # dict of torch tensors per sample()
    result = evaluate(policy, "pendulum-scripted-v0", episodes=10, seed=0)
    normalized_score("hopper-medium-v2", 1600.0)            # D4RL score x100
    fetch_dataset("hopper-medium-v2")                       # D4RL's file, downloaded once (resumable, checked)
"""

from rlcore.envs.offline.collect import collect, mix_files, save_dataset
from rlcore.envs.offline.dataset import OfflineDataset, concatenate
from rlcore.envs.offline.download import fetch_dataset
from rlcore.envs.offline.evaluation import evaluate
from rlcore.envs.offline.policies import (
    GaussianNoise,
    PendulumSwingUp,
    RandomPolicy,
    SB3Actor,
    load_run_policy,
    resolve_policy,
)
from rlcore.envs.offline.preprocessing import (
    ObservationNormalizer,
    antmaze_rewards,
    scale_rewards_by_return_range,
    transform_rewards,
)
from rlcore.envs.offline.readers import DEFAULT_DATASET, load_dataset, qlearning_dataset
from rlcore.envs.offline.registry import Task, all_tasks, get_task, normalized_score, register_task
from rlcore.envs.offline.sampler import DatasetSampler, dataset_tensors
from rlcore.envs.offline.simulator import SimulatorMismatchWarning, make_env

__all__ = [
    "DEFAULT_DATASET",
    "DatasetSampler",
    "dataset_tensors",
    "GaussianNoise",
    "ObservationNormalizer",
    "OfflineDataset",
    "PendulumSwingUp",
    "RandomPolicy",
    "SB3Actor",
    "SimulatorMismatchWarning",
    "Task",
    "all_tasks",
    "antmaze_rewards",
    "collect",
    "concatenate",
    "evaluate",
    "fetch_dataset",
    "get_task",
    "load_dataset",
    "load_run_policy",
    "make_env",
    "mix_files",
    "normalized_score",
    "qlearning_dataset",
    "register_task",
    "resolve_policy",
    "save_dataset",
    "scale_rewards_by_return_range",
    "transform_rewards",
]
