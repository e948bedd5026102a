"""A sweep's progress as its jobs finish: one line per job (``job 3 of 8: done ...``) with the
running tally, and a summary at the end (done / skipped / diverged / failed / ...).

A Hydra callback (conf/config.yaml, ``hydra.callbacks``). Jobs may run in other processes (joblib,
SLURM), so each job appends its outcome to a tally file under the runs folder that the sweep's
own process created and removes at the end; the sweep's id and size reach the jobs through the
environment, which launchers pass on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from rootfree.record import RunDir, RunStatus
from rootfree.record.files import append_line

log = logging.getLogger("rootfree.sweep")
ID, SIZE = "ROOTFREE_SWEEP_ID", "ROOTFREE_SWEEP_SIZE"
OUTCOMES = ("done", "skipped", "diverged", "failed", "interrupted", "rejected")


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep launches: Optuna's trial count, else the product of the lengths
    of the command line's sweeps (None where that cannot be known up front)."""
    sweeper = config.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    try:
        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        return math.prod(len(list(o.sweep_iterator())) for o in parsed if o.is_sweep_override())
    except Exception:  # glob sweeps need the config: no count, the tally still works
        return None


def _tally_file(config: DictConfig) -> Path:
    return Path(config.hydra.sweep.dir) / ".sweeps" / f"{os.environ[ID]}.jsonl"


def _read_tally(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["outcome"] for line in path.read_text().splitlines() if line)


def describe(tally: Counter) -> str:
    return ", ".join(f"{tally[o]} {o}" for o in OUTCOMES if tally[o] or o in OUTCOMES[:4])


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.finished_before = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[ID] = uuid.uuid4().hex[:12]
        size = sweep_size(config)
        os.environ[SIZE] = "" if size is None else str(size)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        status = RunDir(config.hydra.runtime.output_dir, writer=False).status()
        self.finished_before = status is not None and RunStatus(status["status"]).final

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if ID not in os.environ or config.hydra.mode != RunMode.MULTIRUN:
            return
        outcome = self.outcome(config, job_return)
        path = _tally_file(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_line(path, json.dumps({"outcome": outcome, "dir": config.hydra.runtime.output_dir}))
        tally = _read_tally(path)
        size = os.environ.get(SIZE) or "?"
        name = Path(config.hydra.runtime.output_dir).name
        done = sum(tally.values())
        log.info(
            "sweep: job %d of %s (%s): %s; so far %s", done, size, name, outcome, describe(tally)
        )

    def outcome(self, config: DictConfig, job_return: JobReturn) -> str:
        if job_return.status == JobStatus.FAILED:
            return "failed"
        if self.finished_before:
            return "skipped"
        status = RunDir(config.hydra.runtime.output_dir, writer=False).status()
        if status is None:  # a bad config's directory is removed; a locked run never wrote one
            return "rejected" if not Path(config.hydra.runtime.output_dir).exists() else "skipped"
        if status["status"] == "running":  # another process holds the run: this job skipped it
            return "skipped"
        return status["status"] if status["status"] in OUTCOMES else "failed"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = _tally_file(config)
        tally = _read_tally(path)
        log.info("sweep finished: %d jobs: %s", sum(tally.values()), describe(tally))
        path.unlink(missing_ok=True)
        if path.parent.exists() and not any(path.parent.iterdir()):
            path.parent.rmdir()
