"""The trainer's interface to shapers and diagnostics: ``needs`` declares what a step must compute."""

from __future__ import annotations

import pytest
import torch

from rlcore.algorithms.g2rl.shaping import EvolShaper, G2RLShaper
from rlcore.algorithms.grpo.shaping import (
    FEATURES,
    POOLED_HIDDEN,
    GeometryDiagnostics,
    Groups,
    geometry_diagnostics,
    needs_of,
    novelty_of,
)
from rlcore.geometry import novelty_scores


def test_needs_are_declared_and_combined():
    assert needs_of([G2RLShaper(), GeometryDiagnostics(enabled=False)]) == {FEATURES}
    assert needs_of([EvolShaper(), GeometryDiagnostics(enabled=False)]) == {POOLED_HIDDEN}
    assert needs_of([EvolShaper(embedder=object()), GeometryDiagnostics(enabled=False)]) == frozenset()
    assert needs_of([None, GeometryDiagnostics()]) == {FEATURES}
    assert needs_of([EvolShaper(), GeometryDiagnostics()]) == {FEATURES, POOLED_HIDDEN}

    class Odd:
        needs = frozenset({"logits"})

    with pytest.raises(ValueError, match="unknown needs"):
        needs_of([Odd()])


def test_novelty_is_computed_once_from_phi_and_shared():
    g = torch.Generator().manual_seed(0)
    rewards = torch.tensor([[1.0, -1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    phi = torch.randn(2, 4, 5, generator=g)
    groups = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(2, 4, dtype=torch.bool),
                    texts=[["x"] * 4] * 2, features=phi)
    shaped, _ = G2RLShaper("literal", lam=1.0)(groups)  # the shaper computes nu from Phi and keeps it
    torch.testing.assert_close(groups.novelty, novelty_scores(phi, rewards))
    assert novelty_of(groups) is groups.novelty
    diag = geometry_diagnostics(groups, shaped)
    torch.testing.assert_close(diag["mean_nu"], groups.novelty.mean())
    no_phi = Groups(rewards=rewards, correct=rewards > 0, answered=torch.ones(2, 4, dtype=torch.bool),
                    texts=[["x"] * 4] * 2)
    assert novelty_of(no_phi) is None and "mean_nu" not in geometry_diagnostics(no_phi, rewards)
    with pytest.raises(ValueError, match="needs the features"):
        G2RLShaper()(no_phi)
