"""Each of the paper's eight experiments, with each optimizer the paper ran on it, trains two
steps on generated data written in the real on-disk formats (CIFAR-100's pickled batches, an
ImageFolder of JPEGs of varied sizes), is stopped after the first step and resumes to finish.

The default suite runs one optimizer per experiment at a small image size, except the MSE
ResNet-50, the same network as the cross-entropy one (test_trainer covers the MSE loss); the
rest, and the paper's 224-pixel input, are marked slow (`make test-all`)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.train.helpers import ROOT, compose_config
from tests.train.test_trainer import run

EXPERIMENTS = sorted(
    p.stem
    for p in (ROOT / "experiments" / "experiment").glob("paper_*.yaml")
    if "small" not in p.stem
)
DEFAULT = {"cifar100": "sgd", "imagewoof": "rootfree_rmsprop"}


def ran(experiment: str) -> list[str]:
    """The optimizers the paper ran on ``experiment``: those with a best-run file."""
    return sorted(
        p.stem.removeprefix(f"{experiment}_")
        for p in (ROOT / "experiments" / "best").glob(f"{experiment}_*.yaml")
        if not p.stem.removeprefix(f"{experiment}_").startswith("mse")
    )


def in_default_suite(experiment: str, optimizer: str) -> bool:
    return optimizer == DEFAULT[experiment.split("_")[1]] and not experiment.endswith("_mse")


CASES = [
    pytest.param(e, o, marks=[] if in_default_suite(e, o) else [pytest.mark.slow], id=f"{e}-{o}")
    for e in EXPERIMENTS
    for o in ran(e)
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    cifar = root / "cifar-100-python"
    cifar.mkdir()
    for name, n in (("train", 16), ("test", 8)):
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": list(rng.integers(0, 100, n)),
        }
        with open(cifar / name, "wb") as f:
            pickle.dump(batch, f)
    for split, count in (("train", 6), ("val", 2)):
        for label in ("n02086240", "n02087394"):
            folder = root / "imagewoof2" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (120 + 37 * i, 160 + 11 * i, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG")
    return root


def test_every_paper_experiment_has_a_default_case():
    assert len(EXPERIMENTS) == 8
    for experiment in EXPERIMENTS:
        assert DEFAULT[experiment.split("_")[1]] in ran(experiment), experiment


def train_two_steps(experiment, optimizer, data_root, tmp_path, *extra):
    vit = "imagewoof" in experiment
    config = compose_config(
        f"experiment={experiment}",
        f"optimizer={optimizer}",
        f"dataset.root={data_root / 'imagewoof2' if vit else data_root}",
        "dataset.batch_size=4",
        "dataset.eval_batch_size=8",
        "dataset.val_fraction=0.25",
        "trainer.max_steps=2",
        "trainer.checkpoint_every_steps=1",
        "trainer.device=cpu",
        *extra,
    )
    assert run(config, tmp_path, kill_at=1) is None, "stopped after one step"
    trainer = run(config, tmp_path)
    (row,) = trainer.run_dir.metrics()
    assert row["step"] == 2 and np.isfinite(row["train_loss"]) and np.isfinite(row["test_loss"])


@pytest.mark.parametrize("experiment,optimizer", CASES)
def test_paper_experiment_trains_stops_and_resumes(experiment, optimizer, data_root, tmp_path):
    small = ["dataset.image_size=64"] if "imagewoof" in experiment else []
    train_two_steps(experiment, optimizer, data_root, tmp_path, *small)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if "imagewoof" in e])
def test_paper_vit_experiment_at_the_papers_input_size(experiment, data_root, tmp_path):
    train_two_steps(experiment, DEFAULT["imagewoof"], data_root, tmp_path)
