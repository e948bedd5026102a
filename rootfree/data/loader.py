"""Mini-batches of an in-memory dataset, with no worker processes.

Shuffling and augmentation draw from generators seeded by (seed, epoch, batch index), so a run
resumed mid-epoch sees exactly the batches it would have seen, without saving RNG state.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rootfree.data.augment import AUGMENTATIONS
from rootfree.data.ragged import RaggedImages, unit


def _generator(*keys: int) -> torch.Generator:
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + key) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class RankShare:
    """A loader whose every global batch is split over ``world_size`` ranks of ``batch_size``."""

    batch_size: int
    world_size: int

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size


class BatchLoader(RankShare):
    """Normalised float batches of uint8 images held on ``device``."""

    def __init__(
        self,
        images: torch.Tensor | RaggedImages,
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
        if isinstance(images, RaggedImages) and augment != "vit":
            raise ValueError(
                f"Images of different sizes need augment='vit' (it crops them), not {augment!r}"
            )
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.shuffle, self.augment, self.seed, self.drop_last = shuffle, augment, seed, drop_last
        self.rank, self.world_size = rank, world_size

    @property
    def samples(self) -> int:
        return len(self.labels)

    @property
    def targets_per_batch(self) -> int:
        """Labels in one global batch: what the running loss is averaged over."""
        return self.global_batch_size

    @property
    def targets(self) -> int:
        return len(self.labels)

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
            images = self.images[chosen]
            if self.augment in AUGMENTATIONS:
                generator = _generator(self.seed, epoch, index + 1)
                augment = AUGMENTATIONS[self.augment]
                images = augment(images, generator, mean=self.mean, std=self.std)
            images = unit(images)
            yield (images - self.mean) / self.std, self.labels[chosen]
