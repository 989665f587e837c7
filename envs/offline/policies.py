"""Behaviour policies for collection and evaluation.

A policy is any callable mapping a batch of observations ``(N, obs_dim)`` float32 numpy to actions
``(N, act_dim)`` (numpy, or a torch tensor on any device). Provided here: uniform random, a scripted Pendulum
swing-up, the actor of a Stable-Baselines3 SAC/TQC model zip (read from its ``policy.pth`` with
``weights_only=True``; nothing is unpickled), Gaussian action noise around any policy, and trained policies of our
own runs, loaded by the spec of the run's ``algo:`` (:data:`rlcore.algorithm.ALGORITHMS`), on raw observations.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcore.errors import UserError

Policy = Callable[[np.ndarray], Any]


class RandomPolicy:
    """Uniform actions in a Box action space, from its own seeded generator."""

    def __init__(self, action_space: gym.spaces.Box, seed: int = 0):
        self.low, self.high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        self.rng = np.random.default_rng(seed)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, size=(len(observations), *self.low.shape)).astype(np.float32)


class PendulumSwingUp:
    """Scripted Pendulum-v1 controller: energy pumping far from upright, PD balancing near it.

    With the pole's dynamics theta'' = 15 sin(theta) + 3 u, the energy E = theta'^2 / 2 + 15 cos(theta) equals 15 at
    rest upright and changes at rate 3 u theta'; the swing-up applies ``u = k_e (15 - E) sign(theta')`` and, within
    ``near`` radians of upright, ``u = -(k_p theta + k_d theta')``. Torque is clipped to [-2, 2]. Mean return over
    reset seeds 0-99: about -145 (the imitation expert's rollouts average -189).
    """

    def __init__(self, k_energy: float = 1.0, k_p: float = 12.0, k_d: float = 3.0, near: float = 0.5):
        self.k_energy, self.k_p, self.k_d, self.near = k_energy, k_p, k_d, near

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        cos, sin, velocity = observations[:, 0], observations[:, 1], observations[:, 2]
        angle = np.arctan2(sin, cos)
        energy = 0.5 * velocity**2 + 15.0 * cos
        pump = self.k_energy * (15.0 - energy) * np.where(velocity >= 0, 1.0, -1.0)
        balance = -(self.k_p * angle + self.k_d * velocity)
        torque = np.where(np.abs(angle) < self.near, balance, pump)
        return np.clip(torque, -2.0, 2.0)[:, None].astype(np.float32)


SCRIPTED: dict[str, Callable[[], Policy]] = {"Pendulum-v1": PendulumSwingUp}
"""Scripted controllers by gymnasium id."""


class GaussianNoise:
    """``policy`` plus N(0, sigma^2) noise per action entry, clipped to the action bounds."""

    def __init__(self, policy: Policy, sigma: float, action_space: gym.spaces.Box, seed: int = 0):
        self.policy, self.sigma = policy, float(sigma)
        self.low, self.high = action_space.low, action_space.high
        self.rng = np.random.default_rng(seed)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        actions = np.asarray(self.policy(observations), dtype=np.float32)
        noisy = actions + self.sigma * self.rng.standard_normal(actions.shape, dtype=np.float32)
        return np.clip(noisy, self.low, self.high).astype(np.float32)


class SB3Actor:
    """The squashed-Gaussian actor of a Stable-Baselines3 SAC or TQC model (MLP with ReLU, as SB3's default).

    Deterministic: ``tanh(mu(h))``. Stochastic (``stochastic=True``): ``tanh(mu + exp(log_std) * eps)`` with
    ``log_std`` clamped to [-20, 2] and ``eps ~ N(0, I)`` from the actor's own seeded generator, i.e. the policy's
    own exploration noise. Observations go in raw (the shared agents use no observation normalisation).
    """

    def __init__(self, state: dict[str, torch.Tensor], stochastic: bool = False, seed: int = 0,
                 source: str = "state dict"):
        hidden = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"actor\.latent_pi\.(\d+)\.weight", k)))
        needed = ["actor.mu.weight", "actor.mu.bias", "actor.log_std.weight", "actor.log_std.bias"]
        missing = [k for k in needed if k not in state]
        if not hidden or missing:
            raise UserError(f"'{source}' has no SAC/TQC actor (missing {', '.join(missing) or 'actor.latent_pi.*'}); "
                            "expected a Stable-Baselines3 SAC or TQC model zip without gSDE")
        self.layers = [(state[f"actor.latent_pi.{i}.weight"].float(), state[f"actor.latent_pi.{i}.bias"].float())
                       for i in hidden]
        self.mu = (state["actor.mu.weight"].float(), state["actor.mu.bias"].float())
        self.log_std = (state["actor.log_std.weight"].float(), state["actor.log_std.bias"].float())
        self.obs_dim = self.layers[0][0].shape[1]
        self.act_dim = self.mu[0].shape[0]
        self.stochastic = stochastic
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def load(cls, path: str | Path, stochastic: bool = False, seed: int = 0) -> SB3Actor:
        """Read ``policy.pth`` from an SB3 model zip (``torch.load(..., weights_only=True)``)."""
        path = Path(path)
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                if "policy.pth" not in names:
                    raise UserError(f"'{path}' has no policy.pth; expected a Stable-Baselines3 model zip")
                data = json.loads(z.read("data")) if "data" in names else {}
                raw = z.read("policy.pth")
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"'{path}' is not a readable zip file ({e}); expected a Stable-Baselines3 model zip") from e
        if data.get("use_sde"):
            raise UserError(f"'{path}' uses gSDE exploration, which this loader does not implement; "
                            "use a model trained without use_sde")
        state = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
        return cls(state, stochastic=stochastic, seed=seed, source=str(path))

    @torch.no_grad()
    def __call__(self, observations: np.ndarray) -> np.ndarray:
        h = torch.as_tensor(observations, dtype=torch.float32)
        for weight, bias in self.layers:
            h = torch.relu(torch.nn.functional.linear(h, weight, bias))
        mean = torch.nn.functional.linear(h, *self.mu)
        if self.stochastic:
            log_std = torch.nn.functional.linear(h, *self.log_std).clamp(-20.0, 2.0)
            noise = torch.randn(mean.shape, generator=self.generator)
            mean = mean + log_std.exp() * noise
        return torch.tanh(mean).numpy()


def load_run_policy(run_dir: str | Path) -> Policy:
    """A trained policy from one of our run directories: its ``config.yaml`` ``algo:`` names the algorithm, whose
    spec loads the latest policy."""
    import yaml

    from rlcore.config import ALGO_KEY
    from rlcore.run import CONFIG_FILE

    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no {CONFIG_FILE}); pass a run directory of "
                        "`rlcore train`, a Stable-Baselines3 zip, 'random' or 'scripted'")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    algo = config.get(ALGO_KEY) if isinstance(config, dict) else None
    if not algo:
        raise UserError(f"'{config_path}' has no '{ALGO_KEY}:' key naming the algorithm; it was not written by "
                        "`rlcore train`")
    from rlcore.algorithm import ALGORITHMS

    return ALGORITHMS.get(str(algo)).load_policy(run_dir, "latest")


def resolve_policy(spec: str, env: gym.Env, seed: int = 0, stochastic: bool = False) -> tuple[Policy, str]:
    """The policy named by ``spec`` for ``env`` and a description of it (for metadata).

    ``spec``: ``random``, ``scripted`` (controllers in :data:`SCRIPTED`), a path to an SB3 model zip, or a run
    directory of ours. ``stochastic`` samples SB3 actors from their own Gaussian.
    """
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise UserError(f"environment {env.spec.id if env.spec else env} has {type(space).__name__} actions; "
                        "collection supports continuous (Box) action spaces")
    if spec == "random":
        return RandomPolicy(space, seed=seed), "random"
    if spec == "scripted":
        env_id = env.spec.id if env.spec else ""
        if env_id not in SCRIPTED:
            raise UserError(f"no scripted controller for '{env_id}'; scripted controllers exist for "
                            f"{', '.join(SCRIPTED)}")
        return SCRIPTED[env_id](), f"scripted:{SCRIPTED[env_id].__name__}"
    path = Path(spec)
    if path.is_file() and path.suffix == ".zip":
        actor = SB3Actor.load(path, stochastic=stochastic, seed=seed)
        obs_dim = env.observation_space.shape[0]
        if actor.obs_dim != obs_dim or actor.act_dim != space.shape[0]:
            raise UserError(f"agent '{path}' takes observations of size {actor.obs_dim} and gives {actor.act_dim} "
                            f"actions, but the environment has {obs_dim} and {space.shape[0]}; use the agent's env")
        return actor, f"sb3:{path}:{'stochastic' if stochastic else 'deterministic'}"
    if path.is_dir():
        return load_run_policy(path), f"run:{path}"
    raise UserError(f"policy '{spec}' is not 'random', 'scripted', an existing .zip agent or a run directory")
