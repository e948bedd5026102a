"""The run directory, the one contract between training and results (schema 3).

config.yaml       the resolved config; its hash (``hashing.config_hash``) names the directory
status.json       {"schema", "status", "run_hash", times, epochs_done, error, ...}
metrics.jsonl     one JSON object per epoch, appended as each epoch ends (``tail -f`` works)
provenance.json   {"launches": [one entry per launch: code version, packages, machine, data]}
final_eval.json   the final model in eval mode on the whole training split, written when training
                  ends: {"epoch", "step", "train_eval_loss", "train_eval_acc"} (the last epoch's
                  train_acc in metrics.jsonl is a running mean over weights that changed during it),
                  and for Kronecker optimizers "factor_cond_median", "factor_eig_min_median"
                  (the final factors' K K^T: median condition number and smallest eigenvalue)
checkpoints/      last.pt (and last.prev.pt), best.pt: weights_only-loadable
lock              held (flock) by the one process that writes the directory
"""

from __future__ import annotations

import json
import logging
import time
from enum import Enum
from pathlib import Path
from typing import Any

from rootfree.record import provenance as prov
from rootfree.record.files import append_line, write_bytes_atomic, write_json_atomic
from rootfree.record.hashing import SCHEMA
from rootfree.record.lock import RunLock

log = logging.getLogger(__name__)


class RunStatus(str, Enum):
    """A run's state: the five status.json records, and two a reader infers (``stale``: a
    running run whose process is gone; ``unreadable``: no status to read). The one place that
    says which states are final (a relaunch skips them) and which are settled (a driver has
    nothing left to run for them)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    STALE = "stale"
    UNREADABLE = "unreadable"

    @property
    def final(self) -> bool:
        """Done, or diverged with its metrics kept: its result is what it is."""
        return self in (RunStatus.DONE, RunStatus.DIVERGED)

    def settled(self, retry_failed: bool = False) -> bool:
        """Final, or failed (a deterministic crash would fail again) unless failed runs are
        being retried; interrupted and stale runs are resumed."""
        return self.final or (self is RunStatus.FAILED and not retry_failed)


STATUSES = tuple(s.value for s in RunStatus if s not in (RunStatus.STALE, RunStatus.UNREADABLE))
RECORD_FILES = ("config.yaml", "status.json", "metrics.jsonl", "provenance.json", "final_eval.json")


def parse_metrics(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a metrics.jsonl text and its problems (torn lines, repeated or missing epochs)."""
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"metrics.jsonl line {number} is torn")
            continue
        if not isinstance(row, dict) or "epoch" not in row:
            problems.append(f"metrics.jsonl line {number} has no epoch")
            continue
        rows.append(row)
    epochs = [row["epoch"] for row in rows]
    if len(set(epochs)) != len(epochs):
        problems.append(
            f"metrics.jsonl repeats epochs {sorted({e for e in epochs if epochs.count(e) > 1})}"
        )
    elif epochs != list(range(1, len(epochs) + 1)):
        missing = sorted(set(range(1, max(epochs, default=0) + 1)) - set(epochs))
        problems.append(
            f"metrics.jsonl lacks epochs {missing}" if missing else "metrics.jsonl is out of order"
        )
    return rows, problems


class RunDir:
    """A run directory; with ``writer=False`` (DDP ranks other than 0) every write is a no-op."""

    def __init__(self, path: str | Path, writer: bool = True) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.writer = writer
        self.lock = RunLock(self.path)

    def status(self) -> dict[str, Any] | None:
        """The status record, or None if there is none or it cannot be read."""
        try:
            record = json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("status") in STATUSES else None

    def set_status(self, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"Invalid status: {status!r}; choose one of {list(STATUSES)}")
        if not self.writer:
            return
        previous = self.status() or {}
        record = {**previous, **fields, "schema": SCHEMA, "status": status, "updated": time.time()}
        record.setdefault("started", record["updated"])
        write_json_atomic(self.path / "status.json", record)

    def metrics(self) -> list[dict[str, Any]]:
        """The readable metric rows (the trainer's view; ``parse_metrics`` also names problems)."""
        path = self.path / "metrics.jsonl"
        return parse_metrics(path.read_text())[0] if path.exists() else []

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with ``rows`` (atomic), e.g. cut back to a resumed epoch."""
        if self.writer:
            text = "".join(json.dumps(r) + "\n" for r in rows)
            write_bytes_atomic(self.path / "metrics.jsonl", text.encode())

    def append_metrics(self, row: dict[str, Any]) -> None:
        if self.writer:
            append_line(self.path / "metrics.jsonl", json.dumps(row))

    def final_eval(self) -> dict[str, Any] | None:
        """The final training-split evaluation, or None if there is none or it cannot be read."""
        try:
            record = json.loads((self.path / "final_eval.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and "train_eval_acc" in record else None

    def write_final_eval(self, row: dict[str, Any]) -> None:
        if self.writer:
            write_json_atomic(self.path / "final_eval.json", row)

    def provenance(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "provenance.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def record_launch(self, **extra: Any) -> dict[str, tuple]:
        """Append this launch to provenance.json; return what changed in the code since the last
        one (and warn), so a resumed run never hides that its epochs came from two versions."""
        if not self.writer:
            return {}
        history = prov.launches(self.provenance())
        current = {**prov.provenance(), **extra}
        changes = prov.code_changes(history[-1], current) if history else {}
        if changes:
            log.warning("%s resumes under other code: %s", self.path, changes)
        write_json_atomic(
            self.path / "provenance.json", {"schema": SCHEMA, "launches": [*history, current]}
        )
        return changes
