"""Any ImageFolder (root/train/<class>/*.jpg, root/val/<class>/...), e.g. ImageWoof, in memory.

Images are decoded once, resized (shorter side to size * 256/224) and centre-cropped to
``image_size``, as the paper's evaluation transform does; the training augmentation then works on
these tensors (loader.vit_augment), so the resumable in-memory loader serves here too.
"""

from __future__ import annotations

from pathlib import Path

import torch

SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}


def _load_split(
    folder: Path, image_size: int, classes: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, pil_loader
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(round(image_size * 256 / 224), antialias=True),
            v2.CenterCrop(image_size),
        ]
    )
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        for path in files:
            images.append(transform(pil_loader(str(path))))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def load_imagefolder(
    root: str | None, image_size: int = 64
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    if root is None or not Path(root).expanduser().is_dir():
        raise FileNotFoundError(
            f"ImageFolder dataset not found at {root!r}: set dataset.root=DIR to a folder with train/ and "
            "val/ subfolders of class folders (ImageWoof: download imagewoof2 from fast.ai and unpack it)."
        )
    base = Path(root).expanduser()
    splits = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((base / n for n in names if (base / n).is_dir()), None)
        if folder is None:
            raise FileNotFoundError(f"{base} has no {' or '.join(names)}/ folder")
        splits[split] = folder
    classes = sorted(p.name for p in splits["train"].iterdir() if p.is_dir())
    return {split: _load_split(folder, image_size, classes) for split, folder in splits.items()}
