"""narrow_search on run records: its printed overrides survive a shell and Hydra's parser."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.results.rundirs import write_run
from tests.train.helpers import ROOT


def sgd(lr, momentum):
    return {"name": "sgd", "lr": lr, "momentum": momentum, "weight_decay": 5e-4}


def make_runs(root):
    for i, (lr, momentum, val) in enumerate(
        [(0.01, 0.9, 0.9), (0.02, 0.8, 0.88), (1.0, 0.1, 0.5), (1e-5, 0.5, 0.4)]
    ):
        write_run(root, f"s{i}", optimizer=sgd(lr, momentum), seed=0, val=[val], test=[val])
    write_run(root, "other", optimizer=sgd(0.5, 0.5), seed=0, val=[0.99], test=[0.99], model="vgg")


def test_printed_overrides_paste_into_a_shell_and_parse_as_log_ranges(tmp_path):
    make_runs(tmp_path)
    command = (
        f"printf '%s\\n' $({sys.executable} {ROOT / 'scripts' / 'narrow_search.py'} {tmp_path} "
        "--optimizer sgd --model resnet --top 0.5 --margin 2)"
    )
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    overrides = OverridesParser.create().parse_overrides(result.stdout.split())
    ranges = {o.key_or_group: o.value() for o in overrides}
    assert set(ranges) == {"optimizer.lr", "optimizer.momentum"}
    lr = ranges["optimizer.lr"]
    assert "log" in lr.tags and (lr.start, lr.end) == pytest.approx((0.005, 0.04))
    assert ranges["optimizer.momentum"].end == pytest.approx(0.999)


def test_several_models_or_too_few_trials_fail_with_a_reason(tmp_path):
    make_runs(tmp_path)
    script = ROOT / "scripts" / "narrow_search.py"
    mixed = subprocess.run(
        [sys.executable, script, tmp_path, "--optimizer", "sgd"], capture_output=True, text=True
    )
    assert mixed.returncode != 0 and "pass --dataset and --model" in mixed.stderr
    few = subprocess.run(
        [
            sys.executable,
            script,
            tmp_path,
            "--optimizer",
            "sgd",
            "--model",
            "resnet",
            "--top",
            "0.2",
        ],
        capture_output=True,
        text=True,
    )
    assert few.returncode != 0 and "keeps 1; a range needs at least 2" in few.stderr
