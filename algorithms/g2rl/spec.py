"""G2RL as an rlcore algorithm (``rlcore train g2rl``, ``rlcore.train(G2RLConfig(...))``): GRPO with
gradient-guided reward shaping (or the EVOL-style baseline) through the trainer's shaper hook."""

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.algorithms.g2rl.shaping import make_shaper
from rlcore.algorithms.grpo.launch import llm_algorithm

SPEC = llm_algorithm(name="g2rl", title="G2RL", help="G2RL: GRPO with gradient-guided reward shaping",
                     config=G2RLConfig, make_shaper=make_shaper)
