"""Run records: the directory layout, its writing, reading, naming (the config hash) and
provenance. The trainer, the results module and every script go through this package."""

from rootfree.record.files import DiskFull
from rootfree.record.hashing import (
    HASH_EXCLUDED,
    SCHEMA,
    budget_id,
    config_hash,
    hash_matches,
    setting_id,
)
from rootfree.record.lock import RunLock, is_locked
from rootfree.record.reader import RunRecord, iter_runs, read_run
from rootfree.record.rundir import (
    RECORD_FILES,
    STATUSES,
    RunDir,
    RunStatus,
    parse_metrics,
)

__all__ = [
    "HASH_EXCLUDED",
    "RECORD_FILES",
    "SCHEMA",
    "STATUSES",
    "DiskFull",
    "RunDir",
    "RunLock",
    "RunRecord",
    "RunStatus",
    "budget_id",
    "config_hash",
    "hash_matches",
    "is_locked",
    "iter_runs",
    "parse_metrics",
    "read_run",
    "setting_id",
]
