"""CIFAR-10/100 in torchvision's on-disk format (the python pickle batches)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

FOLDERS = {10: "cifar-10-batches-py", 100: "cifar-100-python"}
TRAIN_FILES = {10: [f"data_batch_{i}" for i in range(1, 6)], 100: ["train"]}
TEST_FILES = {10: ["test_batch"], 100: ["test"]}


def _read(folder: Path, names: list[str], classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    import pickle

    images, labels = [], []
    key = "labels" if classes == 10 else "fine_labels"
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[key])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


def missing_cifar(classes: int, root: str | None, download: bool) -> str | None:
    """What is missing for ``load_cifar`` (None: nothing), checked without reading."""
    folder = Path(root or "data").expanduser() / FOLDERS[classes]
    absent = [n for n in TRAIN_FILES[classes] + TEST_FILES[classes] if not (folder / n).is_file()]
    if download or not absent:
        return None
    return (
        f"no {folder} with torchvision's CIFAR-{classes} files ({', '.join(absent)} missing); "
        f"point dataset.root at the folder holding {FOLDERS[classes]}/, "
        "or set dataset.download=true"
    )


def load_cifar(
    classes: int, root: str | None, download: bool
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    base = Path(root or "data").expanduser()
    folder = base / FOLDERS[classes]
    if not folder.is_dir() and download:
        import torchvision

        dataset = torchvision.datasets.CIFAR10 if classes == 10 else torchvision.datasets.CIFAR100
        dataset(base, train=True, download=True)
    missing = missing_cifar(classes, root, download=False)
    if missing is not None:
        raise FileNotFoundError(missing)
    return {
        "train": _read(folder, TRAIN_FILES[classes], classes),
        "test": _read(folder, TEST_FILES[classes], classes),
    }
