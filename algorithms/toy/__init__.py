"""A toy regression "algorithm": the smallest real user of the training loop (tests, kill/resume checks)."""

from rlcore.algorithms.toy.toy import ToyConfig, ToyRegression, ToySampler

__all__ = ["ToyConfig", "ToyRegression", "ToySampler"]
