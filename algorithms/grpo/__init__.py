"""GRPO for LLM reasoning: pure loss functions, a config, and the trainer behind ``rlcore train grpo``."""

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.losses import aggregate, group_advantages, grpo_loss, kl_k3, loss_units, policy_loss

__all__ = ["GRPOConfig", "aggregate", "group_advantages", "grpo_loss", "kl_k3", "loss_units", "policy_loss"]
