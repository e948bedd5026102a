"""The GPU check's code path on CPU at toy sizes: it lists every paper run and times them."""

from __future__ import annotations

import pandas as pd

from tests.scripts.test_benchmarks import load


def test_gpu_check_covers_every_paper_run_and_writes_its_table(tmp_path):
    check = load("gpu_check")
    cases = check.cases()
    assert len(cases) == 30 and ("paper_imagewoof_swin", "rootfree_shampoo") in cases
    assert ("paper_cifar100_resnet50_mse", "sgd") in cases
    only = "paper_cifar100_vgg16bn:sgd,paper_imagewoof_gcvit:rootfree_rmsprop"
    args = [
        "--device",
        "cpu",
        "--batch",
        "2",
        "--image-size",
        "32",
        "--steps",
        "1",
        "--warmup",
        "0",
    ]
    assert check.main([*args, "--only", only, "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "gpu_check_cpu.csv")
    assert list(table["experiment"]) == ["paper_cifar100_vgg16bn", "paper_imagewoof_gcvit"]
    assert (table["step_ms"] > 0).all() and table["loss_finite"].all()
    assert (table["image"] == [32, 32]).all() and (table["batch"] == 2).all()
