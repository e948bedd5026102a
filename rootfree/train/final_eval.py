"""final_eval.json for finished runs that predate it or part of it, from their last checkpoint:
the weights and optimizer state the trainer has when training ends, so the values are those it
would have written."""

from __future__ import annotations

from pathlib import Path

from rootfree.record import RunDir, read_run
from rootfree.train.loop import Trainer


def backfill_final_eval(path: str | Path) -> bool:
    """Write ``path``/final_eval.json, or add the keys it lacks, if the run is done and its last
    checkpoint is the end of training; True if anything was added. Values it has are kept."""
    record = read_run(path)
    if not record.finished or record.config is None:
        return False
    trainer = Trainer(record.config, RunDir(path, writer=False))
    if not trainer.resume() or (
        trainer.epoch < trainer.epochs and trainer.step < trainer.total_steps
    ):
        return False
    known = record.final_eval or {}
    final_eval = trainer.final_record() or {}
    if set(final_eval) <= set(known):
        return False
    RunDir(path).write_final_eval({**final_eval, **known})
    return True
