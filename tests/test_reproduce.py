"""`rootfree-reproduce`: a record rerun at its commit agrees bitwise on the same machine, and a
difference is named by its first epoch and number, beside what changed in the environment."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest

from rootfree.record import read_run
from rootfree.reproduce import environment_differences, first_difference, main
from tests.train.helpers import train_py


def test_the_first_difference_is_the_first_epoch_and_number_that_disagree():
    recorded = [
        {"epoch": 1, "train_loss": 2.2936168794, "val_acc": 0.5, "wall_seconds": 3.0},
        {"epoch": 2, "train_loss": 1.0, "val_acc": math.nan, "wall_seconds": 6.0},
    ]
    assert first_difference(recorded, [{**r, "wall_seconds": 9.0} for r in recorded]) is None
    for unit in ("images", "tokens"):  # each task logs its throughput in its own unit
        timed = [{**r, f"{unit}_per_second": 1.0 + r["epoch"]} for r in recorded]
        slower = [{**r, f"{unit}_per_second": 0.5} for r in timed]
        assert first_difference(timed, slower) is None, unit
    rerun = [{**recorded[0], "train_loss": 2.2936168755}, recorded[1]]
    assert first_difference(recorded, rerun) == {
        "epoch": 1,
        "key": "train_loss",
        "recorded": 2.2936168794,
        "rerun": 2.2936168755,
    }
    missing = [recorded[0], {k: v for k, v in recorded[1].items() if k != "val_acc"}]
    assert first_difference(recorded, missing)["key"] == "val_acc"


def test_environment_differences_name_what_a_bitwise_rerun_depends_on():
    recorded = {"git_commit": "a", "cpu_capability": "AVX2", "threads": 1, "host": "x"}
    rerun = {"git_commit": "a", "cpu_capability": "AVX512", "threads": 1, "host": "y"}
    assert environment_differences(recorded, rerun) == {"cpu_capability": ("AVX2", "AVX512")}


def test_a_smoke_record_reruns_bitwise_at_its_commit(tmp_path, capsys):
    first = train_py("experiment=smoke", "trainer.device=cpu", runs=tmp_path / "runs")
    assert first.returncode == 0, first.stderr
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    launch = read_run(run).launches[-1]
    if launch["git_dirty"] or not launch["git_commit"]:
        pytest.skip("the checkout has uncommitted changes: its commit is not the code that ran")
    assert launch["cpu_capability"] and launch["cpu_model"], "provenance names the CPU kind"
    assert main([str(run), "--keep", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "bitwise: 2 epoch(s), every logged number equal; environment changes: none" in out
    rows = (run / "metrics.jsonl").read_text().splitlines()
    changed = {**json.loads(rows[1]), "val_acc": 0.123}
    (run / "metrics.jsonl").write_text(rows[0] + "\n" + json.dumps(changed) + "\n")
    before = set(Path(tempfile.gettempdir()).glob("rootfree-reproduce-*"))
    assert main([str(run)]) == 1
    assert "differs from epoch 2: val_acc 0.123 (recorded)" in capsys.readouterr().out
    assert set(Path(tempfile.gettempdir()).glob("rootfree-reproduce-*")) == before, "cleaned up"
