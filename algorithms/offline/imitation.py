"""Offline imitation learning data for O-DICE.

``single_trajectory`` (the reference release): the T-th episode of an expert dataset with every reward set to 0.

``discriminator`` (the paper's other IL setting, as SMODICE/DemoDICE): a few expert trajectories plus a large
mixed dataset. A state-action discriminator D is trained to tell expert (label 1) from mixed (label 0)
transitions with binary cross-entropy plus DemoDICE's gradient penalty, 10 * E[(|grad D(x)| - 1)^2] on random
interpolates of expert and mixed inputs. With the optimal D = d_E / (d_E + d_mix), the reward

    r(s, a) = log(D / (1 - D)) = log d_E(s, a) - log d_mix(s, a),

which is exactly D's logit. O-DICE then runs on the union of the mixed and expert data with these rewards.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rlcore.algorithms.offline.nets import EnsembleMLP, seed_generators
from rlcore.envs.offline import OfflineDataset, concatenate
from rlcore.errors import DataError


def single_trajectory(dataset: OfflineDataset, index: int) -> OfflineDataset:
    """The ``index``-th episode (0-based, as the reference's T) with rewards set to 0."""
    traj = dataset.trajectory(index)
    return traj.replace(rewards=np.zeros_like(traj.rewards),
                        metadata={**traj.metadata, "il_mode": "single_trajectory", "il_trajectory": index})


def first_trajectories(dataset: OfflineDataset, count: int) -> OfflineDataset:
    """The first ``count`` episodes of ``dataset``."""
    if count > dataset.num_episodes:
        raise DataError(f"expert_trajectories={count} but '{dataset.metadata.get('source', 'dataset')}' has only "
                        f"{dataset.num_episodes} episodes")
    end = dataset.episodes()[count - 1].stop
    return dataset.select(slice(0, end), expert_trajectories=count)


def train_discriminator(expert: OfflineDataset, mixed: OfflineDataset, hidden: list[int], steps: int, lr: float,
                        grad_penalty: float, seed: int, batch_size: int = 256,
                        device: torch.device | str = "cpu", progress: bool = True) -> EnsembleMLP:
    """Fit D(s, a) (a logit) to separate expert from mixed transitions; returns the network."""
    device = torch.device(device)

    def inputs(ds: OfflineDataset) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([ds.observations, ds.actions], axis=1)).to(device)

    x_expert, x_mixed = inputs(expert), inputs(mixed)
    net = EnsembleMLP(x_expert.shape[1], hidden, 1, seed_generators([seed], salt=7)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator(device=device).manual_seed(seed)
    for _ in tqdm(range(steps), desc="discriminator", disable=not progress, mininterval=2.0):
        e = x_expert[torch.randint(len(x_expert), (batch_size,), generator=g, device=device)]
        m = x_mixed[torch.randint(len(x_mixed), (batch_size,), generator=g, device=device)]
        logits = net(torch.cat([e, m]).unsqueeze(0)).reshape(-1)
        labels = torch.cat([torch.ones(batch_size, device=device), torch.zeros(batch_size, device=device)])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        if grad_penalty > 0:
            alpha = torch.rand(batch_size, 1, generator=g, device=device)
            mix = (alpha * e + (1 - alpha) * m).requires_grad_(True)
            (grad,) = torch.autograd.grad(net(mix.unsqueeze(0)).sum(), mix, create_graph=True)
            loss = loss + grad_penalty * ((grad.norm(dim=1) - 1) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return net


@torch.no_grad()
def discriminator_rewards(net: EnsembleMLP, dataset: OfflineDataset, chunk: int = 65536) -> np.ndarray:
    """log(D / (1 - D)) = the logit, for every transition of ``dataset``."""
    device = next(net.parameters()).device
    x = np.concatenate([dataset.observations, dataset.actions], axis=1)
    out = [net(torch.from_numpy(x[i:i + chunk]).to(device).unsqueeze(0)).reshape(-1).cpu()
           for i in range(0, len(x), chunk)]
    return torch.cat(out).numpy().astype(np.float32)


def discriminator_dataset(expert_all: OfflineDataset, mixed: OfflineDataset, *, trajectories: int,
                          hidden: list[int], steps: int, lr: float, grad_penalty: float, seed: int,
                          device: torch.device | str = "cpu", progress: bool = True) -> OfflineDataset:
    """Mixed + the first ``trajectories`` expert episodes, relabelled with discriminator rewards."""
    if expert_all.obs_dim != mixed.obs_dim or expert_all.act_dim != mixed.act_dim:
        raise DataError(f"expert data has obs/act sizes {expert_all.obs_dim}/{expert_all.act_dim} but the mixed "
                        f"data {mixed.obs_dim}/{mixed.act_dim}; both must come from the same environment")
    expert = first_trajectories(expert_all, trajectories)
    union = concatenate([mixed, expert], metadata={**mixed.metadata, "il_mode": "discriminator",
                                                   "expert_trajectories": trajectories})
    net = train_discriminator(expert, union, hidden, steps, lr, grad_penalty, seed, device=device,
                              progress=progress)
    return union.replace(rewards=discriminator_rewards(net, union))
