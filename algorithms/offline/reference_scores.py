"""Published D4RL normalised scores to compare against (docs/odice.md "Published numbers").

O-DICE: the paper's Table 1 (Mao et al., ICLR 2024). IQL: CORL's reproduction ("last" score, 4 seeds).
"""

from __future__ import annotations

_DATASETS = ["medium", "medium-replay", "medium-expert"]
_ODICE_MUJOCO = {"halfcheetah": [47.4, 44.0, 93.2], "hopper": [86.1, 99.9, 110.8], "walker2d": [84.9, 83.6, 110.8]}
_IQL_MUJOCO = {"halfcheetah": [48.31, 44.46, 94.74], "hopper": [67.53, 97.43, 107.42],
               "walker2d": [80.91, 82.15, 111.72]}
_ANTMAZE = ["umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse"]
_ODICE_ANTMAZE = [94.1, 79.5, 86.0, 82.7, 55.9, 54.0]
_IQL_ANTMAZE = [77.00, 54.25, 65.75, 73.75, 42.00, 30.25]

ODICE_PAPER: dict[str, float] = {
    **{f"{env}-{ds}-v2": score for env, scores in _ODICE_MUJOCO.items() for ds, score in zip(_DATASETS, scores)},
    **{f"antmaze-{ds}-v2": score for ds, score in zip(_ANTMAZE, _ODICE_ANTMAZE)},
}
IQL_CORL: dict[str, float] = {
    **{f"{env}-{ds}-v2": score for env, scores in _IQL_MUJOCO.items() for ds, score in zip(_DATASETS, scores)},
    **{f"antmaze-{ds}-v2": score for ds, score in zip(_ANTMAZE, _IQL_ANTMAZE)},
}


def reference_scores(task: str) -> dict[str, float]:
    """Published scores for ``task`` by source label (the ``rlcore.reference_scores`` plugin of rlcore report)."""
    out = {}
    if task in ODICE_PAPER:
        out["O-DICE (paper)"] = ODICE_PAPER[task]
    if task in IQL_CORL:
        out["IQL (CORL, last)"] = IQL_CORL[task]
    return out
