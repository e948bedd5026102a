"""Datasets as in-memory tensors with seeded splits and resumable batch loaders: images
(``DATASETS``) and text corpora (``TEXT_DATASETS``)."""

from rootfree.data.loader import BatchLoader
from rootfree.data.registry import DATASETS, DatasetSplits, load_dataset
from rootfree.data.text_registry import TEXT_DATASETS, load_text_dataset

__all__ = [
    "DATASETS",
    "TEXT_DATASETS",
    "BatchLoader",
    "DatasetSplits",
    "load_dataset",
    "load_text_dataset",
]
