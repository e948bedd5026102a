"""Reading run directories for results and scripts: every problem named with its file."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rootfree.record.hashing import hash_matches
from rootfree.record.lock import is_locked
from rootfree.record.provenance import launches
from rootfree.record.rundir import RunDir, RunStatus, parse_metrics


@dataclass
class RunRecord:
    """One run directory as read. ``state`` is its status, ``stale`` for a ``running`` run whose
    process is gone, or ``unreadable``; ``problems`` say why it must stay out of a table."""

    path: Path
    config: dict[str, Any] | None
    status: dict[str, Any] | None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    launches: list[dict[str, Any]] = field(default_factory=list)
    final_eval: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    state: str = RunStatus.UNREADABLE.value  # a RunStatus value

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def finished(self) -> bool:
        """Done and sound: its numbers may enter a table."""
        return self.state == RunStatus.DONE.value and not self.problems

    @property
    def final(self) -> dict[str, Any] | None:
        """The last epoch's metrics: a run's result comes from metrics.jsonl alone."""
        return self.metrics[-1] if self.metrics else None


@functools.cache
def _config_loader() -> type | None:
    """PyYAML's C loader with OmegaConf's implicit resolvers (its floats such as 1e-3): the
    mapping OmegaConf.load gives a saved config, an order of magnitude faster, since the study
    and the tables read thousands of records. None where OmegaConf no longer exposes them."""
    try:
        from omegaconf._utils import get_yaml_loader

        resolvers = dict(get_yaml_loader().yaml_implicit_resolvers)
    except (ImportError, AttributeError):
        return None
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return type("ConfigLoader", (base,), {"yaml_implicit_resolvers": resolvers})


def _load_config(path: Path) -> dict[str, Any]:
    if (loader := _config_loader()) is not None:
        config = yaml.load(path.read_text(), Loader=loader)
    else:
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(config, dict):
        raise ValueError("not a mapping")
    return config


def read_run(path: str | Path) -> RunRecord:
    run_dir = RunDir(path, writer=False)
    record = RunRecord(path=run_dir.path, config=None, status=run_dir.status())
    try:
        record.config = _load_config(run_dir.path / "config.yaml")
    except Exception as error:  # missing, not YAML, not a mapping: all mean "unreadable"
        record.problems.append(f"config.yaml is unreadable ({type(error).__name__})")
    if record.status is None:
        record.problems.append("status.json is missing or unreadable")
    else:
        record.state = record.status["status"]
        if record.state == RunStatus.RUNNING.value and not is_locked(run_dir.path):
            record.state = RunStatus.STALE.value
        stored = record.status.get("run_hash")
        schema = record.status.get("schema", 1)
        if record.config is not None and not (
            stored and hash_matches(record.config, stored, schema)
        ):
            record.problems.append(
                "config.yaml does not match the run's hash (edited after the run)"
            )
    metrics_path = run_dir.path / "metrics.jsonl"
    if metrics_path.exists():
        record.metrics, problems = parse_metrics(metrics_path.read_text(errors="replace"))
        record.problems += problems
    if record.state == "done" and not record.metrics:
        record.problems.append("status is done but metrics.jsonl has no rows")
    record.launches = launches(run_dir.provenance())
    record.final_eval = run_dir.final_eval()
    if record.final_eval is None and (run_dir.path / "final_eval.json").exists():
        record.problems.append("final_eval.json is unreadable")
    return record


def iter_runs(root: str | Path) -> Iterator[RunRecord]:
    """Every run directory below ``root`` (a folder with config.yaml or status.json), sorted."""
    root = Path(root)
    folders = {p.parent for name in ("config.yaml", "status.json") for p in root.rglob(name)}
    for folder in sorted(folders):
        if ".hydra" not in folder.parts:
            yield read_run(folder)
