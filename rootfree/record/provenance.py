"""Where a run's numbers came from: code version, packages, machine, determinism, data.

``provenance.json`` holds one entry per launch (``launches``): a resumed run appends, so a run
continued under other code says so instead of overwriting its history.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# Keys whose change between launches means the run's numbers come from more than one code version.
CODE_KEYS = ("git_commit", "git_dirty", "git_diff_sha", "torch", "package_version")
REPO = Path(__file__).resolve().parents[2]  # the checkout the package runs from, if any


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


NOT_CODE = ":(exclude)results"  # tables and records the study writes into its own checkout


def code_version() -> dict[str, Any]:
    """The git commit, whether the tree differs from it outside ``results/`` (untracked files
    count), and a hash of the difference, so two dirty launches can be told apart. A study
    writes its tables and records into ``results/`` of the checkout it runs from; that changes
    no run, so it must not flag the runs launched after it."""
    status = _git("status", "--porcelain", "--", ".", NOT_CODE)
    diff = _git("diff", "HEAD", "--", ".", NOT_CODE) if status else ""
    commit = _git("rev-parse", "HEAD")
    return {
        "git_commit": commit.strip() if commit else None,
        "git_dirty": None if status is None else bool(status.strip()),
        "git_diff_sha": hashlib.sha256((diff or "").encode() + (status or "").encode()).hexdigest()[
            :12
        ]
        if status
        else None,
    }


def cpu_model() -> str | None:
    """The CPU's model name (Linux's /proc/cpuinfo, else the platform's), None if unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict[str, Any]:
    """What a CPU result depends on beyond the code: the CPU model, the instruction set torch's
    kernels chose (``cpu_capability``: a rerun on another one may differ in the last bits), the
    GPU. Two launches that differ here may not be bitwise alike."""
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def provenance() -> dict[str, Any]:
    import torch

    from rootfree import __version__

    return {
        **code_version(),
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else platform.processor(),
        "host": platform.node(),
        **machine(),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "launched": time.time(),
    }


def launches(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The launches of a provenance record (a schema-1 record is one flat launch)."""
    if not record:
        return []
    return list(record["launches"]) if "launches" in record else [record]


def code_changes(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple]:
    """The code keys that differ between two launches: {key: (before, now)}."""
    return {
        key: (previous.get(key), current.get(key))
        for key in CODE_KEYS
        if previous.get(key) != current.get(key)
    }
