"""The dataset registry and ``load_dataset``: splits as in-memory uint8 tensors plus metadata."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rootfree.data.cifar import load_cifar, missing_cifar
from rootfree.data.fashion_mnist import load_fashion_mnist, missing_fashion_mnist
from rootfree.data.imagefolder import load_imagefolder, missing_imagefolder
from rootfree.data.ragged import RaggedImages
from rootfree.data.splits import train_val_split
from rootfree.data.synthetic import load_synthetic

SELECTION_SPLITS = ("val", "test")
Images = torch.Tensor | RaggedImages


@dataclass(frozen=True)
class DatasetSpec:
    load: Callable[..., dict[str, tuple[torch.Tensor, torch.Tensor]]]
    num_classes: int  # 0: read from the labels
    augmentation: str  # "none", "crop_flip" (CIFAR's) or "vit" (the paper's ImageWoof recipe)
    description: str
    # (channels, image size, classes or 0 if only the files know) from the options, unloaded
    shape: Callable[..., tuple[int, int, int]] = lambda **_: (0, 0, 0)
    # what is missing on disk for these options, in a phrase (None: nothing), without loading
    missing: Callable[..., str | None] = lambda **_: None


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        lambda root, download, **_: load_fashion_mnist(root, download),
        10,
        "none",
        "Fashion-MNIST, 28x28 grey, 60k/10k (the offline default)",
        lambda **_: (1, 28, 10),
        lambda root=None, download=False, **_: missing_fashion_mnist(root, download),
    ),
    "cifar10": DatasetSpec(
        lambda root, download, **_: load_cifar(10, root, download),
        10,
        "crop_flip",
        "CIFAR-10, 32x32 RGB, 50k/10k",
        lambda **_: (3, 32, 10),
        lambda root=None, download=False, **_: missing_cifar(10, root, download),
    ),
    "cifar100": DatasetSpec(
        lambda root, download, **_: load_cifar(100, root, download),
        100,
        "crop_flip",
        "CIFAR-100, 32x32 RGB, 50k/10k (the paper's CNN benchmark)",
        lambda **_: (3, 32, 100),
        lambda root=None, download=False, **_: missing_cifar(100, root, download),
    ),
    "imagefolder": DatasetSpec(
        lambda root, download, image_size=64, decode_size=None, **_: load_imagefolder(
            root, image_size, decode_size
        ),
        0,
        "vit",
        "any ImageFolder with train/ and val/ (ImageWoof-10 in the paper), decoded in memory",
        lambda image_size=64, **_: (3, image_size, 0),
        lambda root=None, **_: missing_imagefolder(root),
    ),
    "synthetic": DatasetSpec(
        lambda root, download, **kwargs: load_synthetic(**kwargs),
        0,
        "none",
        "generated class prototypes plus noise, for tests",
        lambda classes=4, channels=1, size=8, **_: (channels, size, classes),
    ),
}


@dataclass
class DatasetSplits:
    train: tuple[Images, torch.Tensor]  # RaggedImages where the augmentation crops decoded images
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    channels: int
    image_size: int
    mean: list[float]
    std: list[float]
    augmentation: str
    selection_split: str
    checksum: str


def _checksum(splits: dict[str, tuple[Images, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        for images in splits[name]:
            for tensor in images if isinstance(images, RaggedImages) else [images]:
                digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _channel_stats(images: Images) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over every pixel, in [0, 1] units."""
    if not isinstance(images, RaggedImages):
        unit = images.float() / 255
        return unit.mean(dim=(0, 2, 3)).tolist(), unit.std(dim=(0, 2, 3)).tolist()
    total = square = count = 0
    for image in images:
        pixels = image.double().flatten(1) / 255
        total, square = total + pixels.sum(1), square + pixels.square().sum(1)
        count += pixels.shape[1]
    mean = total / count
    return mean.tolist(), ((square - count * mean**2) / (count - 1)).sqrt().tolist()


def load_dataset(
    name: str,
    root: str | None = None,
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    selection_split: str = "val",
    train_subset: int | None = None,
    **options: Any,
) -> DatasetSplits:
    """Load ``name`` and carve a seeded validation split from its training set.

    ``selection_split="test"`` is the paper's protocol (tuning on the test set): then no
    validation split is carved and "val" is the test set; runs record which one they used.
    ``train_subset``: keep that many training samples (a seeded draw after the split), so small
    studies can train to convergence; validation and test stay whole.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if selection_split not in SELECTION_SPLITS:
        raise ValueError(
            f"Invalid selection_split: {selection_split!r}; choose one of {list(SELECTION_SPLITS)}"
        )
    spec = DATASETS[name]
    raw = spec.load(root=root, download=download, **options)
    if selection_split == "test":
        train, val = raw["train"], raw["test"]
    else:
        train, val = train_val_split(*raw["train"], val_fraction=val_fraction, seed=split_seed)
    if train_subset is not None:
        keep = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(split_seed))
        train = tuple(t[keep[:train_subset]] for t in train)
    if isinstance(val[0], RaggedImages):
        val = (val[0].centre_crops(), val[1])
    mean, std = _channel_stats(train[0])
    return DatasetSplits(
        train=train,
        val=val,
        test=raw["test"],
        num_classes=spec.num_classes or int(raw["train"][1].max()) + 1,
        channels=train[0].shape[1],
        image_size=train[0].shape[-1],
        mean=mean,
        std=std,
        augmentation=spec.augmentation,
        selection_split=selection_split,
        checksum=_checksum(raw),
    )
