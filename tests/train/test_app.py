"""train.py end to end: run directories, skipping finished runs, sweeps with a diverging run, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rootfree.data import DATASETS, TEXT_DATASETS
from rootfree.models import LM_MODELS, MODELS
from rootfree.optim import OPTIMIZERS, create_optimizer, optimizer_arguments
from rootfree.train.groups import group_options
from rootfree.train.loop import resolve_device
from tests.train.helpers import ROOT, compose_config, train_py


def statuses(runs: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["status"] for p in runs.glob("*/status.json")}


def test_every_model_and_dataset_config_composes():
    for model in MODELS:
        for dataset in DATASETS:
            config = compose_config(f"model={model}", f"dataset={dataset}")
            assert (config["model"]["name"], config["dataset"]["name"]) == (model, dataset)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_config_composes_into_a_working_optimizer(optimizer):
    config = compose_config(f"optimizer={optimizer}")
    assert config["optimizer"]["name"] == optimizer
    settings = {k: v for k, v in config["optimizer"].items() if k != "name"}
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    built = create_optimizer(
        optimizer, model, batch_size=8, **optimizer_arguments(optimizer, settings)
    )
    assert settings["lr"] in [group["lr"] for group in built.param_groups]


def test_config_files_match_the_registries():
    models, datasets = {**MODELS, **LM_MODELS}, {**DATASETS, **TEXT_DATASETS}
    for group, registry in (("model", models), ("dataset", datasets)):
        files = {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}
        assert files == set(registry), group
    assert group_options("optimizer") == sorted(OPTIMIZERS), "specs make the optimizer configs"


def test_smoke_run_fills_its_run_directory_and_a_relaunch_skips_it(tmp_path):
    result = train_py("experiment=smoke", runs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    (run,) = tmp_path.iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "done" and status["epochs_done"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    (provenance,) = json.loads((run / "provenance.json").read_text())["launches"]
    assert provenance["dataset_checksum"] and provenance["selection_split"] == "val"
    assert provenance["run_device"] == str(resolve_device("auto")), "the device the run used"
    assert provenance["git_commit"] is None or len(provenance["git_commit"]) == 40
    assert (run / "config.yaml").exists()
    torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    epoch_lines = [line for line in result.stdout.splitlines() if " - epoch " in line]
    assert [line.split(" - ")[1].split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    assert "\r" not in result.stdout + result.stderr
    assert all(line in (run / "train.log").read_text() for line in epoch_lines)

    mtime = (run / "metrics.jsonl").stat().st_mtime_ns
    again = train_py("experiment=smoke", runs=tmp_path)
    assert again.returncode == 0 and "skipping" in again.stderr + again.stdout
    assert (run / "metrics.jsonl").stat().st_mtime_ns == mtime


def test_sweep_with_a_diverging_run_completes_the_others_and_reruns_nothing(tmp_path):
    sweep = ("-m", "experiment=smoke", "optimizer=sgd", "optimizer.lr=0.05,1e30,0.1")
    result = train_py(*sweep, runs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(statuses(tmp_path).values()) == ["diverged", "done", "done"]
    diverged = next(p for p, s in statuses(tmp_path).items() if s == "diverged")
    assert "non-finite" in json.loads((tmp_path / diverged / "status.json").read_text())["error"]

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/status.json")}
    again = train_py(*sweep, runs=tmp_path)
    assert again.returncode == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/status.json")} == mtimes


@pytest.mark.parametrize(
    "override,message",
    [
        ("optimizer.lr=-1", "Invalid optimizer.lr: -1; must be > 0"),
        (
            "dataset.root=/nonexistent",
            "Invalid dataset.root: '/nonexistent'; no Fashion-MNIST idx(.gz) files",
        ),
        ("optimizer=adamx", "Invalid optimizer: 'adamx'; choose one of ['adamw', "),
        ("model=resnett", "Invalid model: 'resnett'; choose one of ["),
        ("+optimizer.lrr=0.1", "Invalid optimizer.lrr: 0.1; rootfree_adam takes ['batch_size', "),
    ],
)
def test_bad_input_fails_in_one_line_before_a_run_directory(tmp_path, override, message):
    extra = [] if "dataset.root" in override else ["experiment=smoke"]
    result = train_py(*extra, override, runs=tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rootfree: {message}"), result.stderr
    assert "Traceback" not in result.stderr
    assert not statuses(tmp_path) and not [p for p in tmp_path.glob("*") if p.is_dir()]


@pytest.mark.parametrize(
    "arguments,suggestion",
    [
        (["optimizer=rootfree_adm"], "did you mean 'rootfree_adam'?"),
        (["-m", "optimizer=sgd,rootfree_adm"], "did you mean 'rootfree_adam'?"),
        (["dataset=fashion_mnst"], "did you mean 'fashion_mnist'?"),
        (["+optimizer.lrr=0.1"], "did you mean 'lr'?"),
    ],
)
def test_a_typo_gets_the_nearest_name(tmp_path, arguments, suggestion):
    result = train_py("experiment=smoke", *arguments, runs=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(suggestion), result.stderr


def test_help_lists_the_config_groups(tmp_path):
    result = train_py("--help", runs=tmp_path)
    assert result.returncode == 0
    groups = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    listed = [line.split(":")[0] for line in groups.strip().splitlines()]
    assert listed == [
        "dataset",
        "model",
        "optimizer",
        "trainer",
        "logger",
        "experiment",
        "tuning",
        "hydra/launcher",
    ]
    assert "rootfree_rmsprop" in groups and "paper_cifar100_resnet34" in groups
    assert result.stdout.splitlines()[1].startswith("`rootfree-train [group=option ...]"), (
        "the installed command, which a wheel user has, not only the checkout's train.py"
    )
    assert "`rootfree-results` (reads runs/)" in result.stdout
    for internal in ("best:", "search/random", "experiment_search", "paths:"):
        assert internal not in groups
