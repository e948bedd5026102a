"""Experiment loggers: none, or wandb (offline by default; never asks for a login)."""

from __future__ import annotations

import os
from typing import Any

from rootfree.record import RunDir

LOGGERS = ("none", "wandb")
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


def create_logger(config: dict[str, Any], run_dir: RunDir):
    kind = config["logger"]["kind"]
    if kind not in LOGGERS:
        raise ValueError(f"Invalid logger.kind: {kind!r}; choose one of {list(LOGGERS)}")
    return WandbLogger(config, run_dir) if kind == "wandb" else NullLogger()
