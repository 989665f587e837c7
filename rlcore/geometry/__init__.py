"""Gradient geometry shared by O-DICE and G2RL: project, compare and scale per-sample gradient features.

All functions take torch tensors, work batched (no Python loops over samples or groups), keep the input dtype
(except G2RL's feature pass, which accumulates half-precision inputs in float32) and do no host sync.

- :func:`project_orthogonal` (O-DICE's orthogonal update, PCGrad's conflict gate);
- :func:`cosine_matrix`, :func:`pairwise_stats`, :func:`gram_cosines` (geometry diagnostics);
- :func:`pearson`, :func:`spearman` (does a proxy's geometry agree with the gradients'?);
- :func:`token_stats`, :func:`sequence_features` (G2RL's Phi, log-probs and entropies from one LM-head pass);
- :func:`novelty_scores`, :func:`scale_rewards` (G2RL's exploration score and reward shaping);
- :func:`per_sample_grads` (exact, torch.func), :func:`per_sample_grad_gram` (ghost inner products by hooks).
"""

from rlcore.geometry.correlation import average_ranks, pearson, spearman
from rlcore.geometry.features import TokenStats, default_chunk_size, sequence_features, token_stats
from rlcore.geometry.novelty import SCALE_MODES, novelty_scores, scale_rewards
from rlcore.geometry.per_sample import per_sample_grad_gram, per_sample_grads
from rlcore.geometry.projection import project_orthogonal
from rlcore.geometry.similarity import PairStats, cosine_matrix, gram_cosines, pairwise_stats

__all__ = [
    "SCALE_MODES",
    "PairStats",
    "TokenStats",
    "average_ranks",
    "cosine_matrix",
    "default_chunk_size",
    "gram_cosines",
    "novelty_scores",
    "pairwise_stats",
    "pearson",
    "per_sample_grad_gram",
    "per_sample_grads",
    "project_orthogonal",
    "scale_rewards",
    "sequence_features",
    "spearman",
    "token_stats",
]
