"""GRPO as an rlcore algorithm (``rlcore train grpo``, ``rlcore.train(GRPOConfig(...))``)."""

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.launch import llm_algorithm

SPEC = llm_algorithm(name="grpo", title="GRPO", help="GRPO on verifiable math problems (plain group-normalised "
                     "advantages)", config=GRPOConfig)
