"""Fused steps for the diagonal root-free methods: one step's elementwise math compiled by
``torch.compile`` into one loop per tensor (vectorised C++ on CPU), instead of one pass over
memory per operation. Every hyperparameter enters as a 0-d tensor: a Python float would be baked
into the compiled code, and a new learning rate (or bias correction) would recompile it.

Compiling takes about a minute on CPU the first time (inductor caches the code on disk, so later
processes with the same shapes start fast); rounding differs from the eager path at the last bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


def _adam_math(params, grads, firsts, seconds, lr, beta1, beta2, damping, decay, b, bc1, bc2):
    for i, (param, grad, first, second) in enumerate(zip(params, grads, firsts, seconds)):
        grad = grad.to(second.dtype)
        param.mul_(1.0 - lr * decay)
        first.lerp_(grad, 1.0 - beta1)
        second.copy_(second * beta2 + grad * grad * ((1.0 - beta2) * b))
        param.sub_(first / (second / bc2[i] + damping) * (lr / bc1[i]))


def _rmsprop_math(params, grads, seconds, buffers, lr, lr_cov, damping, momentum, decay, b):
    for param, grad, second, buffer in zip(params, grads, seconds, buffers):
        grad = grad.to(second.dtype)
        second.copy_(second * (1.0 - lr_cov) + grad * grad * (lr_cov * b))
        direction = grad / (second + damping) + decay * param
        if buffer is not None:
            buffer.copy_(buffer * momentum + direction)
            direction = buffer
        param.sub_(direction * lr)


@functools.cache
def _compiled(math: Callable[..., None]) -> Callable[..., None]:
    return torch.compile(math, fullgraph=True, dynamic=False)


def _scalars(device: torch.device, *values: float | list[float]) -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=torch.float32, device=device) for v in values]


def fused_rootfree_adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    first_moments: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    damping: float,
    weight_decay: float,
    batch_size: int,
    bc1: list[float],
    bc2: list[float],
) -> None:
    """RF-AdamW's step (``rootfree_adam._single_tensor_rootfree_adam``), compiled."""
    scalars = _scalars(
        params[0].device, lr, beta1, beta2, damping, weight_decay, batch_size, bc1, bc2
    )
    _compiled(_adam_math)(params, grads, first_moments, second_moments, *scalars)


def fused_rootfree_rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    buffers: list[torch.Tensor | None],
    *,
    lr: float,
    lr_cov: float,
    damping: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
) -> None:
    """RF-RMSProp's step (``rootfree_rmsprop._single_tensor_rootfree_rmsprop``), compiled."""
    scalars = _scalars(params[0].device, lr, lr_cov, damping, momentum, weight_decay, batch_size)
    _compiled(_rmsprop_math)(params, grads, second_moments, buffers, *scalars)
