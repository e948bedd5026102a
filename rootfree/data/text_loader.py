"""Batches of token windows for language modelling, resumable like ``BatchLoader``.

Training windows start at uniform random positions drawn from a generator seeded by (seed, epoch),
so a run resumed mid-epoch sees exactly the windows it would have seen. An epoch is as many
steps as the training split holds disjoint windows of one global batch, or as ``epoch_tokens``
hold (an evaluation period shorter than a pass over a large corpus).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rootfree.data.loader import RankShare, _generator
from rootfree.data.text import check_context, evaluation_windows, token_windows


class TextBatchLoader(RankShare):
    """(inputs, targets) of shape (batch_size, context), int64, on ``device``."""

    def __init__(
        self,
        tokens: torch.Tensor,
        *,
        context: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_tokens: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size: {batch_size} (must be >= 1)")
        check_context(context, {"train": len(tokens)})
        self.epoch_tokens = epoch_tokens or len(tokens) - 1
        self.tokens = tokens.to(device)
        self.context, self.batch_size, self.seed = context, batch_size, seed
        self.rank, self.world_size = rank, world_size

    @property
    def samples(self) -> int:
        """An epoch's worth of windows: as many as the training split (or ``epoch_tokens``) holds
        disjoint."""
        return self.epoch_tokens // self.context

    @property
    def targets_per_batch(self) -> int:
        """Predicted tokens in one global batch: what the running loss is averaged over."""
        return self.global_batch_size * self.context

    def __len__(self) -> int:
        return self.samples // self.global_batch_size

    def batches(
        self, epoch: int = 0, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` from batch index ``start`` on; every rank draws the same
        starts and takes its slice of each global batch."""
        count = len(self) * self.global_batch_size
        starts = torch.randint(
            0, len(self.tokens) - self.context, (count,), generator=_generator(self.seed, epoch)
        ).to(self.tokens.device)
        for index in range(start, len(self)):
            first = index * self.global_batch_size + self.rank * self.batch_size
            yield token_windows(self.tokens, starts[first : first + self.batch_size], self.context)


class TextEvalLoader:
    """Every token of a split after the first predicted exactly once, in order."""

    def __init__(
        self, tokens: torch.Tensor, *, context: int, batch_size: int, split: str, device="cpu"
    ) -> None:
        check_context(context, {split: len(tokens)})
        self.tokens = tokens.to(device)
        self.context, self.batch_size, self.split = context, batch_size, split

    @property
    def targets(self) -> int:
        return len(self.tokens) - 1

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return evaluation_windows(self.tokens, self.context, self.batch_size, self.split)
