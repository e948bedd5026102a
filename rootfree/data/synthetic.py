"""A small generated classification task for tests: class-dependent image means plus noise."""

from __future__ import annotations

import torch


def load_synthetic(
    classes: int = 4,
    channels: int = 1,
    size: int = 8,
    train: int = 256,
    test: int = 128,
    seed: int = 0,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(classes, channels, size, size, generator=generator) * 200

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, classes, (n,), generator=generator)
        noise = torch.randn(n, channels, size, size, generator=generator) * 40
        images = (prototypes[labels] + noise).clamp(0, 255).to(torch.uint8)
        return images, labels

    return {"train": draw(train), "test": draw(test)}
