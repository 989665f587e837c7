"""Episodes in lockstep: several environments step together and the policy is called once per step on the batch
of all running episodes. On CPU the simulators themselves run one after another (subprocess vector envs cost more
in IPC than they save on two cores); the gain is one batched policy call instead of one call per environment.

Episode ``i`` resets with seed ``seed + i``; results are reproducible for a fixed ``(seed, num_envs)``. A
deterministic policy that treats rows independently in exact arithmetic (e.g. numpy elementwise code) gives the
same episodes for any ``num_envs``; a neural network may not bit-for-bit, because a batched matrix product rounds
differently from a one-row one and chaotic simulators amplify that.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch

from rlcore.errors import UserError
from rlcore.logging import Progress


@dataclasses.dataclass
class Episode:
    """One finished episode: its return, length, success flag and, when recorded, its transitions."""

    index: int
    ret: float = 0.0
    length: int = 0
    success: bool | None = None
    terminated: bool = False
    steps: dict[str, list[np.ndarray]] | None = None


class _Slot:
    def __init__(self, env: gym.Env):
        self.env = env
        self.episode: Episode | None = None
        self.obs: np.ndarray | None = None


def run_episodes(make_env: Callable[[], gym.Env], policy: Callable[[np.ndarray], np.ndarray], *,
                 episodes: int | None = None, steps: int | None = None, seed: int = 0, num_envs: int = 8,
                 record: bool = False, progress: bool = False, desc: str = "rollout",
                 torch_threads: int | None = 1) -> list[Episode]:
    """Run ``episodes`` whole episodes, or whole episodes until at least ``steps`` transitions exist, in lockstep.

    With ``steps``, no episode starts once ``steps`` transitions exist and the running ones finish, so the first
    ``steps`` transitions in episode order are complete episodes plus part of one (the caller trims). Returns
    episodes ordered by index. ``record`` keeps the transitions (observations, actions, rewards, next_observations).
    ``torch_threads`` sets torch's intra-op threads while rolling out (small policy batches run fastest on one
    thread, and more threads than free cores can make them many times slower); None leaves it alone.
    """
    if (episodes is None) == (steps is None):
        raise ValueError("give exactly one of episodes or steps")
    budget = episodes if episodes is not None else steps
    slots = [_Slot(make_env()) for _ in range(max(1, min(num_envs, budget)))]
    done: list[Episode] = []
    started = 0
    total = 0
    bar = Progress(budget, desc=f"{desc} ({'episodes' if episodes is not None else 'steps'})", enabled=progress)

    def start(slot: _Slot) -> None:
        nonlocal started
        slot.episode = Episode(index=started, steps={k: [] for k in ("observations", "actions", "rewards",
                                                                    "next_observations")} if record else None)
        slot.obs, _ = slot.env.reset(seed=seed + started)
        started += 1

    def may_start() -> bool:
        return started < episodes if episodes is not None else total < steps

    try:
        with _torch_threads(torch_threads):
            for slot in slots:
                start(slot)
            while any(s.episode is not None for s in slots):
                active = [s for s in slots if s.episode is not None]
                batch = np.stack([s.obs for s in active]).astype(np.float32)
                actions = _check_actions(policy(batch), len(active), active[0].env)
                for slot, action in zip(active, actions):
                    total += 1
                    if _step(slot, action, record):
                        done.append(slot.episode)
                        slot.episode = None
                        if episodes is not None:
                            bar.update()
                        if may_start():
                            start(slot)
                if steps is not None:
                    bar.update(max(0, min(total, steps) - bar.bar.n))
    finally:
        bar.close()
        for slot in slots:
            slot.env.close()
    return sorted(done, key=lambda e: e.index)


def _step(slot: _Slot, action: np.ndarray, record: bool) -> bool:
    """Advance one environment; True when its episode ended."""
    episode = slot.episode
    next_obs, reward, terminated, truncated, info = slot.env.step(action)
    episode.ret += float(reward)
    episode.length += 1
    if "success" in info:
        episode.success = bool(episode.success) or bool(info["success"])
    if record:
        for key, value in (("observations", slot.obs), ("actions", action), ("rewards", reward),
                           ("next_observations", next_obs)):
            episode.steps[key].append(value)
    slot.obs = next_obs
    episode.terminated = bool(terminated)
    return bool(terminated or truncated)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(previous)


def _check_actions(actions: object, n: int, env: gym.Env) -> np.ndarray:
    a = actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)
    shape = env.action_space.shape
    if a.shape != (n, *shape):
        raise UserError(f"policy returned actions of shape {a.shape} for {n} observations; expected {(n, *shape)} "
                        "(a batch of actions, one row per observation)")
    return a.astype(env.action_space.dtype, copy=False)
