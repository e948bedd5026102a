"""Progress output: a bar only on a terminal, plain lines elsewhere, one line per epoch."""

from __future__ import annotations

import io
import logging

from rootfree.train.progress import Progress, clock, epoch_line


class Terminal(io.StringIO):
    def isatty(self):
        return True


ROW = {
    "epoch": 3,
    "step": 30,
    "train_loss": 0.5,
    "train_acc": 0.8,
    "lr": 0.01,
    "images_per_second": 100.0,
}


def test_plain_lines_when_not_a_terminal(caplog):
    stream = io.StringIO()
    progress = Progress(True, total_steps=40, epochs=4, every=10, stream=stream)
    with caplog.at_level(logging.INFO, logger="rootfree.train"):
        list(progress.batches(range(10), 1, total=10, done=0))
        for step in range(1, 21):
            progress.step(step, 0.5 if step in (1, 10, 20) else None)
        progress.epoch({**ROW, "val_acc": 0.7, "test_acc": 0.65}, elapsed=75)
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[1] for line in lines[:3]] == ["1/40", "10/40", "20/40"]
    assert lines[3].startswith("epoch 3/4  train loss 0.5000  acc 80.00%  val 70.00%  test 65.00%")
    assert "elapsed 1:15" in lines[3]


def test_a_bar_on_a_terminal_and_nothing_when_disabled_or_quiet(caplog):
    terminal = Terminal()
    progress = Progress(True, total_steps=40, epochs=4, every=10, stream=terminal)
    list(progress.batches(range(5), 1, total=5, done=0))
    assert "epoch 1/4" in terminal.getvalue()
    with caplog.at_level(logging.INFO, logger="rootfree.train"):
        Progress(False, 40, 4, 10, stream=io.StringIO()).epoch(ROW, elapsed=1)
        Progress(True, 40, 4, 10, quiet=True, stream=io.StringIO()).epoch(ROW, elapsed=1)
    assert len(caplog.records) == 1 and "val" not in caplog.records[0].getMessage()


def test_clock_and_line_format():
    assert clock(59.6) == "1:00" and clock(3725) == "1:02:05"
    assert "eta 0:10" in epoch_line(ROW, 4, elapsed=5, eta=10)
