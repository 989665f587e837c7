"""Behaviour cloning as an rlcore algorithm (``rlcore train bc``, ``rlcore.train(BCConfig(...))``)."""

from rlcore.algorithms.bc.bc import BC, BCConfig
from rlcore.algorithms.offline import offline_algorithm

SPEC = offline_algorithm(name="bc", title="BC", help="behaviour cloning baseline on an offline dataset",
                         config=BCConfig, algorithm=BC)
