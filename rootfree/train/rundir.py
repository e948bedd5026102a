"""The run directory: the one contract between the trainer and the results module.

config.yaml       the resolved config
status.json       {"schema": 1, "status": running|done|failed|diverged, times, epochs, error}
metrics.jsonl     one JSON object per epoch
provenance.json   git commit and dirty flag, versions, device, determinism, dataset checksum
checkpoints/      last.pt (and last.prev.pt), best.pt
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

SCHEMA = 1
STATUSES = ("running", "done", "failed", "diverged")
# Top-level config keys that do not change a run's result, so they stay out of its hash.
NON_SEMANTIC_KEYS = ("hydra", "paths", "logger", "tuning")


def config_hash(config: dict[str, Any]) -> str:
    """Hash of the semantic part of a resolved config (seed included, output paths excluded)."""
    semantic = {k: v for k, v in config.items() if k not in NON_SEMANTIC_KEYS}
    canonical = json.dumps(semantic, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


class RunDir:
    """A run directory; with ``writer=False`` (DDP ranks other than 0) every write is a no-op."""

    def __init__(self, path: str | Path, writer: bool = True) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.writer = writer

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def set_status(self, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"Invalid status: {status!r}; choose one of {list(STATUSES)}")
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        previous = self.status() or {}
        record = {**previous, **fields, "schema": SCHEMA, "status": status, "updated": time.time()}
        record.setdefault("started", record["updated"])
        _write_json_atomic(self.path / "status.json", record)

    def metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill mid-write
                break
        return rows

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl with ``rows`` (atomic), e.g. truncated to a resumed epoch."""
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / "metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.path / "metrics.jsonl")

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.write_metrics(self.metrics() + [row])

    def write_provenance(self, **extra: Any) -> None:
        if not self.writer:
            return
        _write_json_atomic(self.path / "provenance.json", {**provenance(), **extra})


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else platform.processor(),
        "host": platform.node(),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
