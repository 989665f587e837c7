"""TD3+BC (Fujimoto & Gu, "A Minimalist Approach to Offline Reinforcement Learning", NeurIPS 2021) as an rlcore
plugin: one module and one ``pyproject.toml``, nothing in rlcore edited.

TD3 with a behaviour-cloning term in the actor loss. Per update, for K seeds at once (every network is an
ensemble over seeds, so K seeds in one process follow exactly the trajectories of K separate runs):

    critic:  a' = clip(pi_bar(s') + clip(N(0, sigma^2), -c, c), -1, 1)
             y  = r + gamma (1 - d) min(Q1_bar(s', a'), Q2_bar(s', a'))
             L_Q = E[(Q1(s, a) - y)^2] + E[(Q2(s, a) - y)^2]
    actor (every ``policy_delay`` updates), then the targets' EMA:
             lambda = alpha / E|Q1(s, pi(s))|           (detached)
             L_pi = -lambda E[Q1(s, pi(s))] + E[(pi(s) - a)^2]

Defaults are the paper's: alpha 2.5, sigma 0.2, c 0.5, delay 2, tau 0.005, Adam 3e-4 for both networks, 256-256
MLPs, observations standardised with the dataset's mean and std, rewards left as they are (no return-range
scaling). The actor is deterministic, tanh(MLP(s)), in the [-1, 1] action box rlcore trains in; rlcore maps actions
back to the simulator's bounds when acting.

It runs on the offline family's machinery, so every command finds it once installed
(``pip install examples/plugins/td3bc``)::

    rlcore train td3bc --task hopper-medium-v2 --seeds 0,1,2
    rlcore train td3bc --task pendulum-scripted-v0 --set max_steps=5000      # the embedded Pendulum data
    rlcore eval td3bc --run-dir runs/<run>
    rlcore data collect --policy runs/<run> ...

and from Python, on data in any form (arrays, a file, a D4RL name)::

    from rlcore_td3bc import TD3BC, TD3BCConfig
    from rlcore.algorithms.offline import prepare_data
    from rlcore.envs.offline import DatasetSampler

    cfg = TD3BCConfig(task="pendulum-scripted-v0", max_steps=1000)
    prepared = prepare_data(cfg)                       # or prepare_data(cfg, dataset=arrays)
    algo = TD3BC(cfg, prepared.dataset.obs_dim, prepared.dataset.act_dim)
    sampler = DatasetSampler(prepared.dataset, cfg.batch_size, seed=cfg.seed)
    for _ in range(cfg.max_steps):
        metrics = algo.update(sampler.sample())        # critic_loss, actor_loss, bc_loss, q_mean, ...
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from rlcore.algorithms.offline import OfflineConfig, offline_algorithm
from rlcore.algorithms.offline.ensemble import Batch, EnsembleAlgorithm, as_seed_batch, clip_grad_norm_per_seed
from rlcore.algorithms.offline.nets import EnsembleMLP, ema_update, seed_generators
from rlcore.algorithms.offline.policy import make_adam
from rlcore.config import check_range


@dataclasses.dataclass
class TD3BCConfig(OfflineConfig):
    """TD3+BC (Fujimoto & Gu, 2021) with the paper's defaults."""

    auto_reward_transform: ClassVar[Mapping[str, str]] = {}
    """reward_transform=auto leaves rewards as they are (the paper does not rescale them)."""

    alpha: float = 2.5
    """Weight of the Q term against BC: lambda = alpha / E|Q(s, pi(s))|."""
    policy_noise: float = 0.2
    """Standard deviation of the target policy smoothing noise (actions in [-1, 1])."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to [-noise_clip, noise_clip]."""
    policy_delay: int = 2
    """Update the actor and the target networks every this many critic updates."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """EMA rate of the target actor and critic."""
    hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """Hidden widths of each critic MLP (ReLU)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin critic."""
    policy_hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256])
    """Hidden widths of the actor MLP (ReLU, tanh output)."""
    policy_lr: float = 3e-4
    """Adam learning rate of the actor."""
    policy_weight_decay: float = 0.0
    """L2 weight decay of the actor's Adam."""
    normalize_obs: bool = True
    """Standardise observations with the dataset mean/std (the paper does)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("alpha", self.alpha, low=0.0)
        check_range("policy_noise", self.policy_noise, low=0.0)
        check_range("noise_clip", self.noise_clip, low=0.0)
        check_range("policy_delay", self.policy_delay, low=1)
        check_range("gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        check_range("tau", self.tau, low=0.0, high=1.0, low_open=True)
        check_range("critic_lr", self.critic_lr, low=0.0, low_open=True)


# ---------------------------------------------------------------------------------------------------------------
# losses (pure functions; K seeds, B transitions, A action dimensions; each loss is per seed, (K,))


def target_actions(next_actions: torch.Tensor, noise: torch.Tensor, noise_clip: float) -> torch.Tensor:
    """Target policy smoothing: clip(pi_bar(s') + clip(noise, -c, c), -1, 1), (K, B, A)."""
    return (next_actions + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def critic_loss(q: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor, target_q: torch.Tensor,
                gamma: float) -> torch.Tensor:
    """Sum over the twin heads of the mean squared TD error: ``q`` (K, 2, B); the rest (K, B) -> (K,)."""
    y = rewards + gamma * (1.0 - terminals) * target_q
    return ((q - y.unsqueeze(1)) ** 2).mean(dim=2).sum(dim=1)


def actor_loss(q_pi: torch.Tensor, pi: torch.Tensor, actions: torch.Tensor, alpha: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """-lambda E[Q1(s, pi(s))] + E[(pi(s) - a)^2] with lambda = alpha / E|Q1(s, pi(s))| (detached).

    ``q_pi`` (K, B); ``pi`` and ``actions`` (K, B, A). Returns ((K,) loss, (K,) BC term).
    """
    lam = alpha / q_pi.abs().mean(dim=1).detach()
    bc = ((pi - actions) ** 2).mean(dim=(1, 2))
    return -lam * q_pi.mean(dim=1) + bc, bc


# ---------------------------------------------------------------------------------------------------------------
# networks and the algorithm


class DeterministicActor(nn.Module):
    """pi(s) = tanh(MLP(s)) for K seeds: (K, N, obs_dim) -> (K, N, act_dim) in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], generators: list[torch.Generator]):
        super().__init__()
        self.net = EnsembleMLP(obs_dim, hidden, act_dim, generators)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs).squeeze(1))

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class TD3BC(EnsembleAlgorithm):
    """TD3+BC for K seeds (``cfg.seed_list``): ``update(batch) -> metrics``, ``act(obs)``, ``state_dict()``."""

    console_keys = ("train/critic_loss", "train/actor_loss")

    def __init__(self, cfg: TD3BCConfig, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.num_seeds = len(cfg.seed_list)
        gens = seed_generators(cfg.seed_list)
        self.policy = DeterministicActor(obs_dim, act_dim, cfg.policy_hidden, gens).to(device=device, dtype=dtype)
        self.critic = EnsembleMLP(obs_dim + act_dim, cfg.hidden, 1, gens, heads=2).to(device=device, dtype=dtype)
        self.policy_target = copy.deepcopy(self.policy).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.policy_optimizer = make_adam(self.policy.parameters(), cfg.policy_lr, cfg.policy_weight_decay,
                                          fused=cfg.fused_optimizer)
        self.critic_optimizer = make_adam(self.critic.parameters(), cfg.critic_lr, fused=cfg.fused_optimizer)
        # smoothing noise: one generator per seed, so K seeds together draw what each would draw alone
        self.noise_generators = [torch.Generator(device=device).manual_seed(int(s) * 1_000_003 + 1)
                                 for s in cfg.seed_list]
        self.steps = 0
        if cfg.compile:
            self.compile_networks()

    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, "critic": self.critic, "policy_target": self.policy_target,
                "critic_target": self.critic_target}

    def optimizers(self) -> dict[str, Any]:
        return {"policy_optimizer": self.policy_optimizer, "critic_optimizer": self.critic_optimizer}

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        """N(0, policy_noise^2) shaped like ``like`` (K, B, A), seed k from its own generator."""
        return torch.stack([torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype)
                            for g in self.noise_generators]) * self.cfg.policy_noise

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One critic step; every ``policy_delay`` steps one actor step and the target EMA."""
        cfg = self.cfg
        batch = as_seed_batch(batch, self.num_seeds)
        s, a, s2 = batch["observations"], batch["actions"], batch["next_observations"]
        with torch.no_grad():
            a2 = target_actions(self.policy_target(s2), self._noise(a), cfg.noise_clip)
            target_q = self.critic_target(torch.cat([s2, a2], dim=-1)).squeeze(-1).amin(dim=1)
        q = self.critic(torch.cat([s, a], dim=-1)).squeeze(-1)  # (K, 2, B)
        loss_q = critic_loss(q, batch["rewards"], batch["terminals"].to(q.dtype), target_q, cfg.gamma).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss_q.backward()
        critic_grad_norm = clip_grad_norm_per_seed(list(self.critic.parameters()), cfg.max_grad_norm)
        self.critic_optimizer.step()
        self.steps += 1
        metrics = {"critic_loss": loss_q.detach() / self.num_seeds, "q_mean": q.detach().mean(),
                   "critic_grad_norm": critic_grad_norm.mean()}
        # the actor's metrics come only from its own steps (the update loop averages each key over its steps)
        if self.steps % cfg.policy_delay == 0:
            pi = self.policy(s)
            q_pi = self.critic(torch.cat([s, pi], dim=-1)).squeeze(-1)[:, 0]  # Q1 only, as the paper
            loss_pi, bc = actor_loss(q_pi, pi, a, cfg.alpha)
            self.policy_optimizer.zero_grad(set_to_none=True)
            loss_pi.sum().backward()
            policy_grad_norm = clip_grad_norm_per_seed(list(self.policy.parameters()), cfg.max_grad_norm)
            self.policy_optimizer.step()
            ema_update(self.critic_target.parameters(), self.critic.parameters(), cfg.tau)
            ema_update(self.policy_target.parameters(), self.policy.parameters(), cfg.tau)
            metrics.update(actor_loss=loss_pi.detach().mean(), bc_loss=bc.detach().mean(),
                           policy_grad_norm=policy_grad_norm.mean())
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "noise_generators": [g.get_state() for g in self.noise_generators]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        for g, saved in zip(self.noise_generators, state["noise_generators"]):
            g.set_state(saved)


SPEC = offline_algorithm(name="td3bc", title="TD3+BC", help="TD3+BC (Fujimoto & Gu, 2021) on an offline dataset",
                         config=TD3BCConfig, algorithm=TD3BC)
