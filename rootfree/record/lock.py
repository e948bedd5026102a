"""One writer per run directory: an exclusive, non-blocking ``flock`` on ``<run>/lock``.

The kernel drops the lock when its process dies (SIGKILL, OOM, a node reboot), so a lock is
never stale: a ``running`` status whose lock nobody holds belongs to a dead process.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

LOCK_NAME = "lock"


class RunLock:
    """``acquire()`` is True when this process now owns the run directory."""

    def __init__(self, run_path: str | Path) -> None:
        self.path = Path(run_path) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        owner = {"pid": os.getpid(), "host": platform.node(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> dict[str, Any]:
        """Who holds (or last held) the lock: pid, host, since; empty if unknown."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(run_path: str | Path) -> bool:
    """Whether a live process holds the run directory's lock."""
    path = Path(run_path) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
