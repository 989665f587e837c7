"""Reward shapers by name: the registry, their settings in the config, what a shaper may ask the trainer for,
``train grpo --set shaper=g2rl`` against the g2rl preset, and a shaper plugin installed outside the repo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO, run_cli  # noqa: E402

import rlcore  # noqa: E402
from rlcore.algorithms.g2rl.config import G2RLConfig, G2RLSettings  # noqa: E402
from rlcore.algorithms.grpo import trainer as trainer_module  # noqa: E402
from rlcore.algorithms.grpo.config import GRPOConfig  # noqa: E402
from rlcore.algorithms.grpo.registry import SHAPERS, ShaperSpec, shaper_settings  # noqa: E402
from rlcore.algorithms.grpo.trainer import GRPOTrainer  # noqa: E402
from rlcore.config import load_config, save_yaml  # noqa: E402
from rlcore.distributed import Distributed  # noqa: E402
from rlcore.errors import ConfigError  # noqa: E402
from rlcore.logging import read_metrics  # noqa: E402

PLUGIN = REPO / "examples" / "plugins" / "entropy_shaper"
QUICK = ["model=tiny", "eval_dataset=", "export_model=false", "tensorboard=false", "progress=false"]
TINY = dict(model="tiny", dataset="arith", eval_dataset="", arith_kinds=["sum"], prompt_format="plain",
            dataset_limit=16, prompts_per_step=2, group_size=4, max_new_tokens=5, mini_batch_size=4,
            micro_batch_size=4, logprob_batch_size=8, lr=1e-3, lr_schedule="constant", warmup_ratio=0.0, beta=0.0,
            weight_decay=0.0, device="cpu", export_model=False, tensorboard=False, progress=False,
            geometry_diagnostics=False)


def test_unknown_shaper_is_one_line_listing_the_registered():
    assert {"none", "g2rl", "evol"} <= set(SHAPERS.names())
    with pytest.raises(ConfigError) as info:
        load_config(GRPOConfig, overrides=["shaper=g2lr"])
    message = str(info.value)
    assert "\n" not in message and "did you mean g2rl" in message
    assert all(name in message.split("registered:")[1] for name in ("evol", "g2rl", "none"))


def test_settings_come_from_shaper_args_or_the_presets_fields(tmp_path):
    grpo = load_config(GRPOConfig, overrides=["shaper=g2rl", "shaper_args.lam=0.5", "shaper_args.scaler=centered"])
    g2rl = load_config(G2RLConfig, overrides=["lam=0.5", "scaler=centered"])
    assert shaper_settings(grpo) == shaper_settings(g2rl) == G2RLSettings("centered", 0.5, 3.0)
    assert grpo.shaper_args == {"lam": 0.5, "scaler": "centered"}  # typed, as config.yaml records them
    save_yaml(grpo, tmp_path / "config.yaml", algo="grpo")
    assert load_config(GRPOConfig, tmp_path / "config.yaml").shaper_args == grpo.shaper_args
    assert shaper_settings(GRPOConfig(shaper="g2rl")) == G2RLSettings()  # the g2rl preset's defaults
    with pytest.raises(ConfigError, match="lam"):
        GRPOConfig(shaper="g2rl", shaper_args={"lam": -1.0})
    with pytest.raises(ConfigError, match="'shaper_args.lamda'.*did you mean 'shaper_args.lam'"):
        load_config(GRPOConfig, overrides=["shaper=g2rl", "shaper_args.lamda=1"])
    with pytest.raises(ConfigError, match="takes no settings"):
        GRPOConfig(shaper="none", shaper_args={"lam": 1.0})


def test_grpo_with_shaper_g2rl_is_the_g2rl_preset(tmp_path):
    """The same 2 steps, logged identically (every metric but timings), from either preset."""
    quick = [*QUICK, "max_steps=2", "dataset_limit=32", "prompts_per_step=2", "group_size=4", "mini_batch_size=8",
             "micro_batch_size=8"]  # the same smaller batch on both sides: a quick test
    grpo = load_config(GRPOConfig, REPO / "configs/grpo/tiny-arith.yaml", [*quick, "shaper=g2rl"], algo="grpo")
    g2rl = load_config(G2RLConfig, REPO / "configs/g2rl/tiny-arith.yaml", quick, algo="g2rl")
    rlcore.train(grpo, run_dir=tmp_path / "grpo")
    rlcore.train(g2rl, run_dir=tmp_path / "g2rl")

    def logged(run):
        return [{k: v for k, v in r.items() if not k.startswith("time")} for r in read_metrics(tmp_path / run)]

    assert logged("grpo") == logged("g2rl")
    assert len(logged("grpo")) == 2 and all("shaping/shaping_delta" in r for r in logged("grpo"))


class Spy:
    """A shaper that keeps the groups it was given and shapes nothing."""

    def __init__(self, needs):
        self.needs, self.seen = frozenset(needs), []

    def __call__(self, groups):
        self.seen.append(groups)
        return groups.rewards, {}


@pytest.mark.parametrize("need", ["token_entropies", "logprobs"])
def test_a_shaper_gets_what_it_asks_for_and_nothing_else_is_computed(need, monkeypatch):
    passes = []
    real_pass = trainer_module.sequence_pass

    def recording_pass(*args, **kwargs):
        out = real_pass(*args, **kwargs)
        passes.append((kwargs["features"], kwargs["pooled"], out))
        return out

    monkeypatch.setattr(trainer_module, "sequence_pass", recording_pass)
    torch.manual_seed(0)
    spy = Spy({need})
    trainer = GRPOTrainer(GRPOConfig(**TINY), Distributed("cpu"), shaper=spy)
    trainer.update([0, 1])
    (groups,) = spy.seen
    assert [(f, p) for f, p, _ in passes] == [(False, False)]  # no Phi, no pooled hidden states
    assert groups.features is None and groups.pooled_hidden is None
    given, other = (groups.token_entropies, groups.logprobs) if need == "token_entropies" else \
        (groups.logprobs, groups.token_entropies)
    assert other is None
    out = passes[0][2]
    expected = out.entropy if need == "token_entropies" else out.logprobs
    mask = groups.response_mask
    assert given.shape == mask.shape == (2, 4, expected.shape[1])
    torch.testing.assert_close(given[mask], expected.view(2, 4, -1)[mask])


def test_the_example_plugin_shaper_registered_in_process():
    """The plugin's module, registered with SHAPERS.register (the installed path is the slow test below)."""
    sys.path.insert(0, str(PLUGIN))
    try:
        import entropy_shaper
    finally:
        sys.path.remove(str(PLUGIN))
    SHAPERS.register("entropy", entropy_shaper.SHAPER)
    try:
        assert isinstance(SHAPERS.get("entropy"), ShaperSpec)
        torch.manual_seed(0)
        cfg = GRPOConfig(**TINY, shaper="entropy", shaper_args={"coef": 0.5})
        trainer = GRPOTrainer(cfg, Distributed("cpu"))
        metrics = trainer.update([0, 1])
        # shaped = r + coef * H, and means are linear
        torch.testing.assert_close(metrics["shaped_reward"],
                                   metrics["reward"] + 0.5 * metrics["shaping/mean_entropy"])
        assert metrics["shaping/mean_entropy"] > 0
        with pytest.raises(ConfigError, match="coef"):
            GRPOConfig(**TINY, shaper="entropy", shaper_args={"coef": -1.0})
    finally:
        SHAPERS._added.pop("entropy")


@pytest.mark.slow
def test_plugin_installed_outside_the_repo_works_in_train_and_ablate(tmp_path):
    source = tmp_path / "entropy_shaper"
    shutil.copytree(PLUGIN, source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "uninstall", "-y", "rlcore-entropy-shaper"], capture_output=True)  # a crashed run's leftover
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)], check=True,
                   cwd=tmp_path, capture_output=True, timeout=300)
    try:
        quick = [a for q in ["max_steps=1", "shaper=entropy", "shaper_args.coef=0.5", *QUICK] for a in ("--set", q)]
        result = run_cli("train", "grpo", "--config", "configs/grpo/tiny-arith.yaml", *quick, "--run-dir",
                         str(tmp_path / "run"), timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        (record,) = read_metrics(tmp_path / "run")
        assert "shaping/mean_entropy" in record
        spec = tmp_path / "spec.yaml"
        spec.write_text(json.dumps({"base": str(REPO / "configs/grpo/tiny-arith.yaml"), "seeds": [0],
                                    "set": {"max_steps": 1, "eval_dataset": "", "model": "tiny",
                                            "export_model": False, "tensorboard": False},
                                    "grid": {"shaper": ["none", "entropy"]}, "metric": "train/reward"}))
        result = run_cli("ablate", str(spec), "--out", str(tmp_path / "sweep"), timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        with_plugin = read_metrics(tmp_path / "sweep" / "shaper=entropy" / "seed_0")
        assert "shaping/mean_entropy" in with_plugin[0]
        assert "shaping/mean_entropy" not in read_metrics(tmp_path / "sweep" / "shaper=none" / "seed_0")[0]
    finally:
        subprocess.run([*pip, "uninstall", "-y", "rlcore-entropy-shaper"], check=True, capture_output=True)
