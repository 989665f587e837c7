"""Task registry: D4RL dataset names -> maintained simulator, D4RL reference scores, and normalised scores.

Every name of D4RL's ``infos.py`` reference table (147 names, shipped as ``d4rl_ref_scores.json``) is a task, so
:func:`normalized_score` works for all of them. Tasks whose simulator exists here map to a gymnasium id (MuJoCo
``-v5`` for locomotion, gymnasium-robotics for AntMaze, Adroit and Franka Kitchen) plus, where needed, an adapter
that reproduces D4RL's observation layout. ``note`` says how the maintained simulator differs from the one that
produced the D4RL files; :func:`rlcore.envs.offline.evaluate` prints it once per task.

Example::

    >>> normalized_score("hopper-medium-v2", 1600.0)  # 100 * (1600 + 20.27) / (3234.3 + 20.27)
    49.78...
    >>> get_task("antmaze-umaze-v2").env_id
    'AntMaze_UMaze-v5'
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from rlcore.errors import UserError

# ---------------------------------------------------------------------------------------------------------------
# simulator facts per D4RL family (sizes are those of the D4RL files; checked against the adapters in the tests)

_LOCOMOTION = {  # name: (gymnasium id, obs, act, note)
    "hopper": ("Hopper-v5", 11, 3,
               "D4RL data came from mujoco-py Hopper-v3 (MuJoCo 2.x); Hopper-v5 has the same observation layout, "
               "but gives the healthy reward only while healthy and runs on current MuJoCo"),
    "halfcheetah": ("HalfCheetah-v5", 17, 6,
                    "D4RL data came from mujoco-py HalfCheetah-v3 (MuJoCo 2.x); HalfCheetah-v5 has the same "
                    "observation layout and reward, on current MuJoCo"),
    "walker2d": ("Walker2d-v5", 17, 6,
                 "D4RL data came from mujoco-py Walker2d-v3 (MuJoCo 2.x); Walker2d-v5 has the same observation "
                 "layout but gives both feet friction 1.9 (v3: right foot 0.9) and the healthy reward only while "
                 "healthy, so dynamics and returns differ slightly"),
    "ant": ("Ant-v5", 111, 8,
            "D4RL data came from mujoco-py Ant-v3 on MuJoCo 2.0, whose 84 contact-force entries (obs[27:111]) "
            "were always zero (D4RL issue #143); the adapter pads Ant-v5 (no contact forces) with zeros and sets "
            "contact_cost_weight=0 to match, but the physics is current MuJoCo"),
}
_ANTMAZE = {  # maze: gymnasium id, max steps
    "umaze": "AntMaze_UMaze-v5", "medium": "AntMaze_Medium-v5", "large": "AntMaze_Large-v5",
}
_ANTMAZE_NOTE = ("gymnasium-robotics AntMaze with an adapter for D4RL's layout: the D4RL test maze (mirrored into "
                 "gymnasium-robotics' frame), D4RL's 29-d observation (torso x, y relative to the start cell, then "
                 "the ant's qpos[2:] and qvel), a fixed start, D4RL's goal noise, success radius 0.5 and episode "
                 "end at success; the ant model is gymnasium's with D4RL's timestep 0.02 and torque 30 per unit "
                 "action, but contact parameters and MuJoCo version differ from D4RL's ant")
_ADROIT = {  # task: gymnasium id, obs, act
    "pen": ("AdroitHandPen-v1", 45, 24), "hammer": ("AdroitHandHammer-v1", 46, 26),
    "door": ("AdroitHandDoor-v1", 39, 28), "relocate": ("AdroitHandRelocate-v1", 39, 30),
}
_ADROIT_NOTE = ("gymnasium-robotics port of the mj_envs Adroit hand that produced D4RL's files (same observation "
                "layout), on current MuJoCo")
_ADROIT_DENSE_NOTE = ("; gymnasium-robotics changed this task's dense reward in 1.2.1 without a version bump, so "
                      "returns (and normalised scores) are not exactly D4RL's")
_KITCHEN_TASKS = {
    "complete": ("microwave", "kettle", "light switch", "slide cabinet"),
    "partial": ("microwave", "kettle", "light switch", "slide cabinet"),
    "mixed": ("microwave", "kettle", "bottom burner", "light switch"),
}
_KITCHEN_NOTE = ("gymnasium-robotics FrankaKitchen-v1 with an adapter for D4RL's 60-d observation (robot and object "
                 "joint positions, then the task goal); the robot model, controller and observation noise were "
                 "re-implemented in gymnasium-robotics, so D4RL kitchen policies transfer imperfectly")
_UNMAPPED = {
    "maze2d": "no adapter here: gymnasium-robotics PointMaze differs from D4RL maze2d in coordinate frame, goal "
              "sampling and point-mass model",
    "bullet": "needs pybullet and D4RL's bullet wrappers, which are not installed",
    "carla": "needs the CARLA simulator",
    "flow": "needs the flow traffic simulator (SUMO)",
    "minigrid": "needs gym-minigrid with D4RL's wrappers (discrete actions)",
}


@dataclasses.dataclass(frozen=True)
class Task:
    """A named offline RL task: its evaluation simulator and the reference returns of its normalised score."""

    name: str
    """Dataset / task name, e.g. ``hopper-medium-v2``."""
    ref_min_score: float
    """Return that scores 0 (D4RL: a random policy)."""
    ref_max_score: float
    """Return that scores 100 (D4RL: an expert policy)."""
    env_id: str | None = None
    """gymnasium id of the simulator used for evaluation; None when no simulator is available here."""
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments for ``gymnasium.make``."""
    adapter: str | None = None
    """Name of the wrapper that reproduces the dataset's observation layout (see ``rlcore.envs.offline.adapters``)."""
    obs_dim: int | None = None
    """Observation size of the dataset (None: not checked)."""
    act_dim: int | None = None
    """Action size of the dataset (None: not checked)."""
    max_episode_steps: int | None = None
    """Episode length limit of the task (splits old files without timeouts, as D4RL does)."""
    note: str = ""
    """How the simulator differs from the one that produced the data ('' when it does not)."""
    family: str = "custom"
    """locomotion, antmaze, adroit, kitchen, pendulum, ... or custom."""

    def normalized_score(self, returns: Any) -> Any:
        """100 * (return - ref_min) / (ref_max - ref_min) for a scalar or an array of returns."""
        score = 100.0 * (np.asarray(returns, dtype=np.float64) - self.ref_min_score) / (
            self.ref_max_score - self.ref_min_score)
        return float(score) if score.ndim == 0 else score


_CUSTOM: dict[str, Task] = {}


@lru_cache(maxsize=1)
def d4rl_reference_scores() -> dict[str, tuple[float, float]]:
    """D4RL ``infos.py`` reference returns ``{name: (ref_min, ref_max)}`` (shipped package data)."""
    text = resources.files("rlcore.envs.offline").joinpath("d4rl_ref_scores.json").read_text(encoding="utf-8")
    return {name: (float(lo), float(hi)) for name, (lo, hi) in json.loads(text)["ref_scores"].items()}


def _d4rl_task(name: str, ref: tuple[float, float]) -> Task:
    base = dict(name=name, ref_min_score=ref[0], ref_max_score=ref[1])
    head = name.split("-")[0]
    if head in _LOCOMOTION:
        env_id, obs, act, note = _LOCOMOTION[head]
        kwargs = {"include_cfrc_ext_in_observation": False, "contact_cost_weight": 0.0} if head == "ant" else {}
        return Task(**base, env_id=env_id, env_kwargs=kwargs, adapter="ant_zero_contacts" if head == "ant" else None,
                    obs_dim=obs, act_dim=act, max_episode_steps=1000, note=note, family="locomotion")
    if head == "antmaze":
        maze = name.split("-")[1]
        return Task(**base, env_id=_ANTMAZE[maze], adapter="antmaze", obs_dim=29, act_dim=8,
                    max_episode_steps=700 if maze == "umaze" else 1000, note=_ANTMAZE_NOTE, family="antmaze")
    if head in _ADROIT:
        env_id, obs, act = _ADROIT[head]
        note = _ADROIT_NOTE + ("" if head == "pen" else _ADROIT_DENSE_NOTE)
        return Task(**base, env_id=env_id, obs_dim=obs, act_dim=act, max_episode_steps=100 if head == "pen" else 200,
                    note=note, family="adroit")
    if head == "kitchen":
        subtasks = _KITCHEN_TASKS[name.split("-")[1]]
        return Task(**base, env_id="FrankaKitchen-v1", env_kwargs={"tasks_to_complete": list(subtasks)},
                    adapter="kitchen", obs_dim=60, act_dim=9, max_episode_steps=280, note=_KITCHEN_NOTE,
                    family="kitchen")
    return Task(**base, note=_UNMAPPED[head], family=head)


D4RL_BASE_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/"
"""Root of D4RL's download table; the environment variable ``RLCORE_D4RL_URL`` replaces it (mirrors, tests)."""


@lru_cache(maxsize=1)
def d4rl_relative_paths() -> dict[str, str]:
    """D4RL ``infos.py`` download paths below :data:`D4RL_BASE_URL` for every D4RL name (shipped package data).

    >>> d4rl_relative_paths()["door-human-v1"]
    'hand_dapg_v1/door-human-v1.hdf5'
    """
    text = resources.files("rlcore.envs.offline").joinpath("d4rl_urls.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["paths"])


MINARI_PORTS: dict[str, str | None] = {
    **{f"mujoco/{env}/{level}-v0": None if level == "simple" else f"{env}-{level}-v2"
       for env in _LOCOMOTION for level in ("simple", "medium", "expert")},
    **{f"D4RL/{hand}/{kind}-v2": f"{hand}-{kind}-v1" for hand in _ADROIT for kind in ("human", "cloned", "expert")},
    **{f"D4RL/kitchen/{kind}-v2": f"kitchen-{kind}-v0" for kind in _KITCHEN_TASKS},
    **{f"D4RL/antmaze/{maze}-v1": f"antmaze-{maze}-v2"
       for maze in ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse")},
}
"""Minari ids of the D4RL ports -> the D4RL name each stands in for (None: no D4RL counterpart). Minari re-collected
the MuJoCo data on the gymnasium ``-v5`` environments and re-created Adroit, Kitchen and AntMaze in
gymnasium-robotics, so these are not D4RL's files: Kitchen and AntMaze have dict observations (``obs_keys=``)."""


@lru_cache(maxsize=1)
def _d4rl_tasks() -> dict[str, Task]:
    return {name: _d4rl_task(name, ref) for name, ref in d4rl_reference_scores().items()}


def register_task(task: Task, overwrite: bool = False) -> Task:
    """Add a non-D4RL task (reference returns for ``normalized_score`` and a simulator for evaluation)."""
    if not overwrite and (task.name in _CUSTOM or task.name in _d4rl_tasks()):
        raise UserError(f"task '{task.name}' is already registered; pass overwrite=True to replace it")
    if not task.ref_max_score > task.ref_min_score:
        raise UserError(f"task '{task.name}': ref_max_score ({task.ref_max_score}) must exceed ref_min_score "
                        f"({task.ref_min_score})")
    _CUSTOM[task.name] = task
    return task


def all_tasks() -> dict[str, Task]:
    """Every registered task by name (D4RL table plus custom ones)."""
    return {**_d4rl_tasks(), **_CUSTOM}


def is_task(name: str) -> bool:
    return isinstance(name, str) and name in all_tasks()


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name is an error that lists the closest known names."""
    tasks = all_tasks()
    if name in tasks:
        return tasks[name]
    close = difflib.get_close_matches(name, list(tasks), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see rlcore.envs.offline.all_tasks() for the list"
    raise UserError(f"unknown task '{name}'; {hint}")


def normalized_score(task_name: str, returns: Any) -> Any:
    """D4RL normalised score, ``100 * (R - ref_min) / (ref_max - ref_min)``, for a return or an array of them."""
    return get_task(task_name).normalized_score(returns)


def d4rl_file_name(task_name: str) -> str | None:
    """File name under which D4RL caches a dataset, the last part of its download path (``hopper-medium-v2`` ->
    ``hopper_medium-v2.hdf5``, ``hopper-medium-replay-v0`` -> ``hopper_mixed.hdf5``); None for other names."""
    path = d4rl_relative_paths().get(task_name)
    return path.rsplit("/", 1)[-1] if path else None


# ---------------------------------------------------------------------------------------------------------------
# non-D4RL tasks shipped with the library

PENDULUM_RANDOM_RETURN = -1218.9
"""Mean return of the uniform random policy in Pendulum-v1: 1000 episodes, reset seeds 0-999, actions
U(-2, 2) from numpy ``default_rng(i)`` in episode i (standard error 9.1). Measured here with gymnasium 1.4.0."""
PENDULUM_EXPERT_RETURN = -189.4
"""Mean return of the 56 expert episodes of HumanCompatibleAI/imitation's Pendulum test rollouts."""

# pendulum-scripted-v0: the embedded default dataset; pendulum-expert-v0: imitation's expert rollouts
for _name in ("pendulum-scripted-v0", "pendulum-expert-v0"):
    register_task(Task(name=_name, ref_min_score=PENDULUM_RANDOM_RETURN, ref_max_score=PENDULUM_EXPERT_RETURN,
                       env_id="Pendulum-v1", obs_dim=3, act_dim=1, max_episode_steps=200, family="pendulum",
                       note=""))
