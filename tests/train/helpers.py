"""Compose configs from conf/ and run train.py, for the framework tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.train.validate import cpu_has_bf16_lstm

ROOT = Path(__file__).resolve().parents[2]


def compose_config(*overrides: str) -> dict:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def train_py(*args: str, runs: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *[a for a in args if a.startswith("-")],
            f"paths.runs={runs}",
            *[a for a in args if not a.startswith("-")],
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def launch(runs: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), f"paths.runs={runs}", *overrides],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(runs: Path, pattern: str, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(runs.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no {pattern} under {runs} within {timeout} s")


# for tests of a bf16 LSTM on CPU: oneDNN runs one only with AVX-512 BF16 or AMX
NEEDS_BF16_LSTM = pytest.mark.skipif(
    not cpu_has_bf16_lstm(),
    reason="oneDNN has no bf16 LSTM on this CPU (it needs AVX-512 BF16 or AMX)",
)
