"""A toy regression "algorithm": the smallest real user of the training loop (tests, kill/resume checks)."""

from algorithms.toy.toy import ToyConfig, ToyRegression, ToySampler

__all__ = ["ToyConfig", "ToyRegression", "ToySampler"]
