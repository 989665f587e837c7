"""O-DICE as an rlcore algorithm (``rlcore train odice``, ``rlcore.train(ODICEConfig(...))``)."""

from rlcore.algorithms.odice.config import ODICEConfig
from rlcore.algorithms.odice.odice import ODICE
from rlcore.algorithms.offline import offline_algorithm

SPEC = offline_algorithm(name="odice", title="O-DICE", help="O-DICE (orthogonal-gradient DICE) on an offline dataset",
                         config=ODICEConfig, algorithm=ODICE)
