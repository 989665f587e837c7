"""rlcore: shared machinery (configs, logging, checkpoints, geometry, rollout) for O-DICE and G2RL."""

__version__ = "0.1.0"
