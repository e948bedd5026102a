"""Atomic writes with per-writer temporary names, appends that never leave a torn line, and one
clear error for a full disk."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class DiskFull(OSError):
    """No space left on the device; the file being written was left as it was before."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ENOSPC, f"no space left on the device writing {path}", str(path))


def temp_path(path: Path) -> Path:
    """A temporary name no other writer (process or thread) can pick: ``.name.<pid>.<rand>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def _translate_disk_full(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(error, DiskFull):
            raise DiskFull(path) from error
        raise


def write_bytes_atomic(path: Path, data: bytes, keep_previous: Path | None = None) -> None:
    """Write ``data`` to ``path`` through a unique temporary file, fsync, rename.

    Readers see the old file or the new one, never a mix; on any error (a full disk, a signal)
    the temporary file is removed. ``keep_previous``: where the replaced file is moved first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with _translate_disk_full(path), open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1, default=str).encode())


def append_line(path: Path, line: str) -> None:
    """Append one line; if the write fails part-way, cut the file back to where it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _translate_disk_full(path), open(path, "ab") as f:
        start = f.tell()
        try:
            f.write(line.rstrip("\n").encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                f.truncate(start)
            raise


def torch_bytes(payload: Any) -> bytes:
    """``torch.save`` into memory, so that a failed disk write raises a plain OSError."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()
