"""Decoded images of different sizes held in memory, for augmentations that crop the whole photo.

The ViT recipe crops a random region of the *decoded* image and resizes it to the input size;
doing that on a stored centre crop would never show the model the photo's borders. These images
are kept as they were decoded (optionally with the shorter side capped to save memory) and are
indexed like a tensor's first axis, so splits, subsets and the loader treat them alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

EVAL_RESIZE = 256 / 224  # evaluation: shorter side to size * 256/224, then a centre crop


class RaggedImages:
    """uint8 (or float) C x H x W images of any sizes; ``shape`` is that of a batch after cropping
    to ``size``, so code reading ``images.shape`` sees what the model will."""

    def __init__(self, images: list[torch.Tensor], size: int) -> None:
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.images)

    def __getitem__(self, index: torch.Tensor | list[int]) -> RaggedImages:
        return RaggedImages([self.images[i] for i in torch.as_tensor(index).tolist()], self.size)

    @property
    def shape(self) -> torch.Size:
        channels = self.images[0].shape[0] if self.images else 3
        return torch.Size([len(self), channels, self.size, self.size])

    @property
    def nbytes(self) -> int:
        return sum(image.numel() * image.element_size() for image in self.images)

    def to(self, device: torch.device | str) -> RaggedImages:
        return RaggedImages([image.to(device) for image in self.images], self.size)

    def hw(self) -> torch.Tensor:
        """(n, 2) heights and widths."""
        return torch.tensor([list(image.shape[-2:]) for image in self.images]).view(-1, 2)

    def centre_crops(self) -> torch.Tensor:
        """The evaluation view: every image resized and centre-cropped to ``size``, stacked."""
        if not self.images:
            return torch.empty(0, 3, self.size, self.size, dtype=torch.uint8)
        return torch.stack([evaluation_view(image, self.size) for image in self.images])


def evaluation_view(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to ``size * 256/224`` (bicubic) and take the centre ``size`` square."""
    bicubic = v2.InterpolationMode.BICUBIC
    resized = TF.resize(image, round(size * EVAL_RESIZE), interpolation=bicubic, antialias=True)
    return TF.center_crop(resized, [size, size])


def cap_shorter_side(image: torch.Tensor, side: int | None) -> torch.Tensor:
    """Downscale so the shorter side is at most ``side`` (None keeps the decoded size)."""
    if side is None or min(image.shape[-2:]) <= side:
        return image
    return TF.resize(image, side, interpolation=v2.InterpolationMode.BICUBIC, antialias=True)


def unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as floats in [0, 1]; floats are returned as they are."""
    return images if images.is_floating_point() else images.float().div_(255)


def nbytes(images: torch.Tensor | RaggedImages) -> int:
    if isinstance(images, RaggedImages):
        return images.nbytes
    return images.numel() * images.element_size()
