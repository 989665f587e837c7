"""O-DICE's update against a brute-force reference that follows the reference implementation's recipe:
separate nn.Module MLPs, three .backward() passes, flattened gradients, one global dot product."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.algorithms.odice.losses import f_star, policy_weight
from rlcore.algorithms.offline.losses import gaussian_nll

torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# pure functions against hand values


def test_f_star_pearson_hand_values():
    y = torch.tensor([-4.0, -2.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    # w* = max(y/2+1, 0); f* = y w* - (w*-1)^2  ->  -1 below -2, y^2/4 + y above
    expected = torch.tensor([-1.0, -1.0, 0.0, 1.25, 3.0], dtype=torch.float64)
    torch.testing.assert_close(f_star(y, "pearson_chi2"), expected)


def test_f_star_reverse_kl_hand_values():
    y = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(f_star(y, "reverse_kl"), torch.tensor([math.exp(-1), 1.0, math.e],
                                                                     dtype=torch.float64))


def test_f_star_derivative_is_textbook_weight():
    y = torch.linspace(-5, 5, 101, dtype=torch.float64, requires_grad=True)
    for div in ("pearson_chi2", "reverse_kl"):
        (grad,) = torch.autograd.grad(f_star(y, div).sum(), y)
        torch.testing.assert_close(grad, policy_weight(y, div, "textbook", clip=1e9))


@pytest.mark.parametrize(
    "div, form, residual, expected",
    [
        ("pearson_chi2", "code", [-1.0, 0.5, 3.0, 500.0], [0.0, 0.5, 3.0, 100.0]),
        ("pearson_chi2", "textbook", [-3.0, -1.0, 0.5, 500.0], [0.0, 0.5, 1.25, 100.0]),
        ("reverse_kl", "code", [1.0, 0.0, 10.0], [1.0, math.exp(-1), 100.0]),
    ],
)
def test_policy_weight_hand_values(div, form, residual, expected):
    out = policy_weight(torch.tensor(residual, dtype=torch.float64), div, form, clip=100.0)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


def test_gaussian_nll_matches_torch_distribution():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(2, 7, 3, generator=g, dtype=torch.float64)
    log_std = torch.randn(2, 3, generator=g, dtype=torch.float64) * 0.3
    actions = torch.randn(2, 7, 3, generator=g, dtype=torch.float64)
    scale = torch.diag_embed(log_std.exp()[:, None].expand(2, 7, 3))
    ref = torch.distributions.MultivariateNormal(mean, scale_tril=scale)
    torch.testing.assert_close(gaussian_nll(mean, log_std, actions), -ref.log_prob(actions))


# ---------------------------------------------------------------------------------------------------------------
# brute-force reference of the value gradient (reference implementation's recipe)


def reference_head(algo_value, k: int, h: int, layer_norm: bool) -> nn.Sequential:
    """Seed k / head h of our ensemble as a plain nn.Sequential (Linear, [LayerNorm], ReLU, ..., Linear)."""
    layers: list[nn.Module] = []
    n = len(algo_value.weights)
    for i in range(n):
        w, b = algo_value.weights[i][k, h], algo_value.biases[i][k, h]
        lin = nn.Linear(w.shape[0], w.shape[1], dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w.t())
            lin.bias.copy_(b)
        layers.append(lin)
        if i < n - 1:
            if layer_norm:
                ln = nn.LayerNorm(w.shape[1], dtype=w.dtype)
                with torch.no_grad():
                    ln.weight.copy_(algo_value.norm_weights[i][k, h])
                    ln.bias.copy_(algo_value.norm_biases[i][k, h])
                layers.append(ln)
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ReferenceV(nn.Module):
    """The reference's TwinV / ValueFunction: both() stacks heads, forward() is the minimum."""

    def __init__(self, heads: list[nn.Sequential]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def both(self, x):
        return torch.stack([h(x).squeeze(-1) for h in self.heads], dim=0)

    def forward(self, x):
        return self.both(x).min(dim=0).values


def reference_grads(vf: ReferenceV, vf_target: ReferenceV, batch, cfg: ODICEConfig) -> list[torch.Tensor]:
    s, a, r, s2, d = (batch[k] for k in ("observations", "actions", "rewards", "next_observations", "terminals"))
    lam, eta, gamma = cfg.lam, cfg.eta, cfg.gamma
    params = list(vf.parameters())
    for p in params:
        p.grad = None
    if cfg.grad_rule == "semi":
        with torch.no_grad():
            target_v_next = vf_target(s2)
        v = vf.both(s)
        td = r + (1.0 - d) * gamma * target_v_next - v
        torch.mean((1 - lam) * v + lam * f_star(td, cfg.divergence)).backward()
        return [p.grad.clone() for p in params]
    if cfg.grad_rule == "true":
        v, v_next = vf.both(s), vf.both(s2)
        residual = r + (1.0 - d) * gamma * v_next - v
        torch.mean((1 - lam) * v + lam * f_star(residual, cfg.divergence)).backward()
        return [p.grad.clone() for p in params]
    # orthogonal: exactly the three-backward recipe
    with torch.no_grad():
        target_v, target_v_next = vf_target(s), vf_target(s2)
    v, v_next = vf.both(s), vf.both(s2)
    fwd = r + (1.0 - d) * gamma * target_v_next - v
    bwd = r + (1.0 - d) * gamma * v_next - target_v
    forward_loss = torch.mean(lam * f_star(fwd, cfg.divergence))
    backward_loss = torch.mean(lam * eta * f_star(bwd, cfg.divergence))
    forward_loss.backward(retain_graph=True)
    g_f = [p.grad.clone().reshape(-1) for p in params]
    backward_loss.backward()
    g_b = [p.grad.clone().reshape(-1) - gf for p, gf in zip(params, g_f)]
    gf, gb = torch.cat(g_f), torch.cat(g_b)
    coef = torch.dot(gf, gb) / max(torch.dot(gf, gf), 1e-10)
    combined = (1 - coef) * gf + gb
    for p in params:
        p.grad = None
    torch.mean((1 - lam) * v).backward()
    out, i = [], 0
    for p in params:
        n = p.numel()
        out.append(p.grad + combined[i:i + n].reshape(p.shape))
        i += n
    return out


def random_batch(k, b, obs_dim, act_dim, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(k, b, obs_dim, generator=g, dtype=dtype),
        "actions": torch.rand(k, b, act_dim, generator=g, dtype=dtype) * 2 - 1,
        "rewards": torch.randn(k, b, generator=g, dtype=dtype),
        "next_observations": torch.randn(k, b, obs_dim, generator=g, dtype=dtype),
        "terminals": (torch.rand(k, b, generator=g) < 0.2).to(dtype),
    }


def _ours_by_head(algo: ODICE, grads: list[torch.Tensor], k: int, h: int) -> list[torch.Tensor]:
    """Our gradient for seed k / head h, in the reference's parameter order and layout."""
    v = algo.value
    by_param = {id(p): g for p, g in zip(algo.value_params, grads)}
    out = []
    for i in range(len(v.weights)):
        out.append(by_param[id(v.weights[i])][k, h].t())
        out.append(by_param[id(v.biases[i])][k, h])
        if v.layer_norm and i < len(v.norm_weights):
            out.append(by_param[id(v.norm_weights[i])][k, h])
            out.append(by_param[id(v.norm_biases[i])][k, h])
    return out


CASES = [
    # rule, twin, layer_norm, divergence, seeds, batch, lam, eta
    ("orthogonal", True, True, "pearson_chi2", [0], 32, 0.6, 1.0),
    ("orthogonal", False, False, "pearson_chi2", [3], 16, 0.4, 2.0),
    ("orthogonal", True, False, "reverse_kl", [1, 7], 24, 0.7, 0.5),
    ("orthogonal", False, True, "pearson_chi2", [2, 5, 9], 8, 0.9, 1.0),
    ("semi", True, True, "pearson_chi2", [0, 1], 32, 0.6, 1.0),
    ("semi", False, False, "reverse_kl", [4], 16, 0.3, 1.0),
    ("true", True, True, "pearson_chi2", [0], 32, 0.6, 1.0),
    ("true", False, True, "reverse_kl", [2, 3], 16, 0.8, 1.0),
]


@pytest.mark.parametrize("rule, twin, ln, div, seeds, b, lam, eta", CASES)
def test_value_gradients_match_three_backward_reference(rule, twin, ln, div, seeds, b, lam, eta):
    cfg = ODICEConfig(grad_rule=rule, twin_v=twin, v_layer_norm=ln, divergence=div, seeds=seeds, lam=lam,
                      eta=eta, v_hidden=[16, 12], policy_hidden=[8])
    algo = ODICE(cfg, obs_dim=5, act_dim=2, dtype=torch.float64)
    # make target and online differ, as after some training
    with torch.no_grad():
        for p in algo.value_target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = random_batch(len(seeds), b, 5, 2, seed=len(seeds) * 31 + b)
    grads, _ = algo.value_gradients(batch)
    heads = 2 if twin else 1
    for k in range(len(seeds)):
        vf = ReferenceV([reference_head(algo.value, k, h, ln) for h in range(heads)])
        vf_target = ReferenceV([reference_head(algo.value_target, k, h, ln) for h in range(heads)])
        seed_batch = {key: val[k] for key, val in batch.items()}
        expected = reference_grads(vf, vf_target, seed_batch, cfg)
        # reference parameter order: all of head 0's parameters, then head 1's
        ours = [g for h in range(heads) for g in _ours_by_head(algo, grads, k, h)]
        assert len(ours) == len(expected)
        for o, e in zip(ours, expected):
            torch.testing.assert_close(o, e, rtol=1e-6, atol=1e-9)


def _mean_and_forward_parts(algo: ODICE, batch):
    """Brute force: the (1 - lam) E[V(s)] gradient and the forward gradient lam E[f*(delta_fwd)]."""
    cfg = algo.cfg
    s, s2 = batch["observations"], batch["next_observations"]
    r = batch["rewards"].unsqueeze(1)
    mask = cfg.gamma * (1 - batch["terminals"]).unsqueeze(1)
    with torch.no_grad():
        target_next = algo.value_target(s2).squeeze(-1).amin(dim=1, keepdim=True)
    v = algo.value(s).squeeze(-1)
    fwd = r + mask * target_next - v
    g_mean = torch.autograd.grad(((1 - cfg.lam) * v.flatten(1).mean(1)).sum(), algo.value_params,
                                 retain_graph=True)
    g_forward = torch.autograd.grad((cfg.lam * f_star(fwd, cfg.divergence).flatten(1).mean(1)).sum(),
                                    algo.value_params)
    return g_mean, g_forward


def _perturbed(cfg, obs_dim, act_dim):
    algo = ODICE(cfg, obs_dim=obs_dim, act_dim=act_dim, dtype=torch.float64)
    with torch.no_grad():
        for p in algo.value_target.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return algo


def test_projected_backward_part_is_orthogonal_to_forward_gradient():
    cfg = ODICEConfig(seeds=[0, 1], v_hidden=[16, 16], policy_hidden=[8], eta=1.5)
    algo = _perturbed(cfg, 4, 2)
    batch = random_batch(2, 64, 4, 2, seed=5)
    total, aux = algo.value_gradients(batch)
    g_mean, g_forward = _mean_and_forward_parts(algo, batch)
    for k in range(2):
        g_b = torch.cat([(t - m - f)[k].reshape(-1) for t, m, f in zip(total, g_mean, g_forward)])
        g_f = torch.cat([f[k].reshape(-1) for f in g_forward])
        assert g_b.norm() > 1e-6 and g_f.norm() > 1e-6, "both parts must be non-trivial in this test"
        assert abs(torch.dot(g_b, g_f)) <= 1e-10 * g_b.norm() * g_f.norm()
    assert aux["parallel_coef"].dim() == 0


def test_per_layer_projection_is_orthogonal_layer_by_layer():
    cfg = ODICEConfig(seeds=[0], v_hidden=[8, 8], policy_hidden=[8], projection="per_layer", twin_v=False)
    algo = _perturbed(cfg, 3, 1)
    batch = random_batch(1, 32, 3, 1, seed=2)
    total, _ = algo.value_gradients(batch)
    g_mean, g_forward = _mean_and_forward_parts(algo, batch)
    index = {id(p): i for i, p in enumerate(algo.value_params)}
    for group in algo.value.layer_groups():
        ids = [index[id(p)] for p in group]
        g_b = torch.cat([(total[i] - g_mean[i] - g_forward[i]).reshape(-1) for i in ids])
        g_f = torch.cat([g_forward[i].reshape(-1) for i in ids])
        assert abs(torch.dot(g_b, g_f)) <= 1e-10 * g_b.norm() * g_f.norm()
