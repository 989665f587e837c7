"""Task registry: D4RL reference scores, normalised scores, simulators and the D4RL observation adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_data

from rlcore.envs.offline import Task, all_tasks, evaluate, get_task, make_env, normalized_score, register_task
from rlcore.envs.offline.adapters import D4RL_ANTMAZE_MAPS
from rlcore.envs.offline.policies import RandomPolicy
from rlcore.envs.offline.registry import PENDULUM_RANDOM_RETURN, d4rl_reference_scores
from rlcore.errors import UserError

# (random, expert) returns from D4RL infos.py as listed in docs/odice.md "Published numbers"
SPEC_REFERENCES = {
    "halfcheetah-medium-v2": (-280.178953, 12135.0), "hopper-medium-replay-v2": (-20.272305, 3234.3),
    "walker2d-medium-expert-v2": (1.629008, 4592.3), "ant-medium-v2": (-325.6, 3879.7),
    "antmaze-large-play-v2": (0.0, 1.0), "kitchen-mixed-v0": (0.0, 4.0),
    "pen-human-v1": (96.262799, 3076.8331017826877), "hammer-cloned-v1": (-274.856578, 12794.134825156867),
    "relocate-expert-v1": (-6.425911, 4233.877797728884), "door-human-v1": (-56.512833, 2880.5693087298737),
}


@pytest.mark.parametrize("name", sorted(SPEC_REFERENCES))
def test_normalized_score_matches_d4rl_formula(name):
    low, high = SPEC_REFERENCES[name]
    assert normalized_score(name, low) == pytest.approx(0.0, abs=1e-9)
    assert normalized_score(name, high) == pytest.approx(100.0)
    returns = np.array([low, (low + high) / 2, high + (high - low)])
    np.testing.assert_allclose(normalized_score(name, returns), [0.0, 50.0, 200.0])


def test_known_values():
    assert normalized_score("hopper-medium-v2", 1600.0) == pytest.approx(100 * (1600 + 20.272305) / 3254.572305)
    assert normalized_score("antmaze-umaze-v2", 0.941) == pytest.approx(94.1)


def test_every_d4rl_name_is_a_task():
    shipped = d4rl_reference_scores()
    assert len(shipped) == 147
    for name, (low, high) in shipped.items():
        assert normalized_score(name, [low, high]) == pytest.approx([0.0, 100.0], abs=1e-9), name
    table = json.loads(shared_data("d4rl", "ref_scores.json").read_text())
    assert {n: (table["REF_MIN_SCORE"][n], table["REF_MAX_SCORE"][n]) for n in table["REF_MIN_SCORE"]} == shipped


def test_unknown_task_suggests_close_names():
    with pytest.raises(UserError, match="unknown task 'hopper-medium-v9'; did you mean hopper-medium-v"):
        normalized_score("hopper-medium-v9", 1.0)


def test_register_custom_task():
    task = register_task(Task(name="test-custom-v0", ref_min_score=-10.0, ref_max_score=30.0, env_id="Pendulum-v1"))
    assert normalized_score("test-custom-v0", 10.0) == pytest.approx(50.0)
    assert get_task("test-custom-v0") is task and "test-custom-v0" in all_tasks()
    with pytest.raises(UserError, match="already registered"):
        register_task(task)
    with pytest.raises(UserError, match="must exceed"):
        register_task(Task(name="test-bad-v0", ref_min_score=1.0, ref_max_score=1.0))


def test_pendulum_reference_is_the_random_policy_mean():
    env = make_env("Pendulum-v1")
    result = evaluate(RandomPolicy(env.action_space, seed=0), "pendulum-scripted-v0", episodes=100, seed=1000)
    assert abs(result["return_mean"] - PENDULUM_RANDOM_RETURN) < 4 * result["return_stderr"]
    assert abs(result["normalized_score_mean"]) < 4 * result["normalized_score_stderr"]


MAPPED = ["hopper-medium-v2", "halfcheetah-expert-v2", "walker2d-random-v2", "ant-medium-v2", "antmaze-umaze-v2",
          "antmaze-large-diverse-v2", "pen-human-v1", "door-cloned-v1", "hammer-expert-v1", "relocate-human-v1"]


@pytest.mark.parametrize("name", MAPPED)
def test_simulators_have_the_dataset_sizes(name):
    task = get_task(name)
    env = make_env(name, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (task.obs_dim,) and env.action_space.shape == (task.act_dim,)
    assert env.spec.max_episode_steps == task.max_episode_steps
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (task.obs_dim,) and np.all(np.isfinite(obs))


def test_d4rl_episode_limits():
    limits = {n: get_task(n).max_episode_steps for n in ("pen-human-v1", "door-human-v1", "antmaze-umaze-v2",
                                                           "antmaze-medium-play-v2", "kitchen-partial-v0")}
    assert limits == {"pen-human-v1": 100, "door-human-v1": 200, "antmaze-umaze-v2": 700,
                      "antmaze-medium-play-v2": 1000, "kitchen-partial-v0": 280}


def test_unmapped_tasks_explain_why():
    assert get_task("maze2d-umaze-v1").env_id is None
    with pytest.raises(UserError, match="task 'carla-lane-v0' has no simulator here .*normalized_score works"):
        make_env("carla-lane-v0")


def test_ant_adapter_pads_zero_contact_forces():
    ours = make_env("ant-medium-v2")
    plain = make_env("Ant-v5", include_cfrc_ext_in_observation=False, contact_cost_weight=0.0)
    a, _ = ours.reset(seed=3)
    b, _ = plain.reset(seed=3)
    np.testing.assert_array_equal(a[:27], b)
    assert a.shape == (111,) and not a[27:].any()


def test_antmaze_adapter_reproduces_d4rl_geometry_and_rules():
    env = make_env("antmaze-medium-play-v2")
    obs, _ = env.reset(seed=0)
    layout = D4RL_ANTMAZE_MAPS["medium"]
    # starts at D4RL's origin (the start cell) with +-0.1 position noise
    assert np.all(np.abs(obs[:2]) <= 0.1 + 1e-9) and obs.shape == (29,)
    # every wall of D4RL's map sits at (4 j, 4 i) - start in D4RL's frame
    model = env.unwrapped.ant_env.model
    blocks = np.array([model.geom(g).pos[:2] for g in range(model.ngeom) if model.geom(g).name.startswith("block_")])
    start = np.array([1, 1])
    walls = np.array([[4.0 * (j - start[1]), 4.0 * (i - start[0])] for i, row in enumerate(layout)
                      for j, cell in enumerate(row) if cell == 1])
    ours = blocks - env.origin
    assert len(ours) == len(walls)
    assert {tuple(np.round(w, 6)) for w in walls} == {tuple(np.round(w, 6)) for w in ours}
    # goal: D4RL's goal cell (row 6, column 6) plus noise in [0, 1.5) per axis
    goal_cell = np.array([4.0 * (6 - 1), 4.0 * (6 - 1)])
    assert np.all(env.goal >= goal_cell) and np.all(env.goal < goal_cell + 1.5)
    # reaching the goal gives reward 1, ends the episode and counts as a success
    ant = env.unwrapped.ant_env
    qpos, qvel = ant.data.qpos.copy(), ant.data.qvel.copy()
    qpos[:2] = env.goal + env.origin
    ant.set_state(qpos, qvel)
    obs, reward, terminated, truncated, info = env.step(np.zeros(8))
    assert reward == 1.0 and terminated and info["success"]
    np.testing.assert_allclose(obs[:2], env.goal, atol=0.5)


def test_kitchen_adapter_or_clear_error():
    try:
        env = make_env("kitchen-mixed-v0")
    except UserError as e:  # gymnasium-robotics 1.4.2 + mujoco 4 cannot build FrankaKitchen
        assert "FrankaKitchen" in str(e) and "mujoco 3.x" in str(e)
        return
    obs, _ = env.reset(seed=0)
    assert obs.shape == (60,)
    assert obs[30 + 22] == pytest.approx(-0.75)  # microwave goal at qpos index 22
    assert obs[30 + 19] == 0.0  # the slide cabinet is not part of kitchen-mixed
