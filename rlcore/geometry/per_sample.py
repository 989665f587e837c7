"""Per-sample parameter gradients: exact ones through ``torch.func`` (reference) and their Gram matrix by hooks.

Convention for both: ``loss_fn(model, batch) -> Tensor[B]`` returns per-sample losses, ``batch`` is a tensor or a
tuple of tensors whose first dim indexes samples, and sample i's loss depends only on sample i (no batch
statistics: put BatchNorm/dropout models in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

Batch = Tensor | tuple[Tensor, ...]
LossFn = Callable[[nn.Module, Batch], Tensor]


class _Loss(nn.Module):
    """Wraps ``loss_fn(model, batch)`` as a module so ``functional_call`` can swap the model's parameters."""

    def __init__(self, model: nn.Module, loss_fn: LossFn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Batch) -> Tensor:
        return self.loss_fn(self.model, batch)


def _batch_size(batch: Batch) -> int:
    return (batch if isinstance(batch, Tensor) else batch[0]).shape[0]


def per_sample_grads(model: nn.Module, loss_fn: LossFn, batch: Batch) -> dict[str, Tensor]:
    """Exact per-sample gradients ``{name: (B, *param.shape)}`` of every parameter that requires grad.

    ``torch.func.vmap(grad(...))`` over ``functional_call``: one sample at a time in the vectorised sense, each
    seen by ``loss_fn`` as a batch of one. Memory is B x (number of parameters): this is the reference path;
    :func:`per_sample_grad_gram` gives inner products without materialising it.

    >>> net = nn.Linear(3, 1)
    >>> grads = per_sample_grads(net, lambda m, x: m(x).squeeze(-1), torch.randn(5, 3))
    >>> {k: tuple(v.shape) for k, v in grads.items()}
    {'weight': (5, 1, 3), 'bias': (5, 1)}
    """
    wrapper = _Loss(model, loss_fn)
    params = {k: v.detach() for k, v in wrapper.named_parameters() if v.requires_grad}
    frozen = {k: v.detach() for k, v in wrapper.named_parameters() if not v.requires_grad}
    buffers = dict(wrapper.named_buffers())

    def sample_loss(p: dict[str, Tensor], sample: Batch) -> Tensor:
        one = sample.unsqueeze(0) if isinstance(sample, Tensor) else tuple(s.unsqueeze(0) for s in sample)
        return functional_call(wrapper, {**p, **frozen, **buffers}, (one,)).reshape(())

    grads = vmap(grad(sample_loss), in_dims=(None, 0))(params, batch)
    return {name.removeprefix("model."): g for name, g in grads.items()}


def _gram_ghost(acts: Tensor, grads: Tensor) -> Tensor:
    """sum_{t,t'} (a_it . a_jt')(g_it . g_jt') from token Gram matrices: (B, T, d_in), (B, T, d_out) -> (B, B)."""
    B, T = acts.shape[:2]
    a, g = acts.reshape(B * T, -1), grads.reshape(B * T, -1)
    return ((a @ a.T) * (g @ g.T)).reshape(B, T, B, T).sum((1, 3))


def _gram_explicit(acts: Tensor, grads: Tensor) -> Tensor:
    """<G_i, G_j> with G_i = sum_t g_it a_it^T formed explicitly: (B, d_out, d_in) per-sample weight gradients."""
    per_sample = (grads.transpose(1, 2) @ acts).flatten(1)
    return per_sample @ per_sample.T


def _ghost_is_cheaper(B: int, T: int, d_in: int, d_out: int) -> bool:
    """Multiply-adds: token Grams B^2 T^2 (d_in + d_out + 1) against outer products B T d_in d_out + B^2 d_in d_out."""
    return B * B * T * T * (d_in + d_out + 1) <= B * d_in * d_out * (T + B)


def _trainable(layer: nn.Linear) -> bool:
    return layer.weight.requires_grad or (layer.bias is not None and layer.bias.requires_grad)


def per_sample_grad_gram(model: nn.Module, loss_fn: LossFn, batch: Batch,
                         layers: Sequence[nn.Linear | str] | None = None,
                         form: Literal["auto", "ghost", "explicit"] = "auto") -> Tensor:
    """(B, B) Gram matrix ``<grad_theta loss_i, grad_theta loss_j>`` over the parameters of the chosen Linear layers.

    One forward and one backward of ``loss_fn(model, batch).sum()``; hooks capture each layer's input activations
    a (B, T, d_in) and output gradients g (B, T, d_out) (T = 1 for flat inputs; all middle dims are tokens). Sample
    i's weight gradient is ``G_i = sum_t g_it a_it^T`` and its bias gradient ``sum_t g_it``, so
    ``<G_i, G_j> = sum_{t,t'} (a_it . a_jt')(g_it . g_jt')`` (the "ghost" inner product) needs only token Gram
    matrices ((B T)^2 entries). ``form="auto"`` picks per layer the cheaper in multiply-adds of that and the
    explicit form, which holds one layer's (B, d_out, d_in) per-sample gradients at a time. A layer called several
    times (weight sharing) contributes all its calls as tokens.

    ``layers``: modules or their names in ``model.named_modules()``; default every ``nn.Linear`` with a trainable
    parameter (frozen parameters have no gradient and are left out). A chosen layer whose weight is used without
    calling the module (e.g. ``nn.MultiheadAttention.out_proj``) raises ValueError, since hooks cannot see it.
    Parameters are left untouched (no ``.grad`` is written).

    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    >>> per_sample_grad_gram(net, lambda m, x: m(x).squeeze(-1), torch.randn(6, 3)).shape
    torch.Size([6, 6])
    """
    if form not in ("auto", "ghost", "explicit"):
        raise ValueError(f"form must be 'auto', 'ghost' or 'explicit', got {form!r}")
    names = {module: name for name, module in model.named_modules()}
    by_name = dict(model.named_modules())
    if layers is None:
        chosen = [m for m in names if isinstance(m, nn.Linear) and _trainable(m)]
    else:
        chosen = []
        for layer in layers:
            module = by_name.get(layer) if isinstance(layer, str) else layer
            if not isinstance(module, nn.Linear) or module not in names:
                raise ValueError(f"layer {layer!r} is not an nn.Linear of this model; pass modules or names from "
                                 "model.named_modules()")
            if not _trainable(module):
                raise ValueError(f"layer {names[module]!r} has no parameter that requires grad")
            chosen.append(module)
    if not chosen:
        raise ValueError("the model has no trainable nn.Linear layer to take per-sample gradients of")

    captured: dict[nn.Linear, list[tuple[Tensor, Tensor]]] = {m: [] for m in chosen}

    def hook(module: nn.Linear, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        captured[module].append((inputs[0].detach(), output))

    handles = [m.register_forward_hook(hook) for m in chosen]
    try:
        with torch.enable_grad():
            losses = loss_fn(model, batch)
    finally:
        for h in handles:
            h.remove()
    B = _batch_size(batch)
    if losses.shape != (B,):
        raise ValueError(f"loss_fn must return per-sample losses of shape ({B},), got {tuple(losses.shape)}")
    missing = [names[m] for m, calls in captured.items() if not calls]
    if missing:
        raise ValueError(f"layers {missing} never ran as modules in the forward pass (their weights may be used "
                         "functionally, which hooks cannot see); choose other layers with layers=[...]")
    calls = [(m, a, out) for m, pairs in captured.items() for a, out in pairs]
    for m, a, _ in calls:
        if a.shape[0] != B:
            raise ValueError(f"layer '{names[m]}' saw inputs of shape {tuple(a.shape)}; the first dim must be the "
                             f"sample index ({B}), e.g. use batch_first=True")
    out_grads = torch.autograd.grad(losses.sum(), [out for _, _, out in calls], allow_unused=True)

    gram = torch.zeros(B, B, dtype=losses.dtype, device=losses.device)
    for m in chosen:
        acts, grads = [], []
        for (owner, a, out), g in zip(calls, out_grads):
            if owner is m:
                acts.append(a.reshape(B, -1, a.shape[-1]))
                grads.append((torch.zeros_like(out) if g is None else g).reshape(B, -1, out.shape[-1]))
        a, g = torch.cat(acts, 1), torch.cat(grads, 1)
        T, d_in, d_out = a.shape[1], a.shape[2], g.shape[2]
        ghost = form == "ghost" or (form == "auto" and _ghost_is_cheaper(B, T, d_in, d_out))
        if m.weight.requires_grad:
            gram = gram + (_gram_ghost if ghost else _gram_explicit)(a, g)
        if m.bias is not None and m.bias.requires_grad:
            bias_grad = g.sum(1)
            gram = gram + bias_grad @ bias_grad.T
    return gram
