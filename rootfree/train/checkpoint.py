"""Atomic checkpoints that load with ``weights_only=True``, and a fallback when the last is corrupt."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from rootfree.record.files import torch_bytes, write_bytes_atomic

log = logging.getLogger(__name__)


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Serialize in memory, then write a unique temporary file and rename it over ``path``.

    A kill or a full disk mid-write never leaves a torn ``path`` or a stray temporary file. The
    checkpoint being replaced is kept as ``<name>.prev.pt``, the fallback if the new one turns
    out unreadable.
    """
    write_bytes_atomic(path, torch_bytes(payload), keep_previous=path.with_suffix(".prev.pt"))


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
