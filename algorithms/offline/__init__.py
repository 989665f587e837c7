"""The offline RL/IL family's shared machinery: configs, ensemble networks and the Gaussian policy, data
preparation, evaluation, and :func:`offline_algorithm`, which makes an algorithm's whole spec (training,
evaluation, policy loading) from its config and algorithm classes.

Each algorithm is its own small package beside this one (``rlcore.algorithms.odice``, ``.iql``, ``.bc``), laid
out as ``config.py``, ``losses.py``, ``<algo>.py`` and ``spec.py`` (``SPEC = offline_algorithm(...)``, registered by
one entry point).

``prepare_data(cfg, run_dir=None, *, dataset=None, progress=True, device=None) -> PreparedData`` is the data
preparation every offline run goes through (see ``docs/offline-data.md``); it is imported on first use.
"""

from typing import Any

from rlcore.algorithms.offline.config import ImitationConfig, OfflineConfig
from rlcore.algorithms.offline.spec import offline_algorithm

__all__ = ["ImitationConfig", "OfflineConfig", "PreparedData", "offline_algorithm", "prepare_data"]


def __getattr__(name: str) -> Any:
    if name in ("PreparedData", "prepare_data"):  # lazy: the data module imports torch and the simulators
        from rlcore.algorithms.offline import data

        return getattr(data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
