"""Experiment loggers (``logger=``): none, csv, tensorboard, or wandb (offline by default; never
asks for a login). The run directory's metrics.jsonl is written whichever is chosen."""

from __future__ import annotations

import csv
import numbers
import os
from typing import Any

from rootfree.record import RunDir

WANDB_MODES = ("offline", "disabled", "online")


class NullLogger:
    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbLogger:
    """The run hash is the wandb run id, so a resumed run continues the same wandb run."""

    def __init__(self, config: dict[str, Any], run_dir: RunDir) -> None:
        import wandb

        settings = config["logger"]
        if settings["mode"] not in WANDB_MODES:
            raise ValueError(
                f"Invalid logger.mode: {settings['mode']!r}; choose one of {list(WANDB_MODES)}"
            )
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=settings["project"],
            mode=settings["mode"],
            id=run_dir.path.name,
            resume="allow",
            dir=str(run_dir.path),
            config=config,
            reinit="finish_previous",
        )

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self) -> None:
        self.run.finish()


class CsvLogger:
    """``<run>/log.csv`` in long form (step, name, value), one row per number, flushed as logged,
    so ``tail -f`` and pandas both read it whatever metrics come and go."""

    def __init__(self, config: dict[str, Any], run_dir: RunDir) -> None:
        path = run_dir.path / "log.csv"
        new = not path.exists()
        self.file = open(path, "a", newline="")  # noqa: SIM115 (closed in finish)
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(["step", "name", "value"])

    def log(self, metrics: dict[str, Any], step: int) -> None:
        for name, value in metrics.items():
            if isinstance(value, numbers.Real):
                self.writer.writerow([step, name, value])
        self.file.flush()

    def finish(self) -> None:
        self.file.close()


class TensorBoardLogger:
    """Scalars under ``<run>/tensorboard``: ``tensorboard --logdir runs/`` shows every run."""

    def __init__(self, config: dict[str, Any], run_dir: RunDir) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir.path / "tensorboard"))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        for name, value in metrics.items():
            if isinstance(value, numbers.Real):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def finish(self) -> None:
        self.writer.close()


LOGGERS = {
    "none": lambda config, run_dir: NullLogger(),
    "csv": CsvLogger,
    "tensorboard": TensorBoardLogger,
    "wandb": WandbLogger,
}


def create_logger(config: dict[str, Any], run_dir: RunDir):
    kind = config["logger"]["kind"]
    if kind not in LOGGERS:
        raise ValueError(f"Invalid logger.kind: {kind!r}; choose one of {sorted(LOGGERS)}")
    if not run_dir.writer:
        return NullLogger()
    return LOGGERS[kind](config, run_dir)
