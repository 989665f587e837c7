"""Wrappers that give maintained simulators the observation layout (and task rules) of D4RL's datasets.

- ``ant_zero_contacts``: Ant-v5 without contact forces (27-d) padded with 84 zeros -> D4RL ant's 111-d layout (the
  D4RL files were made on MuJoCo 2.0, where those entries were always zero).
- ``antmaze``: gymnasium-robotics AntMaze rebuilt as D4RL's evaluation task (see :class:`D4RLAntMaze`).
- ``kitchen``: FrankaKitchen-v1's dict observation -> D4RL kitchen's 60-d vector (see :class:`D4RLKitchen`).
"""

from __future__ import annotations

import hashlib
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

# D4RL's AntMaze evaluation mazes (the *_TEST maps of d4rl/locomotion/maze_env.py): 1 wall, 0 free, "r" start,
# "g" goal. Row i lies at y = 4 i in D4RL's frame (y grows with the row), column j at x = 4 j, start at the origin.
D4RL_ANTMAZE_MAPS: dict[str, list[list[int | str]]] = {
    "umaze": [[1, 1, 1, 1, 1],
              [1, "r", 0, 0, 1],
              [1, 1, 1, 0, 1],
              [1, "g", 0, 0, 1],
              [1, 1, 1, 1, 1]],
    "medium": [[1, 1, 1, 1, 1, 1, 1, 1],
               [1, "r", 0, 1, 1, 0, 0, 1],
               [1, 0, 0, 1, 0, 0, 0, 1],
               [1, 1, 0, 0, 0, 1, 1, 1],
               [1, 0, 0, 1, 0, 0, 0, 1],
               [1, 0, 1, 0, 0, 1, 0, 1],
               [1, 0, 0, 0, 1, 0, "g", 1],
               [1, 1, 1, 1, 1, 1, 1, 1]],
    "large": [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
              [1, "r", 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
              [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
              [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
              [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
              [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
              [1, 0, 0, 1, 0, 0, 0, 1, 0, "g", 0, 1],
              [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
}
MAZE_SCALE = 4.0
GOAL_RADIUS = 0.5  # D4RL's success distance (gymnasium-robotics uses 0.45)


class ZeroContactForces(gym.ObservationWrapper):
    """Append ``n`` zeros to a Box observation (Ant-v5 without contact forces -> D4RL ant's 111-d layout)."""

    def __init__(self, env: gym.Env, n: int = 84):
        super().__init__(env)
        low, high = env.observation_space.low, env.observation_space.high
        self.n = n
        self.observation_space = gym.spaces.Box(np.concatenate([low, np.zeros(n)]),
                                                np.concatenate([high, np.zeros(n)]), dtype=np.float64)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([observation, np.zeros(self.n)])


def d4rl_ant_xml() -> Path:
    """gymnasium's ant.xml changed to D4RL's AntMaze ant: timestep 0.02, torque 30 per unit action (D4RL: ctrlrange
    +-30 at gear 1 behind a [-1, 1] action rescaling), geom solimp 0.8 0.8 0.01. Written once to the temp dir."""
    source = Path(gym.envs.mujoco.__file__).parent / "assets" / "ant.xml"
    tree = ET.parse(source)
    tree.find("option").set("timestep", "0.02")
    tree.find("default/geom").set("solimp", ".8 .8 .01")
    tree.find("default/geom").set("solref", ".02 1")
    for motor in tree.findall("actuator/motor"):
        motor.set("gear", "30")
    text = ET.tostring(tree.getroot(), encoding="unicode")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"rlcore-d4rl-ant-{digest}.xml"
    if not path.exists():
        tmp = path.with_suffix(f".{digest}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


class D4RLAntMaze(gym.Wrapper):
    """D4RL's AntMaze evaluation rules on gymnasium-robotics' AntMaze.

    The D4RL test maze is passed upside down (gymnasium-robotics puts row 0 at the top, D4RL at the bottom), so the
    walls sit where D4RL's do up to a translation; observations are D4RL's 29-d ``[x, y, qpos[2:15], qvel[:14]]``
    with (x, y) measured from the start cell. Each reset starts the ant at the start cell with D4RL's noise
    (qpos + U(-0.1, 0.1), qvel + 0.1 N(0, 1)) and draws the goal as D4RL v2 does: goal cell + U(0, 1) + U(0, 0.5)
    per axis (clipped at 0). Reward is 1 within 0.5 of the goal, which also ends the episode
    (``info["success"]``).
    """

    def __init__(self, env_id: str, maze: str, **kwargs: Any):
        layout = D4RL_ANTMAZE_MAPS[maze]
        walls = [[1 if cell == 1 else 0 for cell in row] for row in reversed(layout)]
        env = gym.make(env_id, maze_map=walls, continuing_task=False, include_cfrc_ext_in_observation=False,
                       xml_file=str(d4rl_ant_xml()), **kwargs)
        super().__init__(env)
        start, goal = (_find(layout, c) for c in ("r", "g"))
        self.maze = self.env.unwrapped.maze
        flipped = lambda rc: np.array([len(layout) - 1 - rc[0], rc[1]])  # noqa: E731
        self.origin = self.maze.cell_rowcol_to_xy(flipped(start))  # D4RL's (0, 0) in gymnasium-robotics' frame
        self.goal_cell_xy = (np.array([goal[1], goal[0]]) - np.array([start[1], start[0]])) * MAZE_SCALE
        self.goal = np.zeros(2)  # in D4RL's frame
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(29,), dtype=np.float64)

    def _observation(self) -> np.ndarray:
        data = self.env.unwrapped.ant_env.data
        xy = data.qpos[:2] - self.origin
        return np.concatenate([xy, data.qpos[2:15], data.qvel[:14]])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        _, info = self.env.reset(seed=seed, options=options)
        maze_env = self.env.unwrapped
        rng = maze_env.np_random
        ant = maze_env.ant_env
        qpos = ant.init_qpos.copy()
        qpos[:2] = self.origin
        qpos[:15] += rng.uniform(-0.1, 0.1, size=15)
        qvel = ant.init_qvel.copy()
        qvel[:14] += 0.1 * rng.standard_normal(14)
        ant.set_state(qpos, qvel)
        noise = rng.uniform(0, 0.25 * MAZE_SCALE, size=2) + rng.uniform(0, 0.5, size=2) * 0.25 * MAZE_SCALE
        self.goal = np.maximum(self.goal_cell_xy + noise, 0.0)
        maze_env.goal = self.goal + self.origin
        maze_env.update_target_site_pos()
        info["success"] = False
        return self._observation(), info

    def step(self, action: np.ndarray):
        _, _, _, truncated, info = self.env.step(action)
        obs = self._observation()
        success = bool(np.linalg.norm(obs[:2] - self.goal) <= GOAL_RADIUS)
        info["success"] = success
        return obs, float(success), success, truncated, info


def _find(layout: list[list[int | str]], mark: str) -> tuple[int, int]:
    return next((i, j) for i, row in enumerate(layout) for j, cell in enumerate(row) if cell == mark)


class D4RLKitchen(gym.ObservationWrapper):
    """FrankaKitchen-v1 -> D4RL kitchen's 60-d observation: robot joint positions (9), object joint positions
    (21), then the goal vector (30: the target positions of this task's objects at their qpos indices, else 0)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

        self.goal = np.zeros(30)
        for task in env.unwrapped.goal:
            self.goal[OBS_ELEMENT_INDICES[task]] = OBS_ELEMENT_GOALS[task]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(60,), dtype=np.float64)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        flat = observation["observation"]  # robot qpos 9, robot qvel 9, object qpos 21, object qvel 20
        return np.concatenate([flat[:9], flat[18:39], self.goal])


AdapterFactory = Callable[[str, str, dict[str, Any]], gym.Env]

ADAPTERS: dict[str, AdapterFactory] = {
    "ant_zero_contacts": lambda env_id, task, kw: ZeroContactForces(gym.make(env_id, **kw)),
    "antmaze": lambda env_id, task, kw: D4RLAntMaze(env_id, task.split("-")[1], **kw),
    "kitchen": lambda env_id, task, kw: D4RLKitchen(gym.make(env_id, **kw)),
}
