"""O-DICE updates: parameters move, K vectorised seeds equal K separate runs, state round trips, acting."""

from __future__ import annotations

import copy

import pytest
import torch
from test_odice_math import random_batch

from rlcore.algorithms.bc import BC, BCConfig
from rlcore.algorithms.iql import IQL, IQLConfig
from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.errors import ConfigError

SMALL = dict(v_hidden=[32, 32], policy_hidden=[32, 32])


@pytest.mark.parametrize("rule", ["orthogonal", "semi", "true"])
def test_one_update_changes_all_parameters(rule):
    algo = ODICE(ODICEConfig(grad_rule=rule, **SMALL), obs_dim=6, act_dim=2)
    before = {k: v.clone() for k, v in algo.state_dict()["value"].items()}
    before_pi = {k: v.clone() for k, v in algo.state_dict()["policy"].items()}
    target_before = {k: v.clone() for k, v in algo.state_dict()["value_target"].items()}
    metrics = algo.update({k: v[0] for k, v in random_batch(1, 64, 6, 2, seed=1, dtype=torch.float32).items()})
    after = algo.state_dict()
    for k in before:
        assert not torch.equal(before[k], after["value"][k]), k
        assert not torch.equal(target_before[k], after["value_target"][k]), k
    for k in before_pi:
        assert not torch.equal(before_pi[k], after["policy"][k]), k
    assert all(v.dim() == 0 and torch.isfinite(v) for v in metrics.values())
    assert algo.steps == 1


@pytest.mark.parametrize("rule", ["orthogonal", "semi", "true"])
def test_vectorised_seeds_equal_separate_runs(rule):
    seeds = [0, 3, 11]
    cfg = ODICEConfig(grad_rule=rule, seeds=seeds, **SMALL)
    together = ODICE(cfg, obs_dim=5, act_dim=3, dtype=torch.float64)
    alone = [ODICE(ODICEConfig(grad_rule=rule, seed=s, **SMALL), obs_dim=5, act_dim=3, dtype=torch.float64)
             for s in seeds]
    for step in range(5):
        batch = random_batch(3, 48, 5, 3, seed=100 + step)
        m_all = together.update(batch)
        for k, algo in enumerate(alone):
            algo.update({key: val[k] for key, val in batch.items()})
    state = together.state_dict()
    for k, algo in enumerate(alone):
        single = algo.state_dict()
        for module in ("value", "value_target", "policy"):
            for name, tensor in single[module].items():
                torch.testing.assert_close(state[module][name][k:k + 1], tensor, rtol=1e-10, atol=1e-12)
    assert torch.isfinite(m_all["v_loss"])


def test_state_dict_round_trip_continues_identically():
    cfg = ODICEConfig(**SMALL)
    a = ODICE(cfg, obs_dim=4, act_dim=2)
    batches = [{k: v[0] for k, v in random_batch(1, 32, 4, 2, seed=s, dtype=torch.float32).items()}
               for s in range(6)]
    for b in batches[:3]:
        a.update(b)
    b_algo = ODICE(ODICEConfig(seed=99, **SMALL), obs_dim=4, act_dim=2)
    b_algo.load_state_dict(copy.deepcopy(a.state_dict()))  # as a checkpoint would: no shared tensors
    for b in batches[3:]:
        a.update(b)
        b_algo.update(b)
    for module in ("value", "value_target", "policy"):
        for name, t in a.state_dict()[module].items():
            assert torch.equal(t, b_algo.state_dict()[module][name]), (module, name)


def test_act_shapes_and_bounds():
    one = ODICE(ODICEConfig(**SMALL), obs_dim=4, act_dim=2)
    obs = torch.randn(10, 4) * 100
    actions = one.act(obs)
    assert actions.shape == (10, 2) and actions.abs().max() <= 1.0
    assert one.act(torch.randn(4)).shape == (2,)
    three = ODICE(ODICEConfig(seeds=[0, 1, 2], **SMALL), obs_dim=4, act_dim=2)
    assert three.act(torch.randn(3, 7, 4)).shape == (3, 7, 2)
    with pytest.raises(ValueError, match="K=3"):
        three.act(torch.randn(7, 4))


def test_weighted_bc_with_zero_weights_leaves_policy_mean_alone():
    """With pearson_chi2 code weights max(delta, 0) and strongly negative residuals, the BC weight is 0."""
    algo = ODICE(ODICEConfig(weight_form="code", policy_weight_decay=0.0, **SMALL), obs_dim=3, act_dim=1)
    batch = {k: v[0] for k, v in random_batch(1, 16, 3, 1, seed=0, dtype=torch.float32).items()}
    batch["rewards"] = torch.full((16,), -1e4)
    before = [p.clone() for p in algo.policy.net.parameters()]
    metrics = algo.update(batch)
    assert float(metrics["weight_max"]) == 0.0
    for p, q in zip(before, algo.policy.net.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("seeds", [[0], [1, 2, 3]])
def test_skipping_zero_weight_rows_gives_the_same_update(seeds):
    runs = {}
    for mode in ("on", "off"):
        algo = ODICE(ODICEConfig(seeds=seeds, skip_zero_weight_rows=mode, **SMALL), obs_dim=5, act_dim=2,
                     dtype=torch.float64)
        for step in range(4):
            batch = random_batch(len(seeds), 64, 5, 2, seed=step)
            metrics = algo.update(batch)
        runs[mode] = (algo.state_dict()["policy"], metrics)
    assert 0.2 < float(runs["on"][1]["weight_nonzero"]) < 0.9, "the test needs some zero weights"
    for name, t in runs["off"][0].items():
        torch.testing.assert_close(runs["on"][0][name], t, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(runs["on"][1]["policy_loss"], runs["off"][1]["policy_loss"])


@pytest.mark.parametrize("cls, cfg_cls, extra", [(BC, BCConfig, {}), (IQL, IQLConfig, {"hidden": [16, 16]})])
def test_baselines_update_and_vectorise(cls, cfg_cls, extra):
    seeds = [2, 7]
    together = cls(cfg_cls(seeds=seeds, policy_hidden=[16, 16], **extra), obs_dim=4, act_dim=2, dtype=torch.float64)
    alone = [cls(cfg_cls(seed=s, policy_hidden=[16, 16], **extra), obs_dim=4, act_dim=2, dtype=torch.float64)
             for s in seeds]
    before = copy.deepcopy(together.state_dict())
    for step in range(3):
        batch = random_batch(2, 32, 4, 2, seed=step)
        metrics = together.update(batch)
        for k, algo in enumerate(alone):
            algo.update({key: val[k] for key, val in batch.items()})
    assert all(torch.isfinite(v) for v in metrics.values())
    state = together.state_dict()
    for name, tensor in state["policy"].items():
        assert not torch.equal(tensor, before["policy"][name]), name
    for k, algo in enumerate(alone):
        for module in together.modules():
            for name, tensor in algo.state_dict()[module].items():
                torch.testing.assert_close(state[module][name][k:k + 1], tensor, rtol=1e-10, atol=1e-12)


def test_gradient_clipping_is_per_seed_and_keeps_seeds_independent():
    seeds = [0, 4]
    clip = dict(max_grad_norm=0.05, **SMALL)
    together = ODICE(ODICEConfig(seeds=seeds, **clip), obs_dim=3, act_dim=1, dtype=torch.float64)
    alone = [ODICE(ODICEConfig(seed=s, **clip), obs_dim=3, act_dim=1, dtype=torch.float64) for s in seeds]
    unclipped = ODICE(ODICEConfig(seeds=seeds, **SMALL), obs_dim=3, act_dim=1, dtype=torch.float64)
    batch = random_batch(2, 64, 3, 1, seed=9)
    m = together.update(batch)
    m_unclipped = unclipped.update(batch)
    assert float(m_unclipped["v_grad_norm"]) > 0.05, "the test needs norms above the clip"
    torch.testing.assert_close(m["v_grad_norm"], m_unclipped["v_grad_norm"])  # logged before clipping
    for k, algo in enumerate(alone):
        algo.update({key: val[k] for key, val in batch.items()})
        for name, t in algo.state_dict()["value"].items():
            torch.testing.assert_close(together.state_dict()["value"][name][k:k + 1], t, rtol=1e-10, atol=1e-12)
    # the applied step is the clipped one: Adam's first moment after one step is (1 - beta1) * clipped gradient
    per_seed = torch.stack([torch.cat([together.value_optimizer.state[p]["exp_avg"][k].reshape(-1)
                                       for p in together.value_params]) for k in range(2)])
    torch.testing.assert_close(per_seed.norm(dim=1) / 0.1, torch.full((2,), 0.05, dtype=torch.float64), rtol=1e-4,
                               atol=0)


def test_compiled_networks_give_the_same_updates():
    """compile=true (torch.compile of every network) follows the eager run to float64 rounding, including the
    policy step on a varying number of non-zero-weight rows and the twice-used V(s) graph of the orthogonal rule."""
    runs, obs = {}, torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for compile_ in (False, True):
        algo = ODICE(ODICEConfig(compile=compile_, **SMALL), obs_dim=5, act_dim=2, dtype=torch.float64)
        for step in range(4):
            metrics = algo.update({k: v[0] for k, v in random_batch(1, 64, 5, 2, seed=step).items()})
        runs[compile_] = (algo.state_dict(), metrics, algo.act(obs))
    eager, compiled = runs[False], runs[True]
    for module in ("value", "value_target", "policy"):
        assert eager[0][module].keys() == compiled[0][module].keys()
        for name, t in eager[0][module].items():
            torch.testing.assert_close(compiled[0][module][name], t, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(compiled[1]["v_loss"], eager[1]["v_loss"])
    torch.testing.assert_close(compiled[2], eager[2])


def test_compile_without_a_cpp_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(ConfigError, match="needs a C\\+\\+ compiler"):
        ODICE(ODICEConfig(compile=True, **SMALL), obs_dim=3, act_dim=1)
