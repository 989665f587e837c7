"""G2RL as an rlcore algorithm (``rlcore train g2rl``, ``rlcore.train(G2RLConfig(...))``): GRPO whose config
defaults to ``shaper=g2rl`` (gradient-guided reward shaping; ``shaper=evol`` is the EVOL-style baseline)."""

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.algorithms.grpo.launch import llm_algorithm

SPEC = llm_algorithm(name="g2rl", title="G2RL", help="G2RL: GRPO with gradient-guided reward shaping",
                     config=G2RLConfig)
