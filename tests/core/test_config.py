from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from rlcore.config import from_dict, load_config, save_yaml, to_dict
from rlcore.config_docs import describe, field_docs
from rlcore.errors import ConfigError
from rlcore.run import TrainConfig


@dataclasses.dataclass
class Inner:
    width: int = 256
    """Hidden width."""
    layer_norm: bool = True
    """LayerNorm after each hidden layer."""


@dataclasses.dataclass
class Example(TrainConfig):
    lam: float = 0.6
    """Lambda."""
    rule: Literal["semi", "true", "orthogonal"] = "orthogonal"
    """Gradient rule."""
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    """Seeds."""
    dataset: str | None = None
    """Dataset path."""
    net: Inner = dataclasses.field(default_factory=Inner)
    """Network."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.lam < 1:
            raise ConfigError(f"config key 'lam' = {self.lam} is out of range; choose a value in (0, 1)")


def test_defaults_and_overrides_are_typed():
    cfg = load_config(Example, overrides=["lam=0.4", "net.width=64", "rule=semi", "seeds=0,1,2",
                                          "dataset=none", "net.layer_norm=false", "max_steps=1_000"])
    assert cfg.lam == 0.4 and isinstance(cfg.lam, float)
    assert cfg.net.width == 64 and cfg.net.layer_norm is False
    assert cfg.rule == "semi" and cfg.seeds == [0, 1, 2] and cfg.dataset is None
    assert cfg.max_steps == 1000


def test_preset_then_flags_then_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("algo: example\nlam: 0.3\nnet:\n  width: 32\nseed: 5\n")
    cfg = load_config(Example, preset, overrides=["lam=0.2"], values={"seed": 7}, algo="example")
    assert (cfg.lam, cfg.net.width, cfg.seed) == (0.2, 32, 7)
    with pytest.raises(ConfigError, match="is for 'example', not 'other'"):
        load_config(Example, preset, algo="other")


def test_yaml_int_accepted_for_float_but_not_string(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("lam: 1\n")
    with pytest.raises(ConfigError, match=r"'lam' = 1.0 is out of range"):
        load_config(Example, preset)
    preset.write_text("max_steps: '100'\n")
    with pytest.raises(ConfigError, match="expects an integer"):
        load_config(Example, preset)


@pytest.mark.parametrize(
    "override, message",
    [
        ("lamda=0.5", r"unknown config key 'lamda' for Example; did you mean 'lam'"),
        ("net.widht=3", r"unknown config key 'net.widht' for Inner; did you mean 'net.width'"),
        ("lam=abc", r"config key 'lam' expects a number, got 'abc'"),
        ("rule=ortho", r"config key 'rule' must be one of \['semi', 'true', 'orthogonal'\]"),
        ("net.layer_norm=maybe", r"config key 'net.layer_norm' expects true/false"),
        ("seeds=0,x", r"config key 'seeds\[1\]' expects an integer"),
        ("max_steps=0", r"config key 'max_steps' = 0 is out of range; choose a value in \[1, inf\)"),
        ("lam", r"not of the form key=value"),
        ("=3", r"empty key"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Example, overrides=[override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Example, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lam: [0.1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(Example, bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Example, bad)
    bad.write_bytes(b"lam: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(Example, bad)


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(Example, overrides=["lam=0.25", "seeds=[3, 4]", "net.width=16", "rule=semi", "dataset=x.h5"])
    assert type(cfg.rule) is str and type(cfg.dataset) is str
    save_yaml(cfg, tmp_path / "config.yaml", algo="example")
    again = load_config(Example, tmp_path / "config.yaml", algo="example")
    assert again == cfg
    assert to_dict(again)["net"] == {"width": 16, "layer_norm": True}


def test_every_field_is_documented():
    docs = field_docs(Example)
    assert docs["lam"] == "Lambda." and docs["max_steps"] == "Number of update steps."
    rows = describe(Example)
    assert ("net.width", "int", "256", "Hidden width.") in rows
    assert all(doc for _, _, _, doc in rows), [r for r in rows if not r[3]]


def test_from_dict_rejects_non_mapping_for_nested():
    with pytest.raises(ConfigError, match="must be a mapping of Inner fields"):
        from_dict(Example, {"net": 3})
