"""Carve a fixed, seeded validation split out of a training set."""

from __future__ import annotations

import torch


def train_val_split(
    images: torch.Tensor, labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The same (seed, fraction) always selects the same validation examples."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"Invalid val_fraction: {val_fraction} (must be in [0, 1))")
    n_val = int(round(len(labels) * val_fraction))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return (images[train], labels[train]), (images[val], labels[val])
