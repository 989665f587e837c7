"""Training O-DICE, BC or IQL on an offline dataset: data preparation, evaluation and the run.

Data preparation, in order: load and validate the dataset (a D4RL name, an HDF5 file, a Minari id, or the
embedded ``pendulum-scripted-v0``); pick the imitation data when ``il_mode`` asks; transform rewards (return-range
scaling for MuJoCo locomotion, the AntMaze shift); scale actions to [-1, 1] when the simulator's bounds differ
(the policy acts in [-1, 1] and actions are mapped back at evaluation); standardise observations when asked.
Everything a trained policy needs to act (observation statistics, action bounds, sizes) goes into every
checkpoint, so a run directory alone is enough to evaluate or collect with the policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.algorithms.odice.baselines import BC, IQL
from rlcore.algorithms.odice.config import BCConfig, IQLConfig, ODICEConfig, OfflineConfig
from rlcore.algorithms.odice.il import discriminator_dataset, first_trajectories, single_trajectory
from rlcore.algorithms.odice.odice import ODICE
from rlcore.envs.offline import (
    DatasetSampler,
    ObservationNormalizer,
    OfflineDataset,
    Task,
    antmaze_rewards,
    concatenate,
    evaluate,
    get_task,
    load_dataset,
    make_env,
    scale_rewards_by_return_range,
)
from rlcore.errors import ConfigError, DataError
from rlcore.loop import train_loop
from rlcore.run import Run, default_run_dir
from rlcore.runtime import resolve_device, seed_everything, set_threads

ALGORITHMS: dict[str, tuple[type[OfflineConfig], type]] = {
    "odice": (ODICEConfig, ODICE),
    "bc": (BCConfig, BC),
    "iql": (IQLConfig, IQL),
}
TITLES = {"odice": "O-DICE", "bc": "BC", "iql": "IQL"}


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
    dataset: OfflineDataset
    """Training data after every transform."""
    target: Task | str
    """What evaluation runs in: a task (normalised scores known) or a gymnasium id."""
    normalizer: ObservationNormalizer | None
    actions: ActionScaler
    behaviour_returns: np.ndarray
    """Episode returns of the (imitation-selected) data before any reward transform."""

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


def _reward_transform(cfg: OfflineConfig, algo: str, target: Task | str) -> str:
    if cfg.reward_transform != "auto":
        return cfg.reward_transform
    family = target.family if isinstance(target, Task) else "custom"
    if family == "locomotion":
        return "return_range"
    if family == "antmaze":
        return "antmaze_iql" if algo == "iql" else "antmaze"
    return "none"


def prepare_data(cfg: OfflineConfig, algo: str, run_dir: Path | None = None, progress: bool = True,
                 device: torch.device | str = "cpu") -> PreparedData:
    """Load, select, transform and check the training data for ``cfg`` (see the module docstring)."""
    target = resolve_target(cfg)
    source = cfg.dataset or cfg.task
    if source is None:
        raise ConfigError("no dataset: pass --dataset <file.hdf5 | minari id> (or a D4RL --task whose file is "
                          "cached locally)")
    task_name = target.name if isinstance(target, Task) and cfg.task is not None else None
    data = load_dataset(source, task=task_name)
    il_mode = getattr(cfg, "il_mode", "none")
    if il_mode == "single_trajectory":
        behaviour = data.trajectory(cfg.il_trajectory).episode_returns()  # type: ignore[attr-defined]
        data = single_trajectory(data, cfg.il_trajectory)  # type: ignore[attr-defined]
    elif il_mode == "discriminator":
        expert = load_dataset(cfg.expert_dataset, task=task_name)  # type: ignore[attr-defined]
        behaviour = data.episode_returns()
        data = _cached_discriminator_data(cfg, expert, data, run_dir, progress, device)  # type: ignore[arg-type]
    else:
        behaviour = data.episode_returns()
        transform = _reward_transform(cfg, algo, target)
        if transform == "return_range":
            data = scale_rewards_by_return_range(data)
        elif transform in ("antmaze", "antmaze_iql"):
            data = antmaze_rewards(data, "iql" if transform == "antmaze_iql" else "odice")

    env = make_env(target)
    try:
        space = env.action_space
        if len(space.shape) != 1:
            raise DataError(f"{target}: only flat continuous action spaces are supported, got {space}")
        scaler = ActionScaler(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32))
        if env.observation_space.shape != (data.obs_dim,) or space.shape != (data.act_dim,):
            raise DataError(f"dataset '{source}' has observations of size {data.obs_dim} and actions of size "
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
    return PreparedData(data, target, normalizer, scaler, np.asarray(behaviour, dtype=np.float64))


def _cached_discriminator_data(cfg: ODICEConfig, expert: OfflineDataset, mixed: OfflineDataset,
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


# ----------------------------------------------------------------------------------------------------------------
# acting and evaluation


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


# ----------------------------------------------------------------------------------------------------------------
# a whole run


def train(algo_name: str, cfg: OfflineConfig, run_dir: str | Path | None = None, resume: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``algo_name`` (odice, bc or iql) with ``cfg``; returns the run summary (also in summary.json)."""
    _, algo_cls = ALGORITHMS[algo_name]
    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    device = resolve_device(cfg.device)
    run_path = Path(run_dir) if run_dir is not None else default_run_dir(
        algo_name, cfg.task or cfg.env or Path(cfg.dataset or "data").stem)
    # every input is checked before the run directory exists, so a bad start leaves no files behind
    data = prepare_data(cfg, algo_name, run_path, progress=cfg.progress, device=device)
    run = Run.open(algo_name, cfg, run_dir=run_path, resume=resume)
    try:
        algo = algo_cls(cfg, data.dataset.obs_dim, data.dataset.act_dim, device=device)
        sampler = MultiSeedSampler(data.dataset, cfg.batch_size, cfg.seed_list, device)
        metric = "eval/normalized_score" if data.has_scores else "eval/return_mean"
        log(f"{TITLES[algo_name]} on {data.target if isinstance(data.target, str) else data.target.name}: "
            f"{len(data.dataset)} transitions, {data.dataset.num_episodes} episodes, seeds {cfg.seed_list}, "
            f"{cfg.max_steps} steps on {device} -> {run.dir}")
        summary = train_loop(run, algo, sampler, evaluate=make_evaluator(cfg, data, device), best_key=metric,
                             console_keys=("train/v_loss", "train/policy_loss", metric),
                             extra_state=lambda: policy_state(data))
        summary["behaviour_score"] = data.behaviour_score()
        summary["behaviour_return_mean"] = float(np.mean(data.behaviour_returns)) if len(data.behaviour_returns) \
            else None
        run.write_summary(summary)
    finally:
        run.close()
    from rlcore.report import write_report

    write_report(run.dir, metric)
    log(describe_summary(algo_name, summary, metric))
    log(f"learning curve: {run.dir / 'learning_curves.png'}")
    return summary


def describe_summary(algo_name: str, summary: dict[str, Any], metric: str) -> str:
    last, best = summary["last"], summary["best"]
    name = "normalised score" if metric.endswith("normalized_score") else "return"
    text = (f"{TITLES[algo_name]}: {name} last {last['metrics'][metric]:.1f} (step {last['step']}), "
            f"best {best['metrics'][metric]:.1f} (step {best['step']})")
    behaviour = summary.get("behaviour_score") if name == "normalised score" else summary.get("behaviour_return_mean")
    if behaviour is not None:
        text += f"; behaviour data {behaviour:.1f}"
    return text


class MultiSeedSampler:
    """Uniform minibatches for K seeds: seed k draws with its own generator exactly the batches a one-seed
    :class:`rlcore.envs.offline.DatasetSampler` with seed k draws; arrays are (K, B, ...) (or (B, ...) for one seed).
    The dataset lives on ``device`` once."""

    def __init__(self, dataset: OfflineDataset, batch_size: int, seeds: list[int], device: torch.device):
        first = DatasetSampler(dataset, batch_size, seed=seeds[0], device=device)
        self.data, self.size, self.batch_size, self.device = first.data, first.size, batch_size, first.device
        self.generators = [first.generator] + [torch.Generator(device=self.device).manual_seed(s)
                                               for s in seeds[1:]]

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
