"""Training objectives: cross-entropy, and the rescaled MSE of the paper's ResNet-50 MSE runs."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "rescaled_mse")


def rescaled_mse(
    logits: torch.Tensor, labels: torch.Tensor, scale: float, weight: float, reduction: str = "mean"
) -> torch.Tensor:
    """Hui and Belkin (2020): MSE(out * (1 + (k - 1) onehot), M k onehot), as in the authors' CNN code.

    The mean runs over samples and classes; ``reduction="sum"`` sums the per-sample means.
    """
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    errors = (logits * (1 + (weight - 1) * onehot) - scale * weight * onehot).square().mean(dim=-1)
    return errors.sum() if reduction == "sum" else errors.mean()


def make_loss(settings: dict, tokens: bool = False) -> Callable[..., torch.Tensor]:
    """``loss(logits, labels, reduction="mean")`` for ``trainer.loss``; with ``tokens``, logits
    (batch, time, vocab) and labels (batch, time) count every position as one target."""
    kind = settings["kind"]
    if kind == "cross_entropy":
        loss = partial(F.cross_entropy, label_smoothing=settings["label_smoothing"])
    elif kind == "rescaled_mse":
        loss = partial(rescaled_mse, scale=settings["mse_scale"], weight=settings["mse_weight"])
    else:
        raise ValueError(f"Invalid trainer.loss.kind: {kind!r}; choose one of {list(LOSSES)}")
    return partial(_per_token, loss) if tokens else loss


def _per_token(loss, logits: torch.Tensor, labels: torch.Tensor, **options) -> torch.Tensor:
    return loss(logits.flatten(0, -2), labels.flatten(), **options)
