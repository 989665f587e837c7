"""``evaluate``: returns, normalised scores and success rate of a policy, all episodes in lockstep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlcore.envs.offline.registry import Task, get_task, is_task
from rlcore.envs.offline.rollout import run_episodes
from rlcore.envs.offline.simulator import make_env, warn_simulator_difference


def _stderr(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def evaluate(policy: Callable[[np.ndarray], Any], task_or_env: str | Task | Callable[[], gym.Env], episodes: int = 10,
             seed: int = 0, num_envs: int | None = None, progress: bool = False, **env_kwargs: Any) -> dict[str, Any]:
    """Run ``episodes`` episodes of a deterministic ``policy`` in lockstep (one batched policy call per step).

    ``policy`` maps observations ``(N, obs_dim)`` float32 to actions ``(N, act_dim)``. ``task_or_env`` is a task name
    (normalised scores are then reported), a gymnasium id, or a function returning a fresh env. Episode ``i`` resets
    with seed ``seed + i``. ``num_envs`` (default: all episodes at once, at most 64) changes speed, and for
neural-network policies the last bits of batched arithmetic (see ``rlcore.envs.offline.rollout``).
    ``env_kwargs`` go to :func:`make_env` (e.g. ``max_episode_steps``).

    Returns ``returns`` and ``lengths`` (lists), ``return_mean``, ``return_stderr`` (standard error of the mean),
    ``normalized_score_mean`` / ``normalized_score_stderr`` (x100, None without reference scores),
    ``success_rate`` (fraction of episodes in which ``info["success"]`` was ever true; None if the env does not
    report it), ``episodes``, ``seed``, ``task``, ``env_steps`` and ``wall_s``.

    Example::

        >>> from rlcore.envs.offline.policies import PendulumSwingUp
        >>> result = evaluate(PendulumSwingUp(), "pendulum-scripted-v0", episodes=4)
        >>> round(result["normalized_score_mean"])
        107
    """
    if episodes < 1:
        raise ValueError("episodes must be >= 1")
    task = task_or_env if isinstance(task_or_env, Task) else (
        get_task(task_or_env) if isinstance(task_or_env, str) and is_task(task_or_env) else None)
    if callable(task_or_env) and not isinstance(task_or_env, (str, Task)):
        factory = task_or_env
        name = getattr(task_or_env, "__name__", "env")
    else:
        if task is not None:
            warn_simulator_difference(task)
        factory = lambda: make_env(task if task is not None else task_or_env, **env_kwargs)  # noqa: E731
        name = task.name if task is not None else str(task_or_env)
    start = time.perf_counter()
    done = run_episodes(factory, policy, episodes=episodes, seed=seed, num_envs=num_envs or min(episodes, 64),
                        progress=progress, desc=f"eval {name}")
    returns = np.array([e.ret for e in done])
    result: dict[str, Any] = {
        "task": name,
        "episodes": episodes,
        "seed": seed,
        "returns": returns.tolist(),
        "lengths": [e.length for e in done],
        "return_mean": float(returns.mean()),
        "return_stderr": _stderr(returns),
        "normalized_score_mean": None,
        "normalized_score_stderr": None,
        "success_rate": None,
        "env_steps": int(sum(e.length for e in done)),
    }
    if task is not None:
        scores = task.normalized_score(returns)
        result["normalized_score_mean"] = float(scores.mean())
        result["normalized_score_stderr"] = _stderr(scores)
    if any(e.success is not None for e in done):
        result["success_rate"] = float(np.mean([bool(e.success) for e in done]))
    result["wall_s"] = time.perf_counter() - start
    return result


def sequential_returns(policy: Callable[[np.ndarray], Any], env_id: str, episodes: int, seed: int = 0) -> list[float]:
    """Returns of the plain loop (one episode after another, one single-row policy call per step): the reference
    that tests and ``benchmarks/evaluation.py`` compare :func:`evaluate` against. Episode ``i`` resets with seed
    ``seed + i``."""
    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(np.asarray(policy(obs[None].astype(np.float32)))[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns
