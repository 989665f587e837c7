"""Preparing an offline dataset for training O-DICE, IQL, BC or a plugin of the offline family.

:func:`prepare_data` is the one preparation every run goes through, whatever form the data comes in, and it is
public so that a hand-written training loop gets exactly the batches ``rlcore train`` gets. In order: load and
validate the dataset (a D4RL name, an HDF5 file, a Minari id, the embedded ``pendulum-scripted-v0``, numpy arrays in
D4RL layout or an ``OfflineDataset``, all with D4RL ``qlearning_dataset`` semantics); pick the imitation data when
``il_mode`` asks; transform rewards (return-range scaling for MuJoCo locomotion, the AntMaze shift: what
``reward_transform=auto`` means comes from the config class, see ``OfflineConfig.auto_reward_transform``); scale
actions to [-1, 1] when the simulator's bounds differ (the policy acts in [-1, 1] and actions are mapped back at
evaluation); standardise observations when asked; record where the data came from (``data.json``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.algorithms.offline.config import ImitationConfig, OfflineConfig
from rlcore.algorithms.offline.imitation import discriminator_dataset, first_trajectories, single_trajectory
from rlcore.envs.offline import (
    ObservationNormalizer,
    OfflineDataset,
    Task,
    concatenate,
    get_task,
    load_dataset,
    make_env,
    transform_rewards,
)
from rlcore.envs.offline.provenance import provenance
from rlcore.errors import ConfigError, DataError
from rlcore.io import atomic_write_text
from rlcore.logging import announce
from rlcore.runtime import resolve_device

DATA_JSON = "data.json"
"""File in a run directory that records where the training data came from (:attr:`PreparedData.provenance`)."""


@dataclasses.dataclass
class ActionScaler:
    """Maps environment actions in [low, high] to [-1, 1] for training, and back for acting."""

    low: np.ndarray
    high: np.ndarray

    @property
    def identity(self) -> bool:
        return bool(np.all(self.low == -1) and np.all(self.high == 1))

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        mid, half = (self.high + self.low) / 2, (self.high - self.low) / 2
        return np.clip((actions - mid) / half, -1.0, 1.0).astype(np.float32)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        mid, half = (self.high + self.low) / 2, (self.high - self.low) / 2
        return (mid + half * actions).astype(np.float32)


@dataclasses.dataclass
class PreparedData:
    """What :func:`prepare_data` returns: the training data and everything evaluation and acting need."""

    dataset: OfflineDataset
    """Training data after every transform."""
    target: Task | str
    """What evaluation runs in: a task (normalised scores known) or a gymnasium id."""
    normalizer: ObservationNormalizer | None
    actions: ActionScaler
    behaviour_returns: np.ndarray
    """Episode returns of the (imitation-selected) data before any reward transform."""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Where the data came from (``{"source": "d4rl" | "minari" | "generated" | "user", ...}``, see
    :mod:`rlcore.envs.offline.provenance`); also written to ``<run_dir>/data.json``."""

    @property
    def has_scores(self) -> bool:
        return isinstance(self.target, Task)

    def behaviour_score(self) -> float | None:
        if not isinstance(self.target, Task) or not len(self.behaviour_returns):
            return None
        return float(np.mean(self.target.normalized_score(self.behaviour_returns)))


def resolve_target(cfg: OfflineConfig) -> Task | str:
    """The evaluation target: the D4RL/registered task, or ``env`` (with reference returns if given)."""
    if cfg.task is not None:
        task = get_task(cfg.task)
        if cfg.ref_min_return is not None:
            task = dataclasses.replace(task, ref_min_score=cfg.ref_min_return, ref_max_score=cfg.ref_max_return)
        if task.env_id is None:
            raise ConfigError(f"task '{task.name}' has no simulator here ({task.note}); it can be scored but not "
                              "evaluated, so it cannot be trained with evaluation")
        return task
    if cfg.env is not None:
        if cfg.ref_min_return is not None:
            return Task(name=cfg.env, ref_min_score=cfg.ref_min_return, ref_max_score=cfg.ref_max_return,
                        env_id=cfg.env)
        return cfg.env
    raise ConfigError("no task or environment: pass --task <d4rl name> (e.g. hopper-medium-v2), or --env "
                      "<gymnasium id> with --dataset <file>")


def reward_transform(cfg: OfflineConfig, target: Task | str) -> str:
    """The reward transform ``cfg`` asks for: its ``reward_transform``, or for ``auto`` what the config class maps
    the task's family to (``auto_reward_transform``; none for families it does not name)."""
    if cfg.reward_transform != "auto":
        return cfg.reward_transform
    family = target.family if isinstance(target, Task) else "custom"
    return cfg.auto_reward_transform.get(family, "none")


DatasetLike = str | Path | Mapping[str, np.ndarray] | OfflineDataset


def prepare_data(cfg: OfflineConfig, run_dir: str | Path | None = None, *, dataset: DatasetLike | None = None,
                 progress: bool = True, device: torch.device | str | None = None) -> PreparedData:
    """Load, select, transform and check the training data for ``cfg`` (see the module docstring).

    ``dataset``: None (read ``cfg.dataset``, else ``cfg.task``'s D4RL file), an :class:`OfflineDataset`, a dict of
    numpy arrays in D4RL layout (``observations``, ``actions``, ``rewards``, ``terminals``, optional ``timeouts``
    and ``next_observations``), an HDF5 path, a D4RL name (downloaded when missing) or ``minari:<id>``. Every form
    goes through the same steps, so the same data as arrays or as a file gives the same batches. ``cfg.task`` (or
    ``cfg.env``) says where the policy is evaluated. With ``run_dir``, ``<run_dir>/data.json`` records where the data
    came from (the same dict as :attr:`PreparedData.provenance`). ``device`` (default ``cfg.device``) is only used
    to train the imitation discriminator.

    Example::

        >>> cfg = ODICEConfig(task="pendulum-scripted-v0")
        >>> prepared = prepare_data(cfg, dataset=arrays)          # arrays: dict of numpy arrays, D4RL layout
        >>> sampler = DatasetSampler(prepared.dataset, cfg.batch_size, seed=cfg.seed)
    """
    target = resolve_target(cfg)
    source = dataset if dataset is not None else cfg.dataset or cfg.task
    if source is None:
        raise ConfigError("no dataset: pass --task <D4RL name> (its file is downloaded when missing) or "
                          "--dataset <file.hdf5 | minari id>")
    device = resolve_device(cfg.device) if device is None else torch.device(device)
    task_name = target.name if isinstance(target, Task) and cfg.task is not None else None
    label = source if isinstance(source, (str, Path)) else f"{type(source).__name__} given in Python"
    announce(f"loading dataset {label}")
    data = load_dataset(source, task=task_name)
    origin = provenance(data, d4rl_name=task_name)
    il_mode = cfg.il_mode if isinstance(cfg, ImitationConfig) else "none"
    if isinstance(cfg, ImitationConfig) and il_mode == "single_trajectory":
        behaviour = data.trajectory(cfg.il_trajectory).episode_returns()
        data = single_trajectory(data, cfg.il_trajectory)
    elif isinstance(cfg, ImitationConfig) and il_mode == "discriminator":
        expert = load_dataset(cfg.expert_dataset, task=task_name)
        origin["expert"] = provenance(expert, d4rl_name=task_name)
        behaviour = data.episode_returns()
        data = _cached_discriminator_data(cfg, expert, data, None if run_dir is None else Path(run_dir), progress,
                                          device)
    else:
        behaviour = data.episode_returns()
        data = transform_rewards(data, reward_transform(cfg, target))

    announce(f"building the evaluation environment {target if isinstance(target, str) else target.env_id}")
    env = make_env(target)
    try:
        space = env.action_space
        if len(space.shape) != 1:
            raise DataError(f"{target}: only flat continuous action spaces are supported, got {space}")
        scaler = ActionScaler(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32))
        if env.observation_space.shape != (data.obs_dim,) or space.shape != (data.act_dim,):
            raise DataError(f"dataset '{label}' has observations of size {data.obs_dim} and actions of size "
                            f"{data.act_dim}, but {target} has {env.observation_space.shape} and {space.shape}; "
                            "use a dataset recorded in this environment")
    finally:
        env.close()
    if not scaler.identity:
        data = data.replace(actions=scaler.to_unit(data.actions),
                            metadata={**data.metadata, "actions_scaled_from": [scaler.low.tolist(),
                                                                               scaler.high.tolist()]})
    normalizer = None
    if cfg.normalize_obs:
        normalizer = ObservationNormalizer.from_dataset(data)
        data = normalizer.normalize_dataset(data)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(run_dir) / DATA_JSON, json.dumps(origin, indent=1) + "\n")
    return PreparedData(data, target, normalizer, scaler, np.asarray(behaviour, dtype=np.float64), origin)


def _cached_discriminator_data(cfg: ImitationConfig, expert: OfflineDataset, mixed: OfflineDataset,
                               run_dir: Path | None, progress: bool, device: torch.device | str) -> OfflineDataset:
    """Discriminator-relabelled data; the rewards are cached in the run directory so a resume reuses them."""
    from safetensors.numpy import load_file, save_file

    cache = run_dir / "il_rewards.safetensors" if run_dir is not None else None
    if cache is not None and cache.is_file():
        union = concatenate([mixed, first_trajectories(expert, cfg.expert_trajectories)], metadata=mixed.metadata)
        return union.replace(rewards=load_file(str(cache))["rewards"])
    data = discriminator_dataset(expert, mixed, trajectories=cfg.expert_trajectories, hidden=cfg.disc_hidden,
                                 steps=cfg.disc_steps, lr=cfg.disc_lr, grad_penalty=cfg.disc_grad_penalty,
                                 seed=cfg.seed, device=device, progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        save_file({"rewards": np.ascontiguousarray(data.rewards)}, str(tmp))
        tmp.replace(cache)
    return data
