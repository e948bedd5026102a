"""Atomic checkpoints that load with ``weights_only=True``, and a fallback when the last is corrupt."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, then rename: a kill mid-write never leaves a torn ``path``.

    The checkpoint being replaced is kept as ``<name>.prev.pt``, the fallback if the new one
    turns out unreadable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, path.with_suffix(".prev.pt"))
    os.replace(tmp, path)


def load_latest(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, else its predecessor (with a warning), else None."""
    for candidate in (path, path.with_suffix(".prev.pt")):
        if not candidate.exists():
            continue
        try:
            return torch.load(candidate, map_location="cpu", weights_only=True)
        except Exception as error:  # a torn or corrupt file: any unpickling error
            log.warning(
                "checkpoint %s is unreadable (%s); trying the previous one", candidate, error
            )
    return None
