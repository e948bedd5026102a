"""The paper's eight comparisons and the optimizers the authors ran on each: a run of one of
them must find the paper's best hyperparameters (experiments/best/<experiment>_<optimizer>.yaml),
never fall back to defaults because a file is missing or misspelt."""

from __future__ import annotations

from pathlib import Path

from rootfree.config_paths import config_dir

CNN_OPTIMIZERS = ("sgd", "adamw", "rootfree_rmsprop")  # the released CNN script runs no Shampoo
VIT_OPTIMIZERS = (*CNN_OPTIMIZERS, "shampoo", "rootfree_shampoo")
PAPER_EXPERIMENTS: dict[str, tuple[str, ...]] = {
    **{
        f"paper_cifar100_{model}": CNN_OPTIMIZERS
        for model in ("vgg16bn", "resnet34", "densenet121", "resnet50", "resnet50_mse")
    },
    **{f"paper_imagewoof_{model}": VIT_OPTIMIZERS for model in ("swin", "focalnet", "gcvit")},
}


def missing_best_file(
    experiment: str | None, optimizer: str, experiments: Path | None = None
) -> Path | None:
    """The best file a paper experiment needs for ``optimizer`` if it is absent, else None."""
    if optimizer not in PAPER_EXPERIMENTS.get(experiment or "", ()):
        return None
    root = experiments or config_dir("experiments")
    path = Path(root or "experiments") / "best" / f"{experiment}_{optimizer}.yaml"
    return None if path.is_file() else path
