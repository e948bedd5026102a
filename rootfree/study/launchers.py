"""Where the study's runs execute: subprocesses on this machine (``local``), or submitit jobs on
a SLURM cluster (``slurm``) or on this machine through submitit's local executor
(``submitit_local``, what the tests use). The driver stays the same: it keeps ``--jobs`` runs in
flight, each a plain train run whose record decides what is left, so a relaunched driver
resumes; on SLURM a job stopped at its time limit is requeued and resumes from its run's last
checkpoint. The SLURM resources default to the train app's launcher config
(``conf/hydra/launcher/slurm.yaml``), so a sweep and a study ask for the same machines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rootfree.config_paths import config_dir

Launch = Callable[[list[str], Path, str], int]  # (overrides, log path, device) -> return code
LAUNCHERS = ("local", "slurm", "submitit_local")
# the train app's launcher keys that submitit's AutoExecutor takes, under its own names
_SUBMITIT_NAMES = {
    "timeout_min": "timeout_min",
    "gpus_per_node": "gpus_per_node",
    "cpus_per_task": "cpus_per_task",
    "mem_gb": "mem_gb",
    "partition": "slurm_partition",
    "account": "slurm_account",
}


def _launcher_config() -> dict[str, Any]:
    return yaml.safe_load((config_dir("conf") / "hydra" / "launcher" / "slurm.yaml").read_text())


def slurm_parameters(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """submitit parameters from the train app's SLURM launcher config, then ``overrides``
    (submitit's names, e.g. ``slurm_partition``); unset (null) keys are left out."""
    config = _launcher_config()
    mapped = {ours: config[theirs] for theirs, ours in _SUBMITIT_NAMES.items() if theirs in config}
    return {k: v for k, v in {**mapped, **(overrides or {})}.items() if v is not None}


def make_launch(kind: str, folder: Path, parameters: dict[str, Any] | None = None) -> Launch:
    """The function that runs one train run for ``kind`` (see LAUNCHERS) and returns its exit
    code; submitit's files go under ``folder``."""
    from rootfree.study.schedule import train

    if kind == "local":
        return train
    if kind not in LAUNCHERS:
        raise ValueError(f"Invalid --launcher: {kind!r}; choose one of {list(LAUNCHERS)}")
    import submitit

    cluster = "slurm" if kind == "slurm" else "local"
    requeues = _launcher_config().get("max_num_timeout", 3)
    executor = submitit.AutoExecutor(
        folder=folder / "%j", cluster=cluster, slurm_max_num_timeout=requeues
    )
    executor.update_parameters(name="rootfree-study", **slurm_parameters(parameters))
    lock = threading.Lock()  # the driver submits from several threads

    def launch(overrides: list[str], log_path: Path, device: str) -> int:
        with lock:
            job = executor.submit(TrainJob(), overrides, log_path, device)
        return job.result()

    return launch


class TrainJob:
    """One train run as a submitit job. Requeued at its time limit (submitit calls
    ``checkpoint``), it resumes from its run directory's last checkpoint."""

    def __call__(self, overrides: list[str], log_path: Path, device: str) -> int:
        from rootfree.study.schedule import train

        return train(overrides, log_path, device)

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
