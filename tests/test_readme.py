"""Every command in the README runs: the first-ten-minutes walk-through as written (slow; CI runs
it), the other train.py lines composed and checked as train.py checks them before any data
loads, make targets and scripts present. Installing is CI's own first step (`make install`)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rootfree.train.validate import validate_config
from tests.train.helpers import compose_config

ROOT = Path(__file__).parents[1]
INSTALL = ("python3 -m venv", "make install")  # CI's own set-up


def _blocks() -> dict[str, list[str]]:
    """{section heading: its bash commands}, comments stripped."""
    blocks: dict[str, list[str]] = {}
    heading = ""
    text = (ROOT / "README.md").read_text()
    for match in re.finditer(r"^(#+ [^\n]*)$|^```bash\n(.*?)^```", text, flags=re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ")
            continue
        lines = [re.sub(r"\s+# .*$", "", line).strip() for line in match.group(2).splitlines()]
        blocks.setdefault(heading, []).extend(line for line in lines if line)
    return blocks


def _walkthrough() -> list[str]:
    return [c for c in _blocks()["The first ten minutes"] if not c.startswith(INSTALL)]


def _other_commands() -> list[str]:
    return [
        c for name, block in _blocks().items() if name != "The first ten minutes" for c in block
    ]


def _train_overrides(command: str) -> list[str]:
    """The overrides of a train.py / torchrun line, one value of each sweep list."""
    words = shlex.split(os.path.expandvars(command))
    words = words[words.index(next(w for w in words if w.endswith("train.py"))) + 1 :]
    overrides = [w for w in words if not w.startswith("-") and not w.startswith("hydra")]
    return [re.sub(r"=([^,]*),.*$", r"=\1", w) for w in overrides]


def test_the_readme_has_the_commands_this_test_runs():
    assert len(_walkthrough()) >= 5
    assert sum("train.py" in c for c in _other_commands()) >= 5


@pytest.mark.parametrize(
    "command",
    [c for c in _other_commands() if "train.py" in c and "--help" not in c],
)
def test_readme_train_commands_compose_and_pass_the_config_check(command):
    validate_config(compose_config(*_train_overrides(command)), check_data=False)


def test_readme_make_targets_and_scripts_exist():
    targets = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for command in [c for block in _blocks().values() for c in block]:
        words = shlex.split(command)
        if words[0] == "make":
            assert words[1] in targets, command
        for word in words:
            if word.startswith("scripts/"):
                assert (ROOT / word).is_file(), command


@pytest.mark.slow
def test_the_first_ten_minutes_run_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in _walkthrough():
        command = command.replace("python train.py", f"{sys.executable} {ROOT / 'train.py'}")
        command = command.replace("python -m", f"{sys.executable} -m")
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    assert len(list((tmp_path / "runs").glob("*/metrics.jsonl"))) == 5
    assert list((tmp_path / "runs").glob("*/log.csv"))
    assert "rootfree_adam" in (tmp_path / "results" / "tables" / "comparison.md").read_text()


def test_the_top_commands_install_into_a_virtual_environment_of_their_own(tmp_path):
    """`make train` / `make test` create the environment first and use its python throughout,
    never whatever python3 is."""
    venv = tmp_path / "v"
    dry = subprocess.run(
        ["make", "-n", "-B", "train", "test", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"python3 -m venv {venv}" in dry
    commands = [line for line in dry.splitlines() if " -m pip " in line or "train.py" in line]
    assert commands and all(line.startswith(f"{venv}/bin/python ") for line in commands), dry
    assert f"{venv}/bin/python -m pytest -q" in dry
