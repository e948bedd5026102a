"""Datasets from generated files in their real on-disk formats, splits and the batch loader."""

from __future__ import annotations

import gzip
import pickle
import random
import struct

import numpy as np
import pytest
import torch

from rootfree.data import BatchLoader, load_dataset
from rootfree.data.augment import crop_flip
from rootfree.data.idx import read_idx
from rootfree.data.ragged import RaggedImages
from rootfree.data.splits import train_val_split


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_root(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


def test_idx_reader_round_trips_and_rejects_other_files(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    assert torch.equal(read_idx(tmp_path / "a.gz"), torch.from_numpy(array))
    (tmp_path / "bad").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")


def test_fashion_mnist_from_a_root_folder(fashion_root):
    data = load_dataset("fashion_mnist", root=str(fashion_root), val_fraction=0.2)
    assert data.train[0].shape == (40, 1, 28, 28) and data.val[0].shape == (10, 1, 28, 28)
    assert data.test[0].shape == (20, 1, 28, 28) and data.num_classes == 10
    assert data.selection_split == "val" and len(data.checksum) == 16


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"apt-get install dataset-fashion-mnist.*dataset.root=DIR.*dataset.download=true",
    ):
        load_dataset("fashion_mnist", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", root=str(tmp_path))


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown dataset 'mnist'; choose one of \['cifar10'"):
        load_dataset("mnist")


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_in_torchvision_format(tmp_path, classes):
    folder = tmp_path / ("cifar-10-batches-py" if classes == 10 else "cifar-100-python")
    folder.mkdir()
    key = "labels" if classes == 10 else "fine_labels"
    names = (
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        if classes == 10
        else ["train", "test"]
    )
    rng = np.random.default_rng(0)
    for name in names:
        batch = {
            "data": rng.integers(0, 256, (6, 3072), dtype=np.uint8),
            key: list(rng.integers(0, classes, 6)),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    data = load_dataset(f"cifar{classes}", root=str(tmp_path), selection_split="test")
    n_train = 30 if classes == 10 else 6
    assert data.train[0].shape == (n_train, 3, 32, 32) and data.num_classes == classes
    assert data.augmentation == "crop_flip"
    assert torch.equal(data.val[0], data.test[0]), "test-set selection: val is the test set"


def test_validation_split_is_fixed_by_its_seed_and_disjoint():
    images, labels = torch.arange(100).view(100, 1, 1, 1), torch.arange(100)
    (train, train_labels), (val, val_labels) = train_val_split(images, labels, 0.2, seed=3)
    again = train_val_split(images, labels, 0.2, seed=3)
    assert torch.equal(val_labels, again[1][1]) and len(val_labels) == 20
    assert not set(train_labels.tolist()) & set(val_labels.tolist())
    other = train_val_split(images, labels, 0.2, seed=4)
    assert not torch.equal(val_labels, other[1][1])


def test_loader_resumes_mid_epoch_with_the_same_batches():
    data = load_dataset("synthetic")
    loader = BatchLoader(
        *data.train,
        batch_size=16,
        mean=data.mean,
        std=data.std,
        shuffle=True,
        augment="crop_flip",
        seed=5,
    )
    full = list(loader.batches(epoch=2))
    resumed = list(loader.batches(epoch=2, start=3))
    assert len(full) == len(loader) and len(resumed) == len(full) - 3
    for (x, y), (rx, ry) in zip(full[3:], resumed):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    assert not torch.equal(full[0][1], next(loader.batches(epoch=3))[1])


def test_crop_flip_keeps_shape_and_moves_pixels_by_at_most_the_padding():
    images = torch.zeros(64, 1, 8, 8)
    images[:, :, 4, 4] = 1.0
    out = crop_flip(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    positions = out[:, 0].flatten(1).argmax(1)
    rows, cols = positions // 8, positions % 8
    visible = out.flatten(1).amax(1) > 0
    assert ((rows[visible] - 4).abs() <= 4).all()
    assert len(set(cols[visible].tolist())) > 3, "crops and flips vary across the batch"


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label in ("beagle", "dingo", "samoyed"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (40 + 7 * i, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return tmp_path


def test_image_folder_keeps_training_photos_whole_and_evaluates_centre_crops(image_folder):
    data = load_dataset("imagefolder", root=str(image_folder), image_size=32, val_fraction=0.25)
    assert data.num_classes == 3 and data.augmentation == "vit"
    train = data.train[0]
    assert isinstance(train, RaggedImages) and len(train) == 14 and train.shape == (14, 3, 32, 32)
    assert {tuple(hw) for hw in train.hw().tolist()} <= {(40 + 7 * i, 50) for i in range(6)}
    assert len({tuple(hw) for hw in train.hw().tolist()}) > 1, "decoded sizes are kept"
    assert data.val[0].shape == (4, 3, 32, 32) and data.val[0].dtype == torch.uint8
    assert data.test[0].shape == (9, 3, 32, 32)
    assert sorted(data.test[1].tolist()) == [0] * 3 + [1] * 3 + [2] * 3
    capped = load_dataset("imagefolder", root=str(image_folder), image_size=32, decode_size=20)
    assert min(min(hw) for hw in capped.train[0].hw().tolist()) == 20
    assert max(min(hw) for hw in capped.train[0].hw().tolist()) == 20


def test_evaluation_view_is_resize_then_centre_crop():
    from torchvision.transforms import v2

    image = torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8)
    bicubic = v2.InterpolationMode.BICUBIC
    reference = v2.Compose([v2.Resize(73, bicubic, antialias=True), v2.CenterCrop(64)])(image)
    assert torch.equal(RaggedImages([image], 64).centre_crops()[0], reference)


def test_ragged_training_batches_are_cropped_to_the_input_size_and_resume_exactly(image_folder):
    data = load_dataset("imagefolder", root=str(image_folder), image_size=24)
    loader = BatchLoader(
        *data.train, batch_size=4, mean=data.mean, std=data.std, shuffle=True, augment="vit"
    )
    batches = [images for images, _ in loader.batches(epoch=1)]
    assert all(b.shape == (4, 3, 24, 24) for b in batches[:-1])
    resumed = [images for images, _ in loader.batches(epoch=1, start=2)]
    assert all(torch.equal(a, b) for a, b in zip(batches[2:], resumed))
    with pytest.raises(ValueError, match="augment='vit'"):
        BatchLoader(*data.train, batch_size=4, mean=data.mean, std=data.std)


def test_missing_image_folder_says_what_it_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match="train/ and val/"):
        load_dataset("imagefolder", root=str(tmp_path / "nope"))


def test_vit_augmentation_varies_per_sample_and_is_reproducible():
    from rootfree.data.augment import vit_augment

    images = torch.rand(16, 3, 32, 32)
    out = vit_augment(images, torch.Generator().manual_seed(1))
    again = vit_augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and torch.equal(out, again)
    changed = (out - images).abs().flatten(1).mean(1)
    assert (changed > 0.01).all(), "every sample is cropped, jittered or erased"
    identical = vit_augment(images[:1].expand(8, -1, -1, -1), torch.Generator().manual_seed(2))
    assert len({round(float(x.sum()), 3) for x in identical}) == 8, "parameters differ per sample"


def _timm_boxes(transform, height, width, n):
    from PIL import Image

    random.seed(0)
    image = Image.new("RGB", (width, height))
    return np.array(
        [transform.get_params(image, transform.scale, transform.ratio) for _ in range(n)]
    )


@pytest.mark.parametrize("height, width", [(375, 500), (400, 60)])
def test_random_resized_crop_boxes_are_distributed_as_timms(height, width):
    """Against timm's RandomResizedCropAndInterpolation (the authors' pipelines): the same box
    areas and aspects (two-sample KS), all inside the image, the same share of fallbacks."""
    from scipy.stats import ks_2samp
    from timm.data.transforms import RandomResizedCropAndInterpolation

    from rootfree.data.augment import resized_crop_boxes

    n = 4000
    theirs = _timm_boxes(RandomResizedCropAndInterpolation(224), height, width, n)
    hw = torch.tensor([[height, width]]).expand(n, 2)
    ours = resized_crop_boxes(hw, torch.Generator().manual_seed(0)).numpy()
    assert (ours[:, 0] >= 0).all() and (ours[:, 0] + ours[:, 2] <= height).all()
    assert (ours[:, 1] >= 0).all() and (ours[:, 1] + ours[:, 3] <= width).all()
    for column in (lambda b: b[:, 2] * b[:, 3], lambda b: b[:, 3] / b[:, 2], lambda b: b[:, 0]):
        assert ks_2samp(column(ours), column(theirs)).pvalue > 1e-3


def test_random_erasing_boxes_are_distributed_as_timms():
    from scipy.stats import ks_2samp
    from timm.data.random_erasing import RandomErasing

    from rootfree.data.augment import erasing_boxes

    n, size = 3000, 32
    erasing = RandomErasing(probability=1.0, mode="pixel", device="cpu")
    random.seed(0)
    theirs = []
    for _ in range(n):
        image = torch.zeros(3, size, size)
        erasing._erase(image, 3, size, size, torch.float32)
        rows, cols = image.abs().sum(0).nonzero().unbind(1)
        theirs.append((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    theirs = np.array(theirs)
    boxes, erase = erasing_boxes(size, n, 1.0, torch.Generator().manual_seed(0))
    ours = boxes[erase][:, 2:].numpy()
    assert erase.float().mean() > 0.99
    for column in (lambda b: b[:, 0] * b[:, 1], lambda b: b[:, 0] / b[:, 1]):
        assert ks_2samp(column(ours), column(theirs)).pvalue > 1e-3
    _, sometimes = erasing_boxes(size, n, 0.25, torch.Generator().manual_seed(0))
    assert abs(sometimes.float().mean() - 0.25) < 0.03


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_color_jitter_matches_torchvisions_operations(order):
    from torchvision.transforms.v2 import functional as TF

    from rootfree.data.augment import color_jitter

    images = torch.rand(3, 3, 8, 8)
    factors = torch.tensor([[0.7, 1.3, 1.1], [1.4, 0.6, 0.9], [0.8, 1.2, 1.35]])
    operations = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)
    ours = color_jitter(images, factors, torch.tensor([order] * 3))
    for i, image in enumerate(images):
        for op in order:
            image = operations[op](image, float(factors[op, i]))
        torch.testing.assert_close(ours[i], image, atol=1e-6, rtol=0)
