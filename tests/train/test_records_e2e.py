"""Run records under races, signals, a full disk and bad configs, through the real train.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.helpers import ROOT, launch, train_py, wait_for

SLOW_SMOKE = ("experiment=smoke", "dataset.train=12000", "trainer.checkpoint_every_steps=20")


def epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_second_launch_of_a_running_config_skips_it(tmp_path):
    first = launch(tmp_path, *SLOW_SMOKE)
    status = wait_for(tmp_path, "*/status.json")
    second = train_py(*SLOW_SMOKE, runs=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "is being trained by pid" in second.stderr and "skipping" in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    run = status.parent
    assert epochs(run) == [1, 2]
    assert json.loads(status.read_text())["status"] == "done"
    assert not list(run.rglob("*.tmp"))


@pytest.mark.slow  # CI runs it in make test-slow
def test_a_parallel_sweep_with_a_duplicated_override_trains_once(tmp_path):
    result = train_py(
        "-m",
        "hydra/launcher=local",
        "hydra.launcher.n_jobs=2",
        *SLOW_SMOKE,
        "seed=0,0",
        runs=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = [p for p in tmp_path.iterdir() if (p / "status.json").exists()]
    assert epochs(run) == [1, 2]
    assert json.loads((run / "status.json").read_text())["status"] == "done"


# drop-path draws random numbers every step, so a resume that forgot the RNG state would differ
DROPPY = (
    "experiment=smoke",
    "model=vit",
    "+model.drop_path_rate=0.2",
    "dataset.train=4000",
    "trainer.device=cpu",
    "trainer.checkpoint_every_steps=10",
)


def test_sigterm_marks_the_run_interrupted_and_a_relaunch_continues_bitwise(tmp_path):
    straight = train_py(*DROPPY, runs=tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    runs = tmp_path / "stopped"
    process = launch(runs, *DROPPY)
    checkpoint = wait_for(runs, "*/checkpoints/last.pt")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert "; a relaunch resumes from the checkpoint at step " in stderr
    run = checkpoint.parent.parent
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted"

    relaunch = train_py(*DROPPY, runs=runs)
    assert relaunch.returncode == 0, relaunch.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert epochs(run) == [1, 2]
    (straight_run,) = (tmp_path / "straight").iterdir()
    want = torch.load(straight_run / "checkpoints" / "last.pt", weights_only=True)["model"]
    got = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key, value in want.items():
        assert torch.equal(got[key], value), key


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["trainer.epochs=0"], "Invalid trainer.epochs: 0; must be an integer >= 1"),
        (["optimizer.lr=abc"], "Invalid optimizer.lr: 'abc'; must be a number > 0"),
        (
            ["optimizer=sgd", "optimizer.momentum=1.5"],
            "Invalid optimizer.momentum: 1.5; must be in [0, 1)",
        ),
    ],
)
def test_a_bad_value_fails_before_data_loads_and_leaves_no_run_directory(
    tmp_path, overrides, message
):
    # the dataset root does not exist: had the data been loaded first, that would be the error
    result = train_py("dataset.root=/nonexistent", *overrides, runs=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"rootfree: {message}"
    assert "Traceback" not in result.stderr
    assert not [p for p in tmp_path.glob("*") if p.is_dir()]


def test_a_full_disk_fails_in_one_line_and_leaves_no_partial_file(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        result = train_py("experiment=smoke", "model=vit", runs=disk)
        files = [p.name for p in disk.rglob("*") if p.is_file()]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert result.returncode == 1
    assert "no space left on the device writing" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and "unexpected pos" not in result.stderr
    assert not [f for f in files if f.endswith(".tmp")], files


def test_a_launcher_that_exits_on_slurms_pre_timeout_signal_leaves_an_interrupted_run(tmp_path):
    """submitit answers SLURM's USR2 by requeueing the job and exiting inside the task."""
    wrapper = tmp_path / "submitit_like.py"
    wrapper.write_text(
        "import runpy, signal, sys\n"
        "signal.signal(signal.SIGUSR2, lambda *_: sys.exit(-1))\n"
        f"sys.argv = [{str(ROOT / 'train.py')!r}, *sys.argv[1:]]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, str(wrapper), f"paths.runs={runs}", *SLOW_SMOKE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = wait_for(runs, "*/checkpoints/last.pt")
    process.send_signal(signal.SIGUSR2)
    process.wait(timeout=60)
    status = json.loads((checkpoint.parent.parent / "status.json").read_text())
    assert status["status"] == "interrupted" and "SystemExit" in status["error"]


FASHION = (
    "dataset.train_subset=256",
    "trainer.max_steps=2",
    "trainer.progress=false",
    "trainer.device=cpu",
)


def fashion_copy(folder: Path, altered: bool = False) -> Path:
    """Debian's Fashion-MNIST files in ``folder``; ``altered`` flips one test label."""
    import gzip

    source = Path("/usr/share/datasets/fashion-mnist")
    if not source.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    folder.mkdir(parents=True)
    for file in source.iterdir():
        data = file.read_bytes()
        if altered and file.name.startswith("t10k-labels"):
            raw = bytearray(gzip.decompress(data))
            raw[-1] = (raw[-1] + 1) % 10
            data = gzip.compress(bytes(raw))
        (folder / file.name).write_bytes(data)
    return folder


def as_if_interrupted(run: Path) -> None:
    status = json.loads((run / "status.json").read_text())
    marked = {**status, "status": "interrupted", "error": "SIGTERM at epoch 1, step 1"}
    (run / "status.json").write_text(json.dumps(marked))


def test_moved_data_resume_the_same_run_and_changed_data_are_refused(tmp_path):
    first = train_py(f"dataset.root={fashion_copy(tmp_path / 'a')}", *FASHION, runs=tmp_path / "r")
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "r").iterdir()
    as_if_interrupted(run)
    moved = train_py(f"dataset.root={fashion_copy(tmp_path / 'b')}", *FASHION, runs=tmp_path / "r")
    assert moved.returncode == 0, moved.stderr
    assert list((tmp_path / "r").iterdir()) == [run], "the same run, by its data not its path"
    as_if_interrupted(run)
    changed = fashion_copy(tmp_path / "c", altered=True)
    refused = train_py(f"dataset.root={changed}", *FASHION, runs=tmp_path / "r")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rootfree: Invalid dataset.root: '{changed}'; the data there")
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["error"]) == ("interrupted", "SIGTERM at epoch 1, step 1")


@pytest.mark.slow  # CI runs it in make test-slow
def test_a_relaunch_without_a_checkpoint_says_it_starts_over(tmp_path):
    first = train_py("experiment=smoke", runs=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    as_if_interrupted(run)
    for checkpoint in (run / "checkpoints").iterdir():
        checkpoint.unlink()
    again = train_py("experiment=smoke", runs=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no checkpoint from its earlier launch (interrupted); starting over" in again.stderr
