"""The public Python API on the toy algorithm: rlcore.train / load_config / load_policy / RunResult, how a config
finds its algorithm, and errors that raise instead of exiting."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import REPO

import rlcore
from rlcore.algorithm import ALGORITHMS, spec_for_config
from rlcore.algorithms.toy import ToyConfig
from rlcore.errors import ConfigError, UserError

QUICK = dict(max_steps=30, log_every=10, eval_every=10, ckpt_every=10, tensorboard=False, progress=False)


def test_train_returns_the_run_and_its_policy(tmp_path):
    result = rlcore.train(ToyConfig(**QUICK), run_dir=tmp_path / "run")
    assert isinstance(result, rlcore.RunResult)
    assert result.run_dir == tmp_path / "run" and result.status == "finished"
    assert result.summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    best = result.policy()  # the best evaluation's model
    x = torch.randn(4, ToyConfig().dim)
    latest, step20 = rlcore.load_policy(result.run_dir, "latest"), rlcore.load_policy(result.run_dir, 20)
    assert best(x).shape == (4, 1)
    assert not torch.equal(latest(x), step20(x))  # different checkpoints, different parameters
    assert result.summary["best"]["step"] in (10, 20, 30)
    with pytest.raises(UserError, match="has no checkpoint '7'"):
        rlcore.load_policy(result.run_dir, 7)


def test_load_config_picks_the_class_and_checks_overrides_like_set():
    cfg = rlcore.load_config(REPO / "configs/toy/demo.yaml", max_steps=7, lr="3e-4")
    assert type(cfg) is ToyConfig and cfg.max_steps == 7 and cfg.lr == 3e-4
    with pytest.raises(ConfigError, match="expects a number"):
        rlcore.load_config(REPO / "configs/toy/demo.yaml", lr="fast")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        rlcore.load_config(REPO / "configs/toy/demo.yaml", learning_rate=1e-3)


def test_load_config_needs_the_algo_key(tmp_path):
    (tmp_path / "p.yaml").write_text("max_steps: 3\n")
    with pytest.raises(ConfigError, match="no 'algo:' key"):
        rlcore.load_config(tmp_path / "p.yaml")


def test_top_level_configs_are_the_algorithms_own():
    for name in ("ODICEConfig", "IQLConfig", "BCConfig", "GRPOConfig", "G2RLConfig"):
        cls = getattr(rlcore, name)
        assert dataclasses.is_dataclass(cls) and cls.__name__ == name
        assert spec_for_config(cls()).config is cls


def test_a_config_subclass_finds_its_nearest_registered_base():
    @dataclasses.dataclass
    class MyToy(ToyConfig):
        note: str = "mine"

    assert spec_for_config(MyToy()) is ALGORITHMS.get("toy")
    with pytest.raises(UserError, match="no registered algorithm trains a dict"):
        spec_for_config({})


def test_bad_input_raises_and_never_exits(tmp_path):
    with pytest.raises(ConfigError, match="out of range"):
        rlcore.train(ToyConfig(**{**QUICK, "max_steps": 0}))
    rlcore.train(ToyConfig(**QUICK), run_dir=tmp_path / "run")
    with pytest.raises(UserError, match="already has checkpoints"):
        rlcore.train(ToyConfig(**QUICK), run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match="would change the experiment .*lr"):
        rlcore.train(ToyConfig(**{**QUICK, "lr": 0.5}), run_dir=tmp_path / "run", resume=True)
    resumed = rlcore.train(ToyConfig(**{**QUICK, "max_steps": 40}), run_dir=tmp_path / "run", resume=True)
    assert resumed.summary["step"] == 40 and resumed.summary["resumed_from"] == 30
