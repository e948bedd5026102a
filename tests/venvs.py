"""Fresh virtual environments for install tests."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).parents[1]


def fresh_venv(folder: Path) -> Path:
    """A new environment holding the wheel alone; its dependencies are borrowed from this one
    through a .pth line (which does not run this environment's editable-install hooks)."""
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def build_wheel(out: Path, source: Path = ROOT) -> Path:
    """A wheel of ``source`` (rootfree's checkout by default) built with this environment's
    setuptools, in ``out`` (a folder of its own)."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(out), str(source)], check=True)
    (wheel,) = out.glob("*.whl")
    return wheel
