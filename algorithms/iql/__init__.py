"""IQL baseline (``IQLConfig``, ``IQL``)."""

from rlcore.algorithms.iql.iql import IQL, IQLConfig, expectile_loss

__all__ = ["IQL", "IQLConfig", "expectile_loss"]
