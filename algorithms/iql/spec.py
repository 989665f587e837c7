"""IQL as an rlcore algorithm (``rlcore train iql``, ``rlcore.train(IQLConfig(...))``)."""

from rlcore.algorithms.iql.iql import IQL, IQLConfig
from rlcore.algorithms.offline import offline_algorithm

SPEC = offline_algorithm(name="iql", title="IQL", help="IQL baseline (CORL settings) on an offline dataset",
                         config=IQLConfig, algorithm=IQL)
