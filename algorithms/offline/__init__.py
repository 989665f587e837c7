"""The offline RL/IL family's shared machinery: configs, ensemble networks and the Gaussian policy, the
multi-seed sampler, data preparation, evaluation, and :func:`offline_algorithm`, which makes an algorithm's whole
spec (training, evaluation, policy loading) from its config and algorithm classes.

Each algorithm is its own small package beside this one (``rlcore.algorithms.odice``, ``.iql``, ``.bc``) whose
``spec.py`` holds ``SPEC = offline_algorithm(...)``, registered by one entry point.
"""

from rlcore.algorithms.offline.config import ImitationConfig, OfflineConfig
from rlcore.algorithms.offline.spec import offline_algorithm

__all__ = ["ImitationConfig", "OfflineConfig", "offline_algorithm"]
