"""The GRPO family's extension points: reward shapers and reward functions, each a name-keyed registry.

Built-ins and plugins register the same way, as entry points (rlcore's own ``pyproject.toml`` declares the
built-ins)::

    [project.entry-points."rlcore.shapers"]
    my_shaper = "my_package.module:SHAPER"        # a ShaperSpec

    [project.entry-points."rlcore.rewards"]
    my_reward = "my_package.module:my_reward"     # f(prompts=, completions=, completion_ids=, **fields) -> floats

A config chooses them by name (``shaper=my_shaper``, ``reward_funcs=[math, my_reward]``). Nothing here imports
torch, so checking a config's names stays cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from rlcore.config import from_dict
from rlcore.errors import ConfigError, UserError
from rlcore.plugins import Registry

SHAPERS: Registry[ShaperSpec] = Registry("rlcore.shapers", "reward shaper")
"""Reward shapers by name (``GRPOConfig.shaper``): each a :class:`ShaperSpec`."""
REWARDS: Registry[Callable[..., Sequence[float | None]]] = Registry("rlcore.rewards", "reward function")
"""Reward functions by name (``GRPOConfig.reward_funcs``), called TRL-style with keyword lists."""


@dataclasses.dataclass(frozen=True)
class ShaperSpec:
    """One registered reward shaper: how to build it and which settings it takes.

    ``make(settings, cfg, dist)`` returns the shaper for a run (an object with ``needs`` and
    ``__call__(groups) -> (shaped rewards, metrics)``, see :mod:`rlcore.algorithms.grpo.shaping`), or None for
    plain GRPO. ``settings`` is a dataclass of the shaper's own options (validated in its ``__post_init__``), or
    None when it has none; ``make`` then gets None.
    """

    make: Callable[[Any, Any, Any], Any]
    settings: type | None = None
    help: str = ""


def is_target(name: str) -> bool:
    """Whether ``name`` has the ``package.module:function`` form (rather than a registered name)."""
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr.isidentifier() and all(p.isidentifier() for p in module.split(".")))


def shaper_spec(name: str) -> ShaperSpec:
    """The registered shaper ``name`` (one-line error listing the registered ones when unknown)."""
    try:
        spec = SHAPERS.get(name)
    except UserError as e:  # a config value: the config's error type, the registry's message
        raise ConfigError(str(e)) from e
    if not isinstance(spec, ShaperSpec):
        raise ConfigError(f"reward shaper '{name}' is registered as a {type(spec).__name__}, not a ShaperSpec; "
                          "register rlcore.algorithms.grpo.registry.ShaperSpec(make=..., settings=...)")
    return spec


def shaper_settings(cfg: Any) -> Any:
    """The settings of ``cfg.shaper``, type-checked: ``cfg.shaper_args`` first, then the config's same-named
    fields (G2RLConfig spells g2rl's settings as its own fields), then the settings' defaults."""
    spec = shaper_spec(cfg.shaper)
    if spec.settings is None:
        if cfg.shaper_args:
            raise ConfigError(f"reward shaper '{cfg.shaper}' takes no settings; remove shaper_args "
                              f"{sorted(cfg.shaper_args)}")
        return None
    names = [f.name for f in dataclasses.fields(spec.settings) if f.init]
    values = {n: getattr(cfg, n) for n in names if hasattr(cfg, n)}
    values.update(cfg.shaper_args)
    return from_dict(spec.settings, values, prefix="shaper_args.")


def build_shaper(cfg: Any, dist: Any) -> Any:
    """The reward shaper ``cfg.shaper`` names, built for this run (None for plain GRPO)."""
    return shaper_spec(cfg.shaper).make(shaper_settings(cfg), cfg, dist)


NO_SHAPER = ShaperSpec(make=lambda settings, cfg, dist: None, help="plain GRPO: the rewards as they are")
"""The shaper named 'none'."""
