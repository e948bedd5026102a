"""Sweeps beyond the basic launcher: random search, submitit's local executor, the SLURM config."""

from __future__ import annotations

import json

import pytest
import yaml

from rootfree.record import read_run
from tests.train.helpers import compose_config, train_py

SMALL = ("dataset=synthetic", "trainer.epochs=1", "trainer.progress=false")


@pytest.mark.slow  # CI runs it in make test-slow
def test_random_search_samples_log_uniform_trials_and_a_relaunch_reruns_none(tmp_path):
    args = ("-m", "tuning=random", *SMALL, "hydra.sweeper.n_trials=3")
    result = train_py(*args, runs=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 3
    lrs = [yaml.safe_load((run / "config.yaml").read_text())["optimizer"]["lr"] for run in runs]
    assert len(set(lrs)) == 3 and all(1e-4 <= lr <= 1.0 for lr in lrs)
    output = result.stdout + result.stderr
    assert "sweep finished: 3 jobs: 3 done, 0 skipped, 0 diverged, 0 failed" in output
    assert "setup plugin" not in output and "\x1b[" not in output, "third-party noise silenced"
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(read_run(run).final["val_acc"] for run in runs)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.jsonl")}
    again = train_py(*args, runs=tmp_path)
    assert again.returncode == 0
    assert "sweep finished: 3 jobs: 0 done, 3 skipped" in again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.jsonl")} == mtimes


@pytest.mark.slow  # CI runs it in make test-slow
def test_sweep_through_submitit_local_executor(tmp_path):
    result = train_py("-m", "hydra/launcher=submitit_local", *SMALL, "seed=0,1", runs=tmp_path)
    assert result.returncode == 0, result.stderr
    statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("*/status.json")]
    assert statuses == ["done", "done"]
    assert "sweep finished: 2 jobs: 2 done" in result.stdout + result.stderr, (
        "tallied across processes"
    )
    assert not (tmp_path / ".sweeps").exists()


def test_a_sweep_reports_each_job_and_sums_up(tmp_path):
    train_py(*SMALL, "seed=0", "optimizer.lr=1e-3", runs=tmp_path)
    result = train_py("-m", *SMALL, "seed=0,1", "optimizer.lr=1e-3,-1", runs=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "sweep: job 4 of 4" in output
    assert "sweep finished: 4 jobs: 1 done, 1 skipped, 0 diverged, 0 failed, 2 rejected" in output


def test_slurm_launcher_requeues_on_timeout_and_local_launcher_composes():
    from hydra import compose, initialize_config_dir

    from tests.train.helpers import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        slurm = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        local = compose("config", overrides=["hydra/launcher=local"], return_hydra_config=True)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.max_num_timeout > 0 and slurm.hydra.launcher.array_parallelism > 0
    assert local.hydra.launcher._target_.endswith("JoblibLauncher")
    assert compose_config()["optimizer"]["name"] == "rootfree_adam"


def test_basic_sweep_of_a_paper_experiment_ignores_its_search_space(tmp_path):
    """Search spaces load only with tuning=random; a seed sweep uses Hydra's basic sweeper."""
    result = train_py(
        "-m",
        "experiment=paper_small",
        "optimizer=sgd",
        "seed=0,1",
        "dataset=synthetic",
        "trainer.max_steps=2",
        runs=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(tmp_path.glob("*/status.json"))) == 2
