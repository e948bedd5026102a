"""final_eval.json for finished runs that predate it, from their last checkpoint: the weights the
trainer evaluates when training ends, so the values are those it would have written."""

from __future__ import annotations

from pathlib import Path

from rootfree.record import RunDir, read_run
from rootfree.train.loop import Trainer


def backfill_final_eval(path: str | Path) -> bool:
    """Write ``path``/final_eval.json if the run is done, lacks one and its last checkpoint is
    the end of training; True if written."""
    record = read_run(path)
    if record.state != "done" or record.problems or record.final_eval or record.config is None:
        return False
    trainer = Trainer(record.config, RunDir(path, writer=False))
    if not trainer.resume() or (
        trainer.epoch < trainer.epochs and trainer.step < trainer.total_steps
    ):
        return False
    final_eval = trainer.evaluate_training_set()
    if final_eval is None:
        return False
    RunDir(path).write_final_eval(final_eval)
    return True
