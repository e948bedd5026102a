"""Detect B, the number of samples a step's gradient is averaged over, from a model's forwards."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class BatchSizeCounter:
    """Sums the leading dimension of a model's training-mode inputs and hands it to the optimizer.

    Before each ``optimizer.step()`` it writes the count into every param group's
    ``batch_size`` and restarts counting, so gradient accumulation over micro-batches gives the
    whole batch. Evaluation-mode forwards are not counted. Under DDP each rank sees only its
    shard: there the trainer should pass the global batch explicitly instead.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        missing = [i for i, g in enumerate(optimizer.param_groups) if "batch_size" not in g]
        if missing:
            raise ValueError(
                f"{type(optimizer).__name__} takes no batch_size (param groups {missing})"
            )
        self.count = 0
        self._handles = [
            model.register_forward_pre_hook(self._count),
            optimizer.register_step_pre_hook(self._flush),
        ]

    def _count(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if module.training and inputs and torch.is_tensor(inputs[0]):
            self.count += inputs[0].shape[0]

    def _flush(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.count > 0:
            for group in optimizer.param_groups:
                group["batch_size"] = self.count
        self.count = 0

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
