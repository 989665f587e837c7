"""The TD3+BC example plugin (examples/plugins/td3bc): its losses against hand computations, one update, K seeds
against K separate runs, acting and state. The module is imported by path, as an installed plugin would be."""

from __future__ import annotations

import copy
import importlib.util
import sys

import pytest
import torch
from conftest import REPO

import rlcore.algorithms.offline as offline_family

PLUGIN = REPO / "examples" / "plugins" / "td3bc"


@pytest.fixture(scope="module")
def td3bc():
    """The plugin module. Until ``offline_algorithm`` exists in rlcore.algorithms.offline, a stand-in that
    records its arguments lets the module's last line run."""
    added = not hasattr(offline_family, "offline_algorithm")
    if added:
        offline_family.offline_algorithm = lambda **kwargs: kwargs
    spec = importlib.util.spec_from_file_location("rlcore_td3bc", PLUGIN / "rlcore_td3bc.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rlcore_td3bc"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("rlcore_td3bc", None)
        if added:
            del offline_family.offline_algorithm


def test_plugin_is_one_module_and_one_pyproject(td3bc):
    assert sorted(p.name for p in PLUGIN.iterdir() if p.name != "__pycache__") == ["pyproject.toml",
                                                                                  "rlcore_td3bc.py"]
    text = (PLUGIN / "pyproject.toml").read_text()
    assert '[project.entry-points."rlcore.algorithms"]' in text and 'td3bc = "rlcore_td3bc:SPEC"' in text
    last = (PLUGIN / "rlcore_td3bc.py").read_text().strip().splitlines()
    assert last[-2].startswith('SPEC = offline_algorithm(name="td3bc", title="TD3+BC"')


def test_paper_defaults(td3bc):
    cfg = td3bc.TD3BCConfig()
    assert (cfg.alpha, cfg.policy_noise, cfg.noise_clip, cfg.policy_delay, cfg.tau) == (2.5, 0.2, 0.5, 2, 0.005)
    assert cfg.policy_lr == cfg.critic_lr == 3e-4 and cfg.normalize_obs
    assert dict(td3bc.TD3BCConfig.auto_reward_transform) == {}  # rewards as they are


def test_critic_loss_by_hand(td3bc):
    q = torch.tensor([[[1.0, 2.0], [0.5, -1.0]]])  # (K=1, 2 heads, B=2)
    rewards, terminals = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    target_q = torch.tensor([[2.0, 5.0]])
    # y = [1 + 0.5 * 2, 0] = [2, 0]; head 1: ((1-2)^2 + (2-0)^2)/2 = 2.5; head 2: ((0.5-2)^2 + (-1)^2)/2 = 1.625
    loss = td3bc.critic_loss(q, rewards, terminals, target_q, gamma=0.5)
    torch.testing.assert_close(loss, torch.tensor([4.125]))


def test_actor_loss_by_hand(td3bc):
    q_pi = torch.tensor([[2.0, -4.0]])  # (K=1, B=2): E|Q| = 3, lambda = 2.5 / 3
    pi = torch.tensor([[[0.5, 0.0], [0.0, 1.0]]])
    actions = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    loss, bc = td3bc.actor_loss(q_pi, pi, actions, alpha=2.5)
    # bc = (0.25 + 1) / 4 = 0.3125; -lambda E[Q] = -(2.5/3)(-1) = 0.8333...
    torch.testing.assert_close(bc, torch.tensor([0.3125]))
    torch.testing.assert_close(loss, torch.tensor([2.5 / 3 + 0.3125]))
    q_pi.requires_grad_(True)
    loss, _ = td3bc.actor_loss(q_pi, pi, actions, alpha=2.5)
    (grad,) = torch.autograd.grad(loss.sum(), q_pi)
    torch.testing.assert_close(grad, torch.full((1, 2), -2.5 / 3 / 2))  # lambda is a constant


def test_target_actions_clip_noise_then_actions(td3bc):
    out = td3bc.target_actions(torch.tensor([0.9, -0.2, 0.0]), torch.tensor([0.3, -1.0, 0.1]), noise_clip=0.5)
    torch.testing.assert_close(out, torch.tensor([1.0, -0.7, 0.1]))


def _batch(k, b, obs_dim, act_dim, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {"observations": torch.randn(k, b, obs_dim, generator=g, dtype=dtype),
            "actions": torch.rand(k, b, act_dim, generator=g, dtype=dtype) * 2 - 1,
            "rewards": torch.randn(k, b, generator=g, dtype=dtype),
            "next_observations": torch.randn(k, b, obs_dim, generator=g, dtype=dtype),
            "terminals": (torch.rand(k, b, generator=g) < 0.2).to(dtype)}


SMALL = dict(hidden=[16, 16], policy_hidden=[16, 16])


def test_updates_move_critic_then_actor_and_targets(td3bc):
    algo = td3bc.TD3BC(td3bc.TD3BCConfig(**SMALL), obs_dim=4, act_dim=2)
    before = copy.deepcopy(algo.state_dict())
    batch = {k: v[0].float() for k, v in _batch(1, 32, 4, 2, seed=0).items()}
    m1 = algo.update(batch)
    after1 = copy.deepcopy(algo.state_dict())
    assert not torch.equal(before["critic"]["weights.0"], after1["critic"]["weights.0"])
    assert torch.equal(before["policy"]["net.weights.0"], after1["policy"]["net.weights.0"])  # delayed actor
    assert torch.equal(before["critic_target"]["weights.0"], after1["critic_target"]["weights.0"])
    m2 = algo.update(batch)
    after2 = algo.state_dict()
    assert not torch.equal(after1["policy"]["net.weights.0"], after2["policy"]["net.weights.0"])
    assert not torch.equal(after1["critic_target"]["weights.0"], after2["critic_target"]["weights.0"])
    assert "actor_loss" not in m1 and m2.keys() == {*m1, "actor_loss", "bc_loss", "policy_grad_norm"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in m2.values())
    actions = algo.act(torch.randn(10, 4) * 50)
    assert actions.shape == (10, 2) and actions.abs().max() <= 1.0


def test_vectorised_seeds_equal_separate_runs_and_state_round_trip(td3bc):
    seeds = [0, 4]
    together = td3bc.TD3BC(td3bc.TD3BCConfig(seeds=seeds, **SMALL), 3, 2, dtype=torch.float64)
    alone = [td3bc.TD3BC(td3bc.TD3BCConfig(seed=s, **SMALL), 3, 2, dtype=torch.float64) for s in seeds]
    for step in range(4):
        batch = _batch(2, 16, 3, 2, seed=10 + step)
        together.update(batch)
        for k, algo in enumerate(alone):
            algo.update({key: val[k] for key, val in batch.items()})
    state = together.state_dict()
    for k, algo in enumerate(alone):
        for module in ("policy", "critic", "policy_target", "critic_target"):
            for name, tensor in algo.state_dict()[module].items():
                torch.testing.assert_close(state[module][name][k:k + 1], tensor, rtol=1e-10, atol=1e-12)
    resumed = td3bc.TD3BC(td3bc.TD3BCConfig(seeds=seeds, **SMALL), 3, 2, dtype=torch.float64)
    resumed.load_state_dict(copy.deepcopy(state))
    for step in range(2):  # same noise draws after the round trip
        batch = _batch(2, 16, 3, 2, seed=99 + step)
        m_a, m_b = together.update(batch), resumed.update(batch)
        assert m_a.keys() == m_b.keys() and all(torch.equal(m_a[key], m_b[key]) for key in m_a)


def test_deterministic_actor_uses_the_family_evaluation_and_best_policy(td3bc):
    from rlcore.algorithms.offline import prepare_data
    from rlcore.algorithms.offline.evaluation import best_policy_state, make_evaluator

    cfg = td3bc.TD3BCConfig(task="pendulum-scripted-v0", seeds=[0, 1], eval_episodes=1, **SMALL)
    prepared = prepare_data(cfg, progress=False)
    assert prepared.normalizer is not None  # TD3+BC standardises observations
    algo = td3bc.TD3BC(cfg, prepared.dataset.obs_dim, prepared.dataset.act_dim)
    result = make_evaluator(cfg, prepared, torch.device("cpu"))(algo)
    assert {"eval/normalized_score/seed0", "eval/normalized_score/seed1"} <= result.keys()
    state = best_policy_state(algo, prepared)
    fresh = td3bc.TD3BC(td3bc.TD3BCConfig(seeds=[5, 6], **SMALL), 3, 1)
    fresh.policy.load_state_dict(state["policy"])
    obs = torch.randn(2, 4, 3)
    assert torch.equal(fresh.act(obs), algo.act(obs))
