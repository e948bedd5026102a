"""Parameter groups a model's optimizer is built on: no weight decay for biases and norm scales,
and per-name lr_cov factors (the authors' IF-Shampoo in their ViT runs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn


def weight_decay_param_groups(
    model: nn.Module, weight_decay: float, no_decay_names: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Two groups: tensors of ndim <= 1 (biases, norm scales) and named exceptions get no decay.

    A model's ``no_weight_decay()`` names (timm's ViTs list position embeddings) are honoured.
    """
    skip = set(no_decay_names)
    if hasattr(model, "no_weight_decay"):
        skip |= set(model.no_weight_decay())
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name in skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_cov_param_groups(
    model: nn.Module, groups: list[dict[str, Any]], scales: Mapping[str, float], lr_cov: float
) -> list[dict[str, Any]]:
    """Split ``groups`` so that parameters whose name contains a key of ``scales`` get
    ``lr_cov * scales[key]`` (the first key found). The authors' IF-Shampoo ran the ViTs with
    0.25 for names containing ``norm``, ``proj`` or ``bias``."""
    names = {id(p): n for n, p in model.named_parameters()}

    def scale(param: torch.Tensor) -> float:
        return next((f for key, f in scales.items() if key in names[id(param)]), 1.0)

    split = []
    for group in groups:
        by_scale: dict[float, list[torch.Tensor]] = {}
        for param in group["params"]:
            by_scale.setdefault(scale(param), []).append(param)
        for factor, params in by_scale.items():
            extra = {} if factor == 1.0 else {"lr_cov": lr_cov * factor}
            split.append({**group, "params": params, **extra})
    return split
