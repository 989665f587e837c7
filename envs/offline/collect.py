"""Making D4RL-layout datasets: roll out a behaviour policy (``collect``), write it (``save_dataset``), and combine
files (``mix_files``, e.g. medium-expert = medium + expert)."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlcore import __version__
from rlcore.envs.offline.dataset import OfflineDataset, concat_arrays
from rlcore.envs.offline.hdf5 import read_hdf5, write_hdf5
from rlcore.envs.offline.policies import GaussianNoise, Policy, resolve_policy
from rlcore.envs.offline.registry import Task
from rlcore.envs.offline.rollout import Episode, run_episodes
from rlcore.envs.offline.simulator import make_env
from rlcore.errors import UserError


def collect(env: str | Task, policy: str | Policy, *, steps: int | None = None, episodes: int | None = None,
            seed: int = 0, noise: float = 0.0, stochastic: bool = False, num_envs: int = 8,
            progress: bool = False, **env_kwargs: Any) -> OfflineDataset:
    """Roll out ``policy`` in ``env`` (gymnasium id or task name) for ``steps`` transitions or ``episodes`` episodes.

    ``policy`` is a callable or a spec for :func:`rlcore.envs.offline.policies.resolve_policy` (``random``,
    ``scripted``, an SB3 zip, a run directory). ``noise`` adds N(0, noise^2) to every action entry (clipped to the
    action bounds); ``stochastic`` samples SB3 actors from their own Gaussian. Every step is kept: ``timeouts`` marks
    episodes cut by the time limit or by the step budget (their next observations are real), so the result is
    what :func:`save_dataset` writes. Deterministic for a given ``(seed, num_envs)``.

    Example::

        >>> ds = collect("Pendulum-v1", "scripted", episodes=2, noise=0.1)
        >>> len(ds), ds.num_episodes
        (400, 2)
    """
    if (steps is None) == (episodes is None):
        raise UserError("give exactly one of steps or episodes")
    if (steps if steps is not None else episodes) < 1:
        raise UserError("steps / episodes must be at least 1")
    if noise < 0:
        raise UserError(f"noise must be >= 0, got {noise}")
    probe = make_env(env, **env_kwargs)
    env_id = probe.spec.id if probe.spec is not None else str(env)
    if isinstance(policy, str):
        behaviour, description = resolve_policy(policy, probe, seed=seed, stochastic=stochastic)
    else:
        behaviour, description = policy, getattr(policy, "__name__", type(policy).__name__)
    if noise > 0:
        behaviour = GaussianNoise(behaviour, noise, probe.action_space, seed=seed + 1)
    probe.close()
    done = run_episodes(lambda: make_env(env, **env_kwargs), behaviour, steps=steps, episodes=episodes, seed=seed,
                        num_envs=num_envs, record=True, progress=progress, desc=f"collect {env_id}")
    arrays = concat_arrays([_episode_arrays(e) for e in done])
    if steps is not None:
        arrays = _trim(arrays, steps)
    name = env.name if isinstance(env, Task) else str(env)
    metadata = {"source": f"collect:{name}", "env_id": env_id, "task": name, "policy": description,
                "seed": seed, "noise": noise, "stochastic": stochastic, "num_envs": num_envs,
                **_created("collect")}
    return OfflineDataset.from_arrays(**arrays, metadata=metadata)


def _created(what: str) -> dict[str, str]:
    """When and by what a file was made (``created_by`` starts with "rlcore": data.json calls it generated)."""
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "created_by": f"rlcore.envs.offline.collect.{what} (rlcore {__version__}, python "
                          f"{platform.python_version()})"}


def _episode_arrays(episode: Episode) -> dict[str, np.ndarray]:
    steps = episode.steps
    n = episode.length
    terminals = np.zeros(n, dtype=bool)
    timeouts = np.zeros(n, dtype=bool)
    terminals[-1] = episode.terminated
    timeouts[-1] = not episode.terminated
    return {"observations": np.stack(steps["observations"]), "actions": np.stack(steps["actions"]),
            "rewards": np.asarray(steps["rewards"], dtype=np.float64), "next_observations":
            np.stack(steps["next_observations"]), "terminals": terminals, "timeouts": timeouts}


def _trim(arrays: dict[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
    out = {k: v[:steps] for k, v in arrays.items()}
    if not out["terminals"][-1]:
        out["timeouts"] = out["timeouts"].copy()
        out["timeouts"][-1] = True
    return out


def save_dataset(dataset: OfflineDataset, path: str | Path) -> Path:
    """Write ``dataset`` as a D4RL-layout HDF5 file (atomically), its metadata as file attributes."""
    attrs = {k: v for k, v in dataset.metadata.items() if k != "source"}
    return write_hdf5(path, dataset.arrays(), attrs)


def mix_files(paths: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Concatenate D4RL-layout files (whole episodes, in the given order) into ``out``; returns a summary."""
    if len(paths) < 2:
        raise UserError("mix needs at least two input files")
    if Path(out).resolve() in {Path(p).resolve() for p in paths}:
        raise UserError(f"output '{out}' is also an input; write the mixture to a new file")
    parts = [read_hdf5(p) for p in paths]
    env_ids = sorted({str(attrs["env_id"]) for _, attrs in parts if attrs.get("env_id")})
    if len(env_ids) > 1:
        raise UserError(f"the inputs come from different environments ({', '.join(env_ids)}); mix datasets of one "
                        "environment")
    arrays = concat_arrays([a for a, _ in parts], "files")
    dropped = sorted({k for a, _ in parts for k in a} - set(arrays))
    attrs = {"mixture_of": [str(p) for p in paths], "mixture_steps": [len(a["rewards"]) for a, _ in parts],
             "mixture_sources": [attrs.get("policy", "?") for _, attrs in parts],
             "env_id": env_ids[0] if len(env_ids) == 1 else None, **_created("mix_files")}
    write_hdf5(out, arrays, attrs)
    return {"out": str(out), "steps": len(arrays["rewards"]), "parts": attrs["mixture_steps"], "dropped_keys": dropped}
