"""torchrun with 2 CPU processes equals one process with the doubled batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.train.helpers import ROOT, train_py

ARGS = (
    "experiment=smoke",
    "model=vit",
)  # LayerNorm: per-sample, so per-rank batches change nothing


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_two_process_ddp_equals_one_process_with_doubled_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            str(ROOT / "train.py"),
            f"paths.runs={tmp_path / 'two'}",
            *ARGS,
            "dataset.batch_size=16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = train_py(*ARGS, "dataset.batch_size=32", runs=tmp_path / "one")
    assert single.returncode == 0, single.stderr

    (two,), (one,) = (tmp_path / "two").iterdir(), (tmp_path / "one").iterdir()
    a = torch.load(two / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(one / "checkpoints" / "last.pt", weights_only=True)
    assert a["position"]["step"] == b["position"]["step"]
    assert a["optimizer"]["param_groups"][0]["batch_size"] == 32, "B is the global batch"
    for key, value in b["model"].items():
        torch.testing.assert_close(a["model"][key], value, rtol=1e-5, atol=1e-6)
