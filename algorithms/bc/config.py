"""Behaviour cloning's config: the offline family's shared settings, nothing of its own."""

from __future__ import annotations

import dataclasses

from rlcore.algorithms.offline.config import OfflineConfig


@dataclasses.dataclass
class BCConfig(OfflineConfig):
    """Behaviour cloning: maximum likelihood of the dataset actions under the same Gaussian policy."""
