"""Where rootfree's Hydra configs live: the copy a wheel installs inside the package, else the
checkout's ``conf/`` and ``experiments/`` (``python train.py``, an editable install).

Imports nothing heavy: the Hydra search-path plugin calls it in every Hydra app's start-up.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGED = PACKAGE / "_configs"  # written by setup.py's build step
MARKERS = {"conf": "config.yaml", "experiments": "best"}


def config_dir(name: str) -> Path | None:
    """The ``conf`` or ``experiments`` folder in use, or None if neither copy exists."""
    for base in (PACKAGED, PACKAGE.parent):
        if (base / name / MARKERS[name]).exists():
            return base / name
    return None


def config_dirs() -> list[Path]:
    return [path for path in map(config_dir, MARKERS) if path is not None]
