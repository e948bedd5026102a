"""Any ImageFolder (root/train/<class>/*.jpg, root/val/<class>/...), e.g. ImageWoof, in memory.

Training images are kept as decoded (RaggedImages; ``decode_size`` caps the shorter side to save
memory), so the ViT recipe's random-resized crop sees the whole photo as in the authors' timm
pipelines. Evaluation images are resized (shorter side to size * 256/224) and centre-cropped once.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rootfree.data.ragged import RaggedImages, cap_shorter_side, evaluation_view

SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}


def _decode(folder: Path, classes: list[str], view) -> tuple[list[torch.Tensor], torch.Tensor]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, pil_loader
    from torchvision.transforms.v2.functional import pil_to_tensor

    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        for path in files:
            images.append(view(pil_to_tensor(pil_loader(str(path)))))
            labels.append(label)
    return images, torch.tensor(labels, dtype=torch.long)


def _folders(root: str | None) -> dict[str, Path]:
    if root is None or not Path(root).expanduser().is_dir():
        raise FileNotFoundError(
            f"no ImageFolder dataset at {root!r}: point dataset.root at a folder with train/ and "
            "val/ subfolders of class folders (ImageWoof: unpack imagewoof2 from fast.ai)"
        )
    base = Path(root).expanduser()
    folders = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((base / n for n in names if (base / n).is_dir()), None)
        if folder is None:
            raise FileNotFoundError(f"{base} has no {' or '.join(names)}/ folder")
        folders[split] = folder
    return folders


def missing_imagefolder(root: str | None) -> str | None:
    """What is missing for ``load_imagefolder`` (None: nothing), checked without decoding."""
    try:
        _folders(root)
    except FileNotFoundError as error:
        return str(error)
    return None


def load_imagefolder(
    root: str | None, image_size: int = 64, decode_size: int | None = None
) -> dict[str, tuple[RaggedImages | torch.Tensor, torch.Tensor]]:
    """train: RaggedImages (cropped to ``image_size`` per batch); test: the evaluation view."""
    folders = _folders(root)
    classes = sorted(p.name for p in folders["train"].iterdir() if p.is_dir())
    train, train_labels = _decode(
        folders["train"], classes, lambda image: cap_shorter_side(image, decode_size)
    )
    test, test_labels = _decode(
        folders["test"], classes, lambda image: evaluation_view(image, image_size)
    )
    return {
        "train": (RaggedImages(train, image_size), train_labels),
        "test": (torch.stack(test), test_labels),
    }
