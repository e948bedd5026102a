"""Parameter groups a model's optimizer is built on: no weight decay for biases and norm scales,
per-name lr_cov factors (the authors' IF-Shampoo in their ViT runs), and any per-name settings."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
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

    def settings(name: str) -> dict[str, Any]:
        factor = next((f for key, f in scales.items() if key in name), 1.0)
        return {} if factor == 1.0 else {"lr_cov": lr_cov * factor}

    return split_param_groups(model, groups, settings)


def override_param_groups(
    model: nn.Module, groups: list[dict[str, Any]], overrides: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Split ``groups`` so that parameters whose name matches a pattern of ``overrides``
    (``fnmatch``, the first that matches) take its settings, e.g.
    ``{"blocks.*.attn.qkv.weight": {"structure": "block64diagonal"}, "*bias": {"lr": 0.1}}``."""

    def settings(name: str) -> dict[str, Any]:
        return next((dict(s) for p, s in overrides.items() if fnmatch.fnmatchcase(name, p)), {})

    return split_param_groups(model, groups, settings)


def split_param_groups(
    model: nn.Module,
    groups: list[dict[str, Any]],
    settings: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each group split by the extra settings ``settings(name)`` gives its parameters."""
    names = {id(p): n for n, p in model.named_parameters()}
    split = []
    for group in groups:
        by_settings: dict[str, tuple[dict[str, Any], list[torch.Tensor]]] = {}
        for param in group["params"]:
            extra = settings(names[id(param)])
            by_settings.setdefault(repr(sorted(extra.items())), (extra, []))[1].append(param)
        split.extend({**group, **extra, "params": params} for extra, params in by_settings.values())
    return split
