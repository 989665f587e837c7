"""evaluate(): lockstep episodes equal a sequential loop, one batched policy call per step, determinism by seed,
scores, success rate, the one-time simulator warning, and the shared TQC Hopper agent."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import shared_data

from rlcore.envs.offline import (
    PendulumSwingUp,
    SB3Actor,
    SimulatorMismatchWarning,
    evaluate,
    make_env,
    normalized_score,
)
from rlcore.envs.offline import simulator as simulator_module
from rlcore.envs.offline.evaluation import sequential_returns
from rlcore.errors import UserError


class CountingPolicy:
    def __init__(self, policy):
        self.policy, self.batch_sizes = policy, []

    def __call__(self, obs):
        self.batch_sizes.append(len(obs))
        return self.policy(obs)


def test_lockstep_equals_sequential_and_batches_the_policy():
    policy = CountingPolicy(PendulumSwingUp())
    result = evaluate(policy, "Pendulum-v1", episodes=6, seed=11)
    np.testing.assert_allclose(result["returns"], sequential_returns(PendulumSwingUp(), "Pendulum-v1", 6, 11),
                               rtol=1e-9)
    assert policy.batch_sizes == [6] * 200  # one call per step for all six episodes
    assert result["lengths"] == [200] * 6 and result["env_steps"] == 1200
    assert result["return_mean"] == pytest.approx(np.mean(result["returns"]))
    assert result["return_stderr"] == pytest.approx(np.std(result["returns"], ddof=1) / np.sqrt(6))
    assert result["normalized_score_mean"] is None and result["success_rate"] is None


def test_fewer_envs_than_episodes_gives_the_same_episodes():
    all_at_once = evaluate(PendulumSwingUp(), "Pendulum-v1", episodes=5, seed=2)
    two_at_a_time = evaluate(PendulumSwingUp(), "Pendulum-v1", episodes=5, seed=2, num_envs=2)
    assert all_at_once["returns"] == two_at_a_time["returns"]


def test_deterministic_by_seed_and_scored_for_tasks():
    first = evaluate(PendulumSwingUp(), "pendulum-scripted-v0", episodes=4, seed=0)
    again = evaluate(PendulumSwingUp(), "pendulum-scripted-v0", episodes=4, seed=0)
    other = evaluate(PendulumSwingUp(), "pendulum-scripted-v0", episodes=4, seed=1)
    assert first["returns"] == again["returns"] and first["returns"] != other["returns"]
    scores = normalized_score("pendulum-scripted-v0", np.array(first["returns"]))
    assert first["normalized_score_mean"] == pytest.approx(scores.mean())
    assert first["normalized_score_stderr"] == pytest.approx(scores.std(ddof=1) / 2)


class Corridor(gym.Env):
    """Walk right to reach x >= 3 within 6 steps; reports info["success"]."""

    observation_space = gym.spaces.Box(-10, 10, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1, 1)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += float(action[0])
        self.t += 1
        success = self.x >= 3
        return np.array([self.x], np.float32), float(success), success, self.t >= 6, {"success": success}


def test_success_rate_and_uneven_episode_lengths():
    result = evaluate(lambda obs: np.sign(obs - 0.0).astype(np.float32), Corridor, episodes=20, seed=0)
    starts = [Corridor().reset(seed=i)[0][0] for i in range(20)]
    expected = [x > 0 for x in starts]  # walking away from the goal from x < 0, towards it from x > 0
    assert result["success_rate"] == pytest.approx(np.mean(expected))
    assert all(length <= 6 for length in result["lengths"])


def test_policies_may_return_tensors():
    as_numpy = evaluate(PendulumSwingUp(), "Pendulum-v1", episodes=2)
    as_tensor = evaluate(lambda obs: torch.from_numpy(PendulumSwingUp()(obs)), "Pendulum-v1", episodes=2)
    assert as_numpy["returns"] == as_tensor["returns"]


def test_bad_policy_output_is_a_clear_error():
    message = r"policy returned actions of shape \(3,\) for 3 observations; expected \(3, 1\)"
    with pytest.raises(UserError, match=message):
        evaluate(lambda obs: np.zeros(len(obs)), "Pendulum-v1", episodes=3)


def test_simulator_difference_is_warned_once(monkeypatch):
    monkeypatch.setattr(simulator_module, "_warned", set())
    policy = lambda obs: np.zeros((len(obs), 3), np.float32)  # noqa: E731
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(policy, "hopper-medium-v2", episodes=2, max_episode_steps=5)
        evaluate(policy, "hopper-medium-v2", episodes=2, max_episode_steps=5)
    mismatch = [w for w in caught if issubclass(w.category, SimulatorMismatchWarning)]
    assert len(mismatch) == 1 and "Hopper-v5" in str(mismatch[0].message)


def test_make_env_seed_makes_first_reset_reproducible():
    a, b = make_env("Pendulum-v1", seed=3), make_env("Pendulum-v1", seed=3)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


@pytest.mark.filterwarnings("ignore::rlcore.envs.offline.simulator.SimulatorMismatchWarning")
def test_shared_tqc_hopper_agent_scores_as_an_expert():
    actor = SB3Actor.load(shared_data("agents", "tqc-hopper", "Hopper-v3.zip"))
    result = evaluate(actor, "hopper-expert-v2", episodes=10, seed=0)
    assert result["normalized_score_mean"] > 80, result
