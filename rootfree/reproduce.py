"""``rootfree-reproduce RUN_DIR``: rerun a run record at its recorded commit, in a temporary git
worktree with the recorded thread count, and compare its metrics epoch by epoch.

It prints ``bitwise`` when every logged number agrees, else the first differing epoch and
number, and in both cases how the environment differs from the record's last launch (commit,
CPU kind, torch, threads, ...): on CPU a rerun with the same code, CPU capability, torch and
threads is bitwise; another instruction set (AVX2 against AVX-512) changes float rounding from
the first step on. Exit status 0: bitwise; 1: differs; 2: cannot rerun.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rootfree.record import read_run
from rootfree.record.provenance import REPO, machine

TIMING = ("train_seconds", "wall_seconds")  # and every task's throughput, `<unit>_per_second`
ENVIRONMENT = (
    "git_commit",
    "git_dirty",
    "cpu_model",
    "cpu_capability",
    "torch",
    "python",
    "threads",
    "dataset_checksum",
)


def is_timing(key: str) -> bool:
    """A logged number that measures the machine, not the run: never part of the comparison."""
    return key in TIMING or key.endswith("_per_second")


def first_difference(recorded: list[dict], rerun: list[dict]) -> dict[str, Any] | None:
    """The first epoch and logged number where the rerun's metrics differ from the record's
    (timings aside; NaN equals NaN), or None when every compared epoch agrees exactly. Only
    the epochs both have are compared."""
    for mine, theirs in zip(recorded, rerun):
        for key in sorted(set(mine) | set(theirs)):
            a, b = mine.get(key), theirs.get(key)
            same = a == b or (
                isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
            )
            if not is_timing(key) and not same:
                return {"epoch": mine.get("epoch"), "key": key, "recorded": a, "rerun": b}
    return None


def environment_differences(recorded: dict, rerun: dict) -> dict[str, tuple]:
    """{key: (recorded, rerun)} for the launch facts a bitwise result depends on."""
    return {
        k: (recorded.get(k), rerun.get(k)) for k in ENVIRONMENT if recorded.get(k) != rerun.get(k)
    }


def _worktree(commit: str, folder: Path) -> Path:
    tree = folder / "tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(tree), commit],
        check=True,
        capture_output=True,
    )
    return tree


def rerun(run: Path, commit: str, threads: int, folder: Path, epochs: int | None) -> Path:
    """Train the record's config.yaml with the code of ``commit`` into ``folder/run``; stop
    after ``epochs`` logged epochs if given. Returns the new run directory."""
    tree, out = _worktree(commit, folder), folder / "run"
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    command = [
        sys.executable,
        str(tree / "train.py"),
        f"--config-path={run.resolve()}",
        "--config-name=config",
        f"hydra.run.dir={out}",
        "trainer.device=cpu",
    ]
    try:
        with subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL) as process:
            while process.poll() is None:
                if epochs and len(read_run(out).metrics) >= epochs:
                    process.send_signal(signal.SIGTERM)
                time.sleep(1)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
    return out


def reproduce(run: Path, epochs: int | None = None, keep: Path | None = None) -> int:
    """Rerun ``run`` and print the verdict; returns the exit status."""
    record = read_run(run)
    launch = record.launches[-1] if record.launches else {}
    commit = launch.get("git_commit")
    if not record.metrics or not commit or record.config is None:
        print(
            f"rootfree-reproduce: {run} has no metrics, config or recorded commit", file=sys.stderr
        )
        return 2
    if launch.get("git_dirty"):
        print(f"note: {run} ran from a tree with uncommitted changes; the commit is not its code")
    threads = int(launch.get("threads") or 1)
    print(f"rerunning {run} at {commit[:12]} with {threads} thread(s) ...", flush=True)
    folder = Path(keep or tempfile.mkdtemp(prefix="rootfree-reproduce-"))
    try:
        again = read_run(rerun(run, commit, threads, folder, epochs))
    except subprocess.CalledProcessError as error:
        reason = error.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["git failed"]
        print(f"rootfree-reproduce: no worktree at {commit[:12]}: {reason[0]}", file=sys.stderr)
        return 2
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return _verdict(record, again, launch, epochs)


def _known(value: Any) -> str:
    return "unrecorded" if value is None else str(value)


def _verdict(record, again, launch: dict, epochs: int | None) -> int:
    wanted = record.metrics[:epochs] if epochs else record.metrics
    difference = first_difference(wanted, again.metrics)
    # the rerun ran here: this machine's facts, whatever the old commit's provenance recorded
    here = {**(again.launches[-1] if again.launches else {}), **machine()}
    changes = environment_differences(launch, here)
    env = ", ".join(f"{k} {_known(a)} -> {_known(b)}" for k, (a, b) in changes.items()) or "none"
    if difference is None and len(again.metrics) >= len(wanted):
        print(
            f"bitwise: {len(wanted)} epoch(s), every logged number equal; environment changes: {env}"
        )
        return 0
    if difference is None:
        print(
            f"the rerun stopped after {len(again.metrics)} of {len(wanted)} epochs ({again.state})"
        )
    else:
        print(
            f"differs from epoch {difference['epoch']}: {difference['key']} {difference['recorded']!r}"
            f" (recorded) vs {difference['rerun']!r} (rerun)"
        )
    print(f"environment changes: {env}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rootfree-reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run", type=Path, help="a run directory (config.yaml, metrics, provenance)")
    parser.add_argument("--epochs", type=int, help="compare only the first N epochs (stops early)")
    parser.add_argument("--keep", type=Path, help="rerun into this folder and keep it")
    args = parser.parse_args(argv)
    if not (args.run / "config.yaml").is_file():
        parser.error(f"{args.run} is not a run directory (no config.yaml)")
    return reproduce(args.run, args.epochs, args.keep)


if __name__ == "__main__":
    sys.exit(main())
