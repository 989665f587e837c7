"""Gradient surgery: remove from ``g`` its component along a reference direction (O-DICE, PCGrad)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

Vector = Tensor | Sequence[Tensor]


def project_orthogonal(g: Vector, ref: Vector, eps: float = 1e-10, *, gate: Literal["always", "conflict"] = "always",
                       batch_dims: int | None = None, return_coef: bool = False):
    """``g - c * ref`` with ``c = <g, ref> / max(<ref, ref>, eps)``: the part of ``g`` orthogonal to ``ref``.

    Vectors come in two forms, returned in the same form (a list stays a list, a tuple a tuple):

    - a tensor of shape (..., D): the last dim is the vector; all leading dims are independent vectors
      (``ref`` broadcasts against ``g``, e.g. g (N, D) and ref (D,) projects N vectors off one reference);
    - an equal-length sequence of tensors (e.g. per-parameter gradients), treated as ONE vector: the
      concatenation of every tensor flattened. ``batch_dims`` (default 0) leading dims of each ``g[i]`` index
      independent vectors instead, e.g. K seeds stacked as (K, *param_shape) with ``batch_dims=1`` are projected
      one seed at a time, each over all its parameters. ``ref[i]`` must end with the same vector part as
      ``g[i]``; its leading dims broadcast (so one unbatched ``ref`` can serve every seed).

    For a tensor, ``batch_dims=k`` means the same thing: the first k dims index vectors, the rest is one vector.

    ``gate="always"`` is O-DICE's rule (always remove the parallel part); ``gate="conflict"`` is PCGrad's (remove
    it only where ``<g, ref> < 0``; elsewhere ``c = 0`` and ``g`` comes back unchanged). A zero ``ref`` gives
    ``c = 0`` through the ``eps`` floor. ``c`` stays a tensor of the batch shape (no host sync);
    ``return_coef=True`` returns ``(projected, c)``.

    >>> g, r = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])
    >>> project_orthogonal(g, r)
    tensor([0., 1.])
    >>> project_orthogonal([g, g], [r, -r], return_coef=True)[1]
    tensor(0.)
    """
    if gate not in ("always", "conflict"):
        raise ValueError(f"gate must be 'always' or 'conflict', got {gate!r}")
    is_tensor = isinstance(g, Tensor)
    if is_tensor != isinstance(ref, Tensor):
        raise TypeError("g and ref must both be tensors or both be sequences of tensors")
    gs, rs = ([g], [ref]) if is_tensor else (list(g), list(ref))
    if len(gs) != len(rs) or not gs:
        raise ValueError(f"g and ref must be non-empty sequences of equal length, got {len(gs)} and {len(rs)}")
    if batch_dims is None:
        batch_dims = g.ndim - 1 if is_tensor else 0

    vector_ndims = []
    dot = sq = None
    for i, (gi, ri) in enumerate(zip(gs, rs)):
        k = gi.ndim - batch_dims
        if k < 0 or ri.ndim < k or ri.shape[ri.ndim - k:] != gi.shape[gi.ndim - k:]:
            raise ValueError(f"tensor {i}: g has shape {tuple(gi.shape)} and ref {tuple(ri.shape)}; with "
                             f"batch_dims={batch_dims} their trailing vector parts must match")
        gf, rf = gi.flatten(batch_dims) if k else gi.unsqueeze(-1), ri.flatten(ri.ndim - k) if k else ri.unsqueeze(-1)
        d, s = torch.linalg.vecdot(gf, rf), torch.linalg.vecdot(rf, rf)
        dot, sq = (d, s) if dot is None else (dot + d, sq + s)
        vector_ndims.append(k)

    coef = dot / sq.clamp_min(eps)
    if gate == "conflict":
        coef = torch.where(dot < 0, coef, torch.zeros_like(coef))
    out = [gi - coef.reshape(coef.shape + (1,) * k) * ri for gi, ri, k in zip(gs, rs, vector_ndims)]
    projected = out[0] if is_tensor else type(g)(out) if isinstance(g, tuple) else out
    return (projected, coef) if return_coef else projected
