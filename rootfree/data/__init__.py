"""Datasets as in-memory tensors with seeded train/val/test splits, and a resumable batch loader."""

from rootfree.data.loader import BatchLoader
from rootfree.data.registry import DATASETS, DatasetSplits, load_dataset

__all__ = ["DATASETS", "BatchLoader", "DatasetSplits", "load_dataset"]
