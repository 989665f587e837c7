"""``make_env``: a gymnasium environment for a task name or a plain gymnasium id."""

from __future__ import annotations

import contextlib
import difflib
import io
import warnings
from typing import Any

import gymnasium as gym

from rlcore.envs.offline.adapters import ADAPTERS
from rlcore.envs.offline.registry import Task, get_task, is_task
from rlcore.errors import UserError

_warned: set[str] = set()


class SimulatorMismatchWarning(UserWarning):
    """The evaluation simulator differs from the one that produced the task's dataset."""


def warn_simulator_difference(task: Task) -> None:
    """Warn (once per task and process) when the task's simulator differs from the dataset's."""
    if task.note and task.name not in _warned:
        _warned.add(task.name)
        warnings.warn(f"{task.name} is evaluated in {task.env_id}: {task.note}", SimulatorMismatchWarning,
                      stacklevel=3)


def _ensure_registered(env_id: str) -> None:
    if env_id in gym.registry:
        return
    robotics = ""
    try:
        # its import prints a note about the Adroit Dense reward change (our task notes say it once, per task)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import gymnasium_robotics

            gym.register_envs(gymnasium_robotics)
    except ImportError:
        robotics = " (gymnasium-robotics, for AntMaze/Adroit/Kitchen, is not installed: pip install 'rlcore[d4rl]')"
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "gymnasium ids look like Hopper-v5"
        raise UserError(f"unknown environment '{env_id}': neither a task name nor a gymnasium id{robotics}; {hint}")


def make_env(task_or_env_id: str | Task, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """A gymnasium env for a task (D4RL name, e.g. ``hopper-medium-v2``, with its D4RL observation adapter and
    episode limit) or a gymnasium id (``Pendulum-v1``). ``seed`` seeds the first reset and the action space;
    ``kwargs`` go to ``gymnasium.make`` (e.g. ``max_episode_steps``).

    Example::

        >>> env = make_env("hopper-medium-v2", seed=0)
        >>> env.observation_space.shape
        (11,)
    """
    task = task_or_env_id if isinstance(task_or_env_id, Task) else (
        get_task(task_or_env_id) if is_task(task_or_env_id) else None)
    if task is not None and task.env_id is None:
        raise UserError(f"task '{task.name}' has no simulator here ({task.note}); normalized_score works for it, "
                        "evaluation does not")
    env_id = task.env_id if task is not None else str(task_or_env_id)
    _ensure_registered(env_id)
    options = {**(task.env_kwargs if task is not None else {}), **kwargs}
    if task is not None and task.max_episode_steps is not None:
        options.setdefault("max_episode_steps", task.max_episode_steps)
    try:
        if task is not None and task.adapter is not None:
            env = ADAPTERS[task.adapter](env_id, task.name, options)
        else:
            env = gym.make(env_id, **options)
    except UserError:
        raise
    except Exception as e:
        raise UserError(_build_failure(env_id, e)) from e
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def _build_failure(env_id: str, error: Exception) -> str:
    message = f"could not build '{env_id}' ({type(error).__name__}: {error})"
    if env_id.startswith("FrankaKitchen") and isinstance(error, AssertionError):
        import mujoco

        return (f"{message}: gymnasium-robotics' FrankaKitchen joint-type check fails with mujoco {mujoco.__version__}"
                " (its enums no longer compare inside a tuple); install mujoco 3.x for Franka Kitchen evaluation")
    return f"{message}; check the environment arguments"
