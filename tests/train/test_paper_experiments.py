"""The paper's comparisons (experiments/) compose with the paper's best hyperparameters applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootfree.optim import create_optimizer, optimizer_arguments
from tests.train.helpers import ROOT, compose_config

EXPERIMENTS = sorted(  # the paper's eight comparisons (paper_small is the small-scale version)
    p.stem
    for p in (ROOT / "experiments" / "experiment").glob("paper_*.yaml")
    if p.stem != "paper_small"
)
BEST = sorted(p.stem for p in (ROOT / "experiments" / "best").glob("*.yaml"))


def test_every_paper_comparison_has_best_runs():
    assert len(EXPERIMENTS) == 8
    for experiment in EXPERIMENTS:
        optimizers = {
            b.removeprefix(experiment + "_") for b in BEST if b.startswith(experiment + "_")
        }
        assert {"sgd", "adamw", "rootfree_rmsprop"} <= optimizers, experiment


@pytest.mark.parametrize("best", BEST)
def test_best_run_composes_into_a_working_optimizer(best):
    experiment = next(
        e
        for e in EXPERIMENTS
        if best.startswith(e + "_")
        and best[len(e) + 1 :]
        in ("sgd", "adamw", "rootfree_rmsprop", "shampoo", "rootfree_shampoo")
    )
    optimizer = best[len(experiment) + 1 :]
    config = compose_config(f"experiment={experiment}", f"optimizer={optimizer}")
    settings = {k: v for k, v in config["optimizer"].items() if k != "name"}
    import yaml

    expected = yaml.safe_load(Path(ROOT / "experiments" / "best" / f"{best}.yaml").read_text())
    assert {k: settings[k] for k in expected} == expected
    import torch

    create_optimizer(
        optimizer, torch.nn.Linear(3, 2), batch_size=128, **optimizer_arguments(optimizer, settings)
    )


def test_cnn_setup_matches_the_paper():
    config = compose_config("experiment=paper_cifar100_resnet34", "optimizer=rootfree_rmsprop")
    assert config["dataset"]["name"] == "cifar100" and config["model"]["depth"] == 34
    assert config["trainer"]["epochs"] == 210 and config["trainer"]["amp"] == "bf16"
    assert config["trainer"]["schedule"]["milestones"] == pytest.approx([69 / 210, 139 / 210])
    assert config["optimizer"]["lr"] == 4.98e-3 and config["optimizer"]["state_dtype"] == "bfloat16"
    mse = compose_config("experiment=paper_cifar100_resnet50_mse", "optimizer=sgd")
    assert mse["trainer"]["loss"]["kind"] == "rescaled_mse" and mse["optimizer"]["lr"] == 2.63e-2


def test_outside_paper_experiments_the_optimizer_defaults_stay():
    assert compose_config("optimizer=rootfree_rmsprop")["optimizer"]["lr"] == 5.0e-3
    assert compose_config("experiment=smoke", "optimizer=sgd")["optimizer"]["lr"] == 0.05


@pytest.mark.parametrize(
    "experiment", ["paper_imagewoof_swin", "paper_imagewoof_focalnet", "paper_imagewoof_gcvit"]
)
def test_paper_vit_shampoo_keeps_metas_size_one_axes(experiment):
    config = compose_config(f"experiment={experiment}", "optimizer=shampoo")
    assert config["optimizer"]["squeeze_size_one_axes"] is False
    assert "squeeze_size_one_axes" not in compose_config("optimizer=shampoo")["optimizer"]


@pytest.mark.parametrize(
    "experiment", ["paper_imagewoof_swin", "paper_imagewoof_focalnet", "paper_imagewoof_gcvit"]
)
def test_paper_vit_rootfree_shampoo_runs_the_authors_schedule_and_name_discount(experiment):
    optimizer = compose_config(f"experiment={experiment}", "optimizer=rootfree_shampoo")[
        "optimizer"
    ]
    assert optimizer["update_schedule"] == "log4"
    assert optimizer["lr_cov_scales"] == {"norm": 0.25, "proj": 0.25, "bias": 0.25}
    assert compose_config("optimizer=rootfree_shampoo")["optimizer"]["lr_cov_scales"] is None


def test_the_paper_vocabulary_lists_exactly_the_experiments_and_their_best_files():
    from rootfree.paper_experiments import PAPER_EXPERIMENTS, missing_best_file

    assert sorted(PAPER_EXPERIMENTS) == EXPERIMENTS
    for experiment, optimizers in PAPER_EXPERIMENTS.items():
        for optimizer in optimizers:
            assert missing_best_file(experiment, optimizer) is None, (experiment, optimizer)


def test_a_missing_best_file_stops_the_run_before_it_starts(tmp_path):
    from rootfree.paper_experiments import missing_best_file

    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "paper_cifar100_resnet34_adamw.yml").write_text("lr: 1.0\n")  # misspelt
    missing = missing_best_file("paper_cifar100_resnet34", "adamw", tmp_path)
    assert missing == tmp_path / "best" / "paper_cifar100_resnet34_adamw.yaml"
    assert missing_best_file("paper_cifar100_resnet34", "rootfree_adam", tmp_path) is None
    assert missing_best_file(None, "adamw", tmp_path) is None
