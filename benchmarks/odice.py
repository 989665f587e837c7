"""O-DICE update throughput: our fused update vs the reference implementation's recipe, and K vectorised seeds.

Same data and sizes for both (hopper shapes: obs 11, act 3; twin V 256-256 + LayerNorm; policy 1024-1024;
batch 256; 1 thread by default). The baseline is an idiomatic PyTorch version of the reference recipe
(maoliyuan/ODICE-Pytorch ``orthogonal_true_g_update``): separate nn.Module heads, four V forwards, three
backward passes over flattened gradients, a host sync for the projection coefficient, torch.optim.Adam with its
default implementation, and a MultivariateNormal policy log-likelihood.

    python benchmarks/odice.py [--quick] [--threads 1] [--device cpu] [--no-compile]

The last line printed is one JSON object: reference_recipe_updates_per_s, ours_updates_per_s, speedup,
seeds5_cost_vs_1 (time of one 5-seed update / time of one 1-seed update), the same three for ``compile=true``
(compiled_updates_per_s, compiled_speedup, compiled_seeds5_cost_vs_1; compile warm-up excluded), and the settings.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn

from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.algorithms.odice.losses import f_star

OBS, ACT, BATCH = 11, 3, 256


# ----------------------------------------------------------------------------------------------------------------
# the reference recipe, written plainly


def mlp(dims: list[int], layer_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 2):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if layer_norm:
            layers.append(nn.LayerNorm(dims[i + 1]))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


class TwinV(nn.Module):
    def __init__(self):
        super().__init__()
        self.v1, self.v2 = mlp([OBS, 256, 256, 1], True), mlp([OBS, 256, 256, 1], True)

    def both(self, s: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.v1(s).squeeze(-1), self.v2(s).squeeze(-1)], dim=0)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.both(s).min(dim=0).values


class ReferencePolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp([OBS, 1024, 1024, ACT], False)
        self.log_std = nn.Parameter(torch.zeros(ACT))

    def forward(self, s: torch.Tensor) -> torch.distributions.Distribution:
        std = torch.exp(self.log_std.clamp(-5.0, 2.0))
        return torch.distributions.MultivariateNormal(self.net(s), scale_tril=torch.diag(std))


class ReferenceRecipe:
    def __init__(self, device: torch.device, lam: float = 0.6, eta: float = 1.0):
        self.vf = TwinV().to(device)
        self.vf_target = copy.deepcopy(self.vf).requires_grad_(False)
        self.policy = ReferencePolicy().to(device)
        self.v_opt = torch.optim.Adam(self.vf.parameters(), lr=2e-4)
        self.pi_opt = torch.optim.Adam(self.policy.parameters(), lr=2e-4, weight_decay=1e-4)
        self.lam, self.eta, self.gamma, self.tau = lam, eta, 0.99, 0.005

    def update(self, s, a, r, s2, d) -> None:
        with torch.no_grad():
            target_v, target_v_next = self.vf_target(s), self.vf_target(s2)
        v, v_next = self.vf.both(s), self.vf.both(s2)
        fwd = r + (1.0 - d) * self.gamma * target_v_next - v
        bwd = r + (1.0 - d) * self.gamma * v_next - target_v
        forward_loss = torch.mean(self.lam * f_star(fwd, "pearson_chi2"))
        backward_loss = torch.mean(self.lam * self.eta * f_star(bwd, "pearson_chi2"))
        pi_residual = fwd.detach()
        params = list(self.vf.parameters())
        self.v_opt.zero_grad(set_to_none=True)
        forward_loss.backward(retain_graph=True)
        g_f = [p.grad.clone().reshape(-1) for p in params]
        backward_loss.backward()
        g_b = [p.grad.clone().reshape(-1) - f for p, f in zip(params, g_f)]
        gf, gb = torch.cat(g_f), torch.cat(g_b)
        coef = (torch.dot(gf, gb) / max(torch.dot(gf, gf), 1e-10)).item()
        combined = (1 - coef) * gf + gb
        self.v_opt.zero_grad(set_to_none=True)
        torch.mean((1 - self.lam) * v).backward()
        i = 0
        for p in params:
            p.grad += combined[i:i + p.numel()].reshape(p.shape)
            i += p.numel()
        self.v_opt.step()
        with torch.no_grad():
            for t, o in zip(self.vf_target.parameters(), params):
                t.mul_(1 - self.tau).add_(o, alpha=self.tau)
        weight = torch.clamp(pi_residual, min=0).clamp(max=100.0)
        loss = torch.mean(weight * -self.policy(s).log_prob(a))
        self.pi_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.pi_opt.step()


# ----------------------------------------------------------------------------------------------------------------


def make_data(seeds: int, steps: int, device: torch.device, generator: torch.Generator):
    """``steps`` distinct random batches (hopper-shaped), each with a leading seed dimension."""
    def one():
        return {
            "observations": torch.randn(seeds, BATCH, OBS, generator=generator).to(device),
            "actions": (torch.rand(seeds, BATCH, ACT, generator=generator) * 2 - 1).to(device),
            "rewards": torch.randn(seeds, BATCH, generator=generator).to(device),
            "next_observations": torch.randn(seeds, BATCH, OBS, generator=generator).to(device),
            "terminals": (torch.rand(seeds, BATCH, generator=generator) < 0.01).float().to(device),
        }
    return [one() for _ in range(steps)]


def time_interleaved(runs: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per update for each ``name: (step, batches)``, timing the runs in turn in every repeat so
    that a change in machine load affects them alike."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for step, batches in runs.values():  # warm-up
        for b in batches[:3]:
            step(b)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (step, batches) in runs.items():
            sync()
            t0 = time.perf_counter()
            for b in batches:
                step(b)
            sync()
            times[name].append((time.perf_counter() - t0) / len(batches))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer updates (about a minute on 2 cores)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (saves its warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    n, repeats = (10, 7) if args.quick else (25, 15)
    g = torch.Generator().manual_seed(0)
    one_seed = make_data(1, n, device, g)
    five_seeds = make_data(5, n, device, g)

    reference = ReferenceRecipe(device)
    ours = ODICE(ODICEConfig(seed=0), OBS, ACT, device=device)
    ours5 = ODICE(ODICEConfig(seeds=[0, 1, 2, 3, 4]), OBS, ACT, device=device)
    columns = ("observations", "actions", "rewards", "next_observations", "terminals")
    runs = {
        "reference": (lambda b: reference.update(*(b[k][0] for k in columns)), one_seed),
        "ours": (ours.update, one_seed),
        "ours5": (ours5.update, five_seeds),
    }
    if not args.no_compile:
        compiled = ODICE(ODICEConfig(seed=0, compile=True), OBS, ACT, device=device)
        compiled5 = ODICE(ODICEConfig(seeds=[0, 1, 2, 3, 4], compile=True), OBS, ACT, device=device)
        runs.update(compiled=(compiled.update, one_seed), compiled5=(compiled5.update, five_seeds))
    t = time_interleaved(runs, repeats, device)
    t_ref, t_ours, t_ours5 = t["reference"], t["ours"], t["ours5"]
    nonzero = float(ours.update(one_seed[0])["weight_nonzero"])

    result = {
        "device": str(device),
        "threads": args.threads,
        "batch": BATCH,
        "updates_timed": n * repeats,
        "reference_recipe_updates_per_s": round(1 / t_ref, 2),
        "ours_updates_per_s": round(1 / t_ours, 2),
        "speedup": round(t_ref / t_ours, 3),
        "ours_5seeds_updates_per_s": round(1 / t_ours5, 2),
        "seeds5_cost_vs_1": round(t_ours5 / t_ours, 3),
        **({} if args.no_compile else {
            "compiled_updates_per_s": round(1 / t["compiled"], 2),
            "compiled_speedup": round(t_ref / t["compiled"], 3),
            "compiled_seeds5_cost_vs_1": round(t["compiled5"] / t["compiled"], 3),
        }),
        "policy_rows_with_nonzero_weight": round(nonzero, 3),
        "skip_zero_weight_rows": ours.skip_zero_weight_rows,
    }
    print(f"reference recipe: {1 / t_ref:.1f} updates/s; ours: {1 / t_ours:.1f} updates/s "
          f"({t_ref / t_ours:.2f}x); 5 seeds vectorised: {t_ours5 / t_ours:.2f}x the time of one")
    if not args.no_compile:
        print(f"compiled (compile=true): {1 / t['compiled']:.1f} updates/s ({t_ref / t['compiled']:.2f}x); "
              f"5 seeds: {t['compiled5'] / t['compiled']:.2f}x the time of one")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
