"""rlcore: offline RL (O-DICE, IQL, BC) and LLM reasoning RL (GRPO, G2RL) on one shared core.

The front door (importing ``rlcore`` loads no torch; each name below is imported when first used)::

    import rlcore
    cfg = rlcore.load_config("configs/odice/demo.yaml", max_steps=1000)
    result = rlcore.train(cfg)                  # -> rlcore.RunResult(run_dir, summary, status)
    policy = result.policy("best")              # = rlcore.load_policy(result.run_dir, "best")

See docs/python-api.md.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": "rlcore.api:train",
    "load_config": "rlcore.api:load_config",
    "load_policy": "rlcore.api:load_policy",
    "RunResult": "rlcore.api:RunResult",
    "ODICEConfig": "rlcore.algorithms.odice.config:ODICEConfig",
    "IQLConfig": "rlcore.algorithms.iql:IQLConfig",
    "BCConfig": "rlcore.algorithms.bc:BCConfig",
    "GRPOConfig": "rlcore.algorithms.grpo.config:GRPOConfig",
    "G2RLConfig": "rlcore.algorithms.g2rl.config:G2RLConfig",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """PEP 562: import the public names on first use, so that ``import rlcore`` stays light."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rlcore' has no attribute '{name}'")
    from rlcore.plugins import load_target

    value = load_target(target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
