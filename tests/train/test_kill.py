"""A training process killed with SIGKILL mid-epoch is relaunched into a correct, finished run."""

from __future__ import annotations

import json
import signal

import torch

from tests.train.helpers import launch, train_py, wait_for

ARGS = (
    "experiment=smoke",
    "dataset.train=12000",
    "trainer.checkpoint_every_steps=20",
    "trainer.log_every=10",
)


def test_sigkill_mid_epoch_then_relaunch_equals_uninterrupted(tmp_path):
    straight = train_py(*ARGS, runs=tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    runs = tmp_path / "killed"
    process = launch(runs, *ARGS)
    wait_for(runs, "*/checkpoints/last.pt")
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert alive, "the run finished before it could be killed"
    (run,) = runs.iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "running"

    relaunch = train_py(*ARGS, runs=runs)
    assert relaunch.returncode == 0, relaunch.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "done" and status["resumed"] is True
    (straight_run,) = (tmp_path / "straight").iterdir()
    assert straight_run.name == run.name, "same config, same run hash"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    want = torch.load(straight_run / "checkpoints" / "last.pt", weights_only=True)["model"]
    got = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key, value in want.items():
        assert torch.equal(got[key], value), key
