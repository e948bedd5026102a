"""What a person watching a run sees: a progress bar on a terminal, plain lines in a log file,
and one persistent line per epoch, which logging also writes to the run's train.log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

log = logging.getLogger("rootfree.train")


def clock(seconds: float) -> str:
    """h:mm:ss (or m:ss under an hour)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(row: dict[str, Any], epochs: int, elapsed: float, eta: float) -> str:
    """One epoch in a line: losses, accuracies in %, lr, speed, elapsed time and ETA."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.4f}"]
    parts.append(f"acc {100 * row['train_acc']:.2f}%")
    if "val_ppl" in row:
        per = "bpc" if "val_bpc" in row else "ppl"
        parts.append(f"val loss {row['val_loss']:.4f} ({per} {row[f'val_{per}']:.3f})")
        parts.append(f"test loss {row['test_loss']:.4f} ({per} {row[f'test_{per}']:.3f})")
    elif "val_acc" in row:
        parts.append(f"val {100 * row['val_acc']:.2f}%  test {100 * row['test_acc']:.2f}%")
    parts.append(f"lr {row['lr']:.3g}")
    for unit, short in (("images", "img"), ("tokens", "tok")):
        if row.get(f"{unit}_per_second"):
            parts.append(f"{row[f'{unit}_per_second']:.0f} {short}/s")
    parts.append(f"elapsed {clock(elapsed)}  eta {clock(eta)}")
    return "  ".join(parts)


class Progress:
    """A bar when ``stream`` is a terminal, else a line every ``every`` steps; neither when
    ``enabled`` is false. Epoch lines are logged unless ``quiet`` (DDP ranks other than 0)."""

    def __init__(
        self,
        enabled: bool,
        total_steps: int,
        epochs: int,
        every: int,
        quiet: bool = False,
        stream=None,
    ) -> None:
        stream = stream or sys.stderr
        enabled = enabled and not quiet
        self.quiet, self.stream = quiet, stream
        self.bar_mode = enabled and stream.isatty()
        self.lines_mode = enabled and not self.bar_mode
        self.total_steps, self.epochs, self.every = total_steps, epochs, every
        self.started, self.first_step = time.monotonic(), None
        self.bar: tqdm | None = None

    def eta(self, step: int) -> float:
        if self.first_step is None or step <= self.first_step:
            return 0.0
        rate = (time.monotonic() - self.started) / (step - self.first_step)
        return rate * (self.total_steps - step)

    def batches(self, items: Iterable, epoch: int, total: int, done: int) -> Iterator:
        """The epoch's micro-batches, under a bar in bar mode."""
        if not self.bar_mode:
            return iter(items)
        self.bar = tqdm(
            items,
            total=total,
            initial=done,
            leave=False,
            desc=f"epoch {epoch}/{self.epochs}",
            file=self.stream,
        )
        return iter(self.bar)

    def step(self, step: int, loss: float | None) -> None:
        """After an optimizer step; ``loss`` is the running mean when it was just read, else None."""
        if self.first_step is None:
            self.first_step, self.started = step - 1, time.monotonic()
        if loss is None:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}")
        elif self.lines_mode and (step % self.every == 0 or step == self.first_step + 1):
            log.info(
                "  step %d/%d  loss %.4f  eta %s",
                step,
                self.total_steps,
                loss,
                clock(self.eta(step)),
            )

    def epoch(self, row: dict[str, Any], elapsed: float) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.quiet:
            log.info(epoch_line(row, self.epochs, elapsed, self.eta(row["step"])))
