"""Fashion-MNIST from Debian's dataset-fashion-mnist package, a local root, or a download."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rootfree.data.idx import read_idx

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root: Path, stem: str) -> Path | None:
    for folder in (root, root / "FashionMNIST" / "raw", root / "raw"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def _paths(root: str | None) -> dict[str, list[Path]] | None:
    """The four idx files by split, or None if any is missing."""
    folder = Path(root).expanduser() if root else DEBIAN_ROOT
    paths = {split: [_find(folder, stem) for stem in stems] for split, stems in FILES.items()}
    return paths if all(p is not None for pair in paths.values() for p in pair) else None


def missing_fashion_mnist(root: str | None, download: bool) -> str | None:
    """What is missing for ``load_fashion_mnist`` (None: nothing), checked without reading."""
    if download or _paths(root) is not None:
        return None
    where = Path(root).expanduser() if root else DEBIAN_ROOT
    return (
        f"no Fashion-MNIST idx(.gz) files ({FILES['train'][0]}, ...) in {where}; "
        "`apt-get install dataset-fashion-mnist`, set dataset.root=DIR to a folder with them, "
        "or set dataset.download=true (needs internet)"
    )


def load_fashion_mnist(
    root: str | None, download: bool
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train': (images uint8 N x 1 x 28 x 28, labels), 'test': ...}."""
    paths = _paths(root)
    if paths is not None:
        return {
            split: (read_idx(images).unsqueeze(1), read_idx(labels).long())
            for split, (images, labels) in paths.items()
        }
    if download:
        import torchvision

        target = Path(root or os.environ.get("ROOTFREE_DATA", "data")).expanduser()
        for train in (True, False):
            torchvision.datasets.FashionMNIST(target, train=train, download=True)
        return load_fashion_mnist(str(target), download=False)
    raise FileNotFoundError(missing_fashion_mnist(root, download=False))
