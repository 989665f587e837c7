"""A reward shaper plugin for rlcore's GRPO: reward exploration by the policy's own uncertainty.

``shaped_i = r_i + coef * H_i``, where ``H_i`` is the mean token entropy (nats) of response i under the policy
that sampled it, so that among responses with the same reward the less certain ones get the larger advantage.
The trainer hands the entropies over because the shaper asks for them (``needs = {"token_entropies"}``); nothing
else is computed for it. Install it (``pip install .``) and choose it by name::

    rlcore train grpo --config configs/grpo/tiny-arith.yaml --set shaper=entropy --set shaper_args.coef=0.05
"""

from __future__ import annotations

import dataclasses

from rlcore.algorithms.grpo.registry import ShaperSpec
from rlcore.config import check_range


@dataclasses.dataclass
class EntropySettings:
    """Settings of the entropy shaper (``shaper_args``)."""

    coef: float = 0.1
    """Reward per nat of mean token entropy."""

    def __post_init__(self) -> None:
        check_range("coef", self.coef, low=0.0)


class EntropyShaper:
    """``shaper(groups) -> (r + coef * mean token entropy (G, m), metrics)``."""

    needs = frozenset({"token_entropies"})

    def __init__(self, coef: float):
        self.coef = coef

    def __call__(self, groups):
        mask = groups.response_mask.to(groups.token_entropies.dtype)
        mean_entropy = (groups.token_entropies * mask).sum(-1) / mask.sum(-1).clamp_min(1)  # (G, m)
        shaped = groups.rewards + self.coef * mean_entropy.to(groups.rewards.dtype)
        return shaped, {"mean_entropy": mean_entropy.mean()}


SHAPER = ShaperSpec(make=lambda settings, cfg, dist: EntropyShaper(settings.coef), settings=EntropySettings,
                    help="reward bonus for the policy's mean token entropy over the response")
