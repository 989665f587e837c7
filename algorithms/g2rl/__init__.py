"""G2RL: gradient-guided reward shaping for GRPO, exploration baselines, and a TRL adapter."""

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.algorithms.g2rl.shaping import EvolShaper, G2RLShaper, make_shaper, semantic_novelty_rewards

__all__ = ["EvolShaper", "G2RLConfig", "G2RLShaper", "make_shaper", "semantic_novelty_rewards"]
