"""Evaluation speed: ``rlcore.envs.offline.evaluate`` (episodes in lockstep, one batched policy call per step) against a
sequential loop (one episode after another, one policy call per step), 10 episodes each, same policy and seeds,
compared as wall time per environment step.

The lockstep evaluator saves policy-call overhead, not simulation time (the simulators still step one after
another on CPU), so its gain is bounded by (t_sim + t_policy) / t_sim per step: large for a cheap simulator or a
big policy, small when the simulator dominates. Cases: Pendulum-v1 with a 256-256 MLP (the SAC/TQC actor size)
and a 1024-1024 MLP (O-DICE's policy size), and Hopper-v5 with the shared TQC agent (random 256-256 weights when
the shared data are absent). torch runs on one thread in both paths. Medians of several repeats, interleaved.
Returns of the two paths agree only approximately for MLP policies: a batched matrix product rounds differently
from a one-row one, and the simulators amplify the difference over an episode.

    python benchmarks/evaluation.py [--quick]     # last line: one JSON object
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlcore.envs.offline import SB3Actor, evaluate  # noqa: E402
from rlcore.envs.offline.evaluation import sequential_returns  # noqa: E402

EPISODES = 10
AGENT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "agents" / "tqc-hopper" / "Hopper-v3.zip"


class MLPPolicy:
    """A deterministic tanh-Gaussian-mean policy with random weights (timing only)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, scale: float, seed: int = 0):
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(obs_dim, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, act_dim), torch.nn.Tanh())
        self.scale = scale

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return (self.scale * self.net(torch.as_tensor(obs))).numpy()


class StepCounter:
    """Counts the observations a policy sees (= environment steps of the sequential loop)."""

    def __init__(self, policy):
        self.policy, self.steps = policy, 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.steps += len(obs)
        return self.policy(obs)


def time_case(policy, env_id: str, repeats: int) -> dict:
    """Median wall time per environment step of both paths (episode lengths can differ slightly between them)."""
    seq_times, lock_times = [], []
    for _ in range(repeats):
        counter = StepCounter(policy)
        t = time.perf_counter()
        seq_returns = sequential_returns(counter, env_id, EPISODES, seed=0)
        seq_times.append((time.perf_counter() - t) / counter.steps)
        t = time.perf_counter()
        result = evaluate(policy, env_id, episodes=EPISODES, seed=0)
        lock_times.append((time.perf_counter() - t) / result["env_steps"])
    seq, lock = statistics.median(seq_times), statistics.median(lock_times)
    return {"env_id": env_id, "env_steps_sequential": counter.steps, "env_steps_lockstep": result["env_steps"],
            "sequential_us_per_step": round(seq * 1e6, 1), "lockstep_us_per_step": round(lock * 1e6, 1),
            "speedup": round(seq / lock, 3), "return_mean_sequential": round(float(np.mean(seq_returns)), 2),
            "return_mean_lockstep": round(result["return_mean"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 5 (about a minute)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 5
    hopper = SB3Actor.load(AGENT) if AGENT.is_file() else MLPPolicy(11, 3, 256, 1.0)
    cases = {
        "pendulum_mlp256": (MLPPolicy(3, 1, 256, 2.0), "Pendulum-v1"),
        "pendulum_mlp1024": (MLPPolicy(3, 1, 1024, 2.0), "Pendulum-v1"),
        "hopper_tqc_agent" if AGENT.is_file() else "hopper_mlp256": (hopper, "Hopper-v5"),
    }
    results = {}
    for name, (policy, env_id) in cases.items():
        results[name] = time_case(policy, env_id, repeats)
        r = results[name]
        print(f"{name:18s} sequential {r['sequential_us_per_step']:7.1f} us/step ({r['env_steps_sequential']} steps)"
              f"  lockstep {r['lockstep_us_per_step']:7.1f} us/step ({r['env_steps_lockstep']} steps)  speed-up "
              f"{r['speedup']:.2f}x  mean return {r['return_mean_sequential']:.1f} / {r['return_mean_lockstep']:.1f}")
    print(json.dumps({"benchmark": "evaluation", "episodes": EPISODES, "repeats": repeats, "torch_threads": 1,
                      "cases": results, "speedups": {k: v["speedup"] for k, v in results.items()}}))


if __name__ == "__main__":
    main()
