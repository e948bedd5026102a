"""Mini-batches of an in-memory dataset, with no worker processes.

Shuffling and augmentation draw from generators seeded by (seed, epoch, batch index), so a run
resumed mid-epoch sees exactly the batches it would have seen, without saving RNG state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

PAD = 4


def _generator(*keys: int) -> torch.Generator:
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + key) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero-padding by 4 pixels, and a random horizontal flip (the CIFAR recipe)."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (batch,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * PAD + 1, (batch,), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(height, device=images.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(width, device=images.device))[:, None, :]
    crops = padded[torch.arange(batch, device=images.device)[:, None, None], :, rows, cols]
    crops = crops.permute(0, 3, 1, 2)
    flip = (torch.rand(batch, generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


class BatchLoader:
    """Normalised float batches of uint8 images held on ``device``."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: list[float],
        std: list[float],
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: str = "none",
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size: {batch_size} (must be >= 1)")
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.shuffle, self.augment, self.seed, self.drop_last = shuffle, augment, seed, drop_last
        self.rank, self.world_size = rank, world_size

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        n, size = len(self.labels), self.global_batch_size
        return n // size if self.drop_last else -(-n // size)

    def batches(
        self, epoch: int = 0, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` from batch index ``start`` on.

        Under data parallelism every rank draws the same order and takes its slice of each global
        batch, so ``world_size`` ranks see exactly what one process sees with the whole batch.
        """
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=_generator(self.seed, epoch)).to(self.labels.device)
        else:
            order = torch.arange(n, device=self.labels.device)
        for index in range(start, len(self)):
            start_of_batch = index * self.global_batch_size + self.rank * self.batch_size
            chosen = order[start_of_batch : start_of_batch + self.batch_size]
            images = self.images[chosen].float().div_(255)
            if self.augment in AUGMENTATIONS:
                images = AUGMENTATIONS[self.augment](
                    images, _generator(self.seed, epoch, index + 1)
                )
            yield (images - self.mean) / self.std, self.labels[chosen]


def vit_augment(
    images: torch.Tensor,
    generator: torch.Generator,
    erase_probability: float = 0.25,
    jitter: float = 0.4,
) -> torch.Tensor:
    """The ViT recipe of the paper's ImageWoof runs, batched: random-resized crop (area 8-100%,
    aspect 3/4-4/3) with horizontal flip as one affine resampling, colour jitter (brightness,
    contrast, saturation), and random erasing. ``images`` are floats in [0, 1]."""
    batch = images.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(images.device)  # noqa: E731
    area = 0.08 + 0.92 * rand(batch)
    log_ratio = torch.empty(batch).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator)
    ratio = log_ratio.exp().to(images.device)
    width, height = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    center_x = (1 - width) * (2 * rand(batch) - 1)
    center_y = (1 - height) * (2 * rand(batch) - 1)
    flip = torch.where(rand(batch) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, center_x
    theta[:, 1, 1], theta[:, 1, 2] = height, center_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )

    factors = 1 + jitter * (2 * rand(3, batch, 1, 1, 1) - 1)
    out = out * factors[0]
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factors[1] + mean
    if out.shape[1] == 3:
        grey = out.mean(dim=1, keepdim=True)
        out = (out - grey) * factors[2] + grey
    out = out.clamp(0, 1)

    size = out.shape[-1]
    erase = rand(batch) < erase_probability
    side = (size * (0.02 + 0.31 * rand(batch)).sqrt()).long().clamp(min=1)
    top = (rand(batch) * (size - side + 1)).long()
    left = (rand(batch) * (size - side + 1)).long()
    rows = torch.arange(size, device=images.device)
    inside_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])
    inside_cols = (rows >= left[:, None]) & (rows < (left + side)[:, None])
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :] & erase[:, None, None])[:, None]
    noise = torch.rand(out.shape, generator=generator).to(images.device)
    return torch.where(mask, noise, out)


AUGMENTATIONS = {"crop_flip": crop_flip, "vit": vit_augment}
