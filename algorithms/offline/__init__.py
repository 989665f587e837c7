"""The offline RL/IL family's shared machinery: configs, ensemble networks and the Gaussian policy, the
multi-seed sampler, data preparation, evaluation, and the training entry used by O-DICE, IQL and BC.

Each algorithm is its own small package beside this one (``rlcore.algorithms.odice``, ``.iql``, ``.bc``) and
one line of :data:`rlcore.algorithms.offline.train.ALGORITHMS`.
"""

from rlcore.algorithms.offline.config import ImitationConfig, OfflineConfig

__all__ = ["ImitationConfig", "OfflineConfig"]
