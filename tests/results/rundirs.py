"""Write minimal run directories in the trainer's format, with chosen numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from rootfree.record import SCHEMA, config_hash


def write_run(
    root: Path,
    name: str,
    *,
    optimizer: dict,
    seed: int,
    status: str = "done",
    val: list[float] = (),
    test: list[float] = (),
    selection_split: str = "val",
    dataset: str = "cifar100",
    model: str = "resnet",
    trainer: dict | None = None,
    train_subset: int | None = None,
    losses: tuple[list[float], list[float]] | None = None,
) -> Path:
    """``trainer`` and ``train_subset`` set the run's budget (left out of the config if None);
    ``losses``: (val, test) losses per epoch, with the perplexities a language model logs."""
    run = root / name
    run.mkdir(parents=True)
    config = {
        "dataset": {"name": dataset, "selection_split": selection_split},
        "model": {"name": model},
        "optimizer": optimizer,
        "seed": seed,
    }
    if trainer is not None:
        config["trainer"] = trainer
    if train_subset is not None:
        config["dataset"]["train_subset"] = train_subset
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    record = {"schema": SCHEMA, "status": status, "run_hash": config_hash(config)}
    (run / "status.json").write_text(json.dumps(record))
    rows = [
        {"epoch": i + 1, "lr": 0.123, "wall_seconds": 10.0 * (i + 1), "val_acc": v, "test_acc": t}
        for i, (v, t) in enumerate(zip(val, test))
    ]
    for row, val_loss, test_loss in zip(rows, *(losses or ([], []))):
        row.update(val_loss=val_loss, test_loss=test_loss)
        row.update(val_ppl=math.exp(val_loss), test_ppl=math.exp(test_loss))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run
