"""IQL baseline (``IQLConfig``, ``IQL``)."""

from rlcore.algorithms.iql.config import IQLConfig
from rlcore.algorithms.iql.iql import IQL
from rlcore.algorithms.iql.losses import expectile_loss

__all__ = ["IQL", "IQLConfig", "expectile_loss"]
