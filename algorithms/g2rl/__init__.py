"""G2RL: gradient-guided reward shaping for GRPO, exploration baselines, and a TRL adapter."""

from rlcore.algorithms.g2rl.config import EvolSettings, G2RLConfig, G2RLSettings
from rlcore.algorithms.g2rl.shaping import EvolShaper, G2RLShaper, semantic_novelty_rewards

__all__ = ["EvolSettings", "EvolShaper", "G2RLConfig", "G2RLSettings", "G2RLShaper", "semantic_novelty_rewards"]
