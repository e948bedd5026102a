"""Builders for a run's parts from its resolved config; the trainer, the config check and the
trainer benchmark share them, so B and every argument are derived in one place."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rootfree.data import BatchLoader, DatasetSplits, load_dataset
from rootfree.models import create_model
from rootfree.optim import create_optimizer, optimizer_arguments


def global_batch_size(config: dict[str, Any], world_size: int = 1) -> int:
    """B: the samples one optimizer step averages over (all ranks, all accumulated micro-batches)."""
    return config["dataset"]["batch_size"] * world_size * config["trainer"]["accumulate"]


def dataset_options(config: dict[str, Any]) -> dict[str, Any]:
    """The dataset config without the loader's batch sizes: what ``load_dataset`` takes."""
    options = dict(config["dataset"])
    options.pop("batch_size")
    options.pop("eval_batch_size")
    return options


def build_data(
    config: dict[str, Any], device: torch.device, rank: int = 0, world_size: int = 1
) -> tuple[DatasetSplits, BatchLoader, dict[str, BatchLoader]]:
    """The splits, the shuffled training loader (this rank's share) and the val/test loaders."""
    data = load_dataset(**dataset_options(config))
    common = dict(mean=data.mean, std=data.std, device=device)
    train = BatchLoader(
        *data.train,
        batch_size=config["dataset"]["batch_size"],
        shuffle=True,
        augment=data.augmentation,
        seed=config["seed"],
        drop_last=True,
        rank=rank,
        world_size=world_size,
        **common,
    )
    evaluation = {
        split: BatchLoader(
            *getattr(data, split), batch_size=config["dataset"]["eval_batch_size"], **common
        )
        for split in ("val", "test")
    }
    return data, train, evaluation


def build_model(
    config: dict[str, Any], num_classes: int, channels: int, image_size: int
) -> nn.Module:
    options = dict(config["model"])
    model = create_model(options.pop("name"), num_classes, channels, image_size, **options)
    if config["trainer"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return model


def build_optimizer(
    config: dict[str, Any], model: nn.Module, batch_size: int
) -> torch.optim.Optimizer:
    """The configured optimizer over ``model``, its paper-named settings translated, with B.

    ``optimizer.batch_size``, when set, replaces B (1 is the paper's no-B-scaling ablation);
    ``optimizer.lr_cov_scales`` ({name substring: factor}) scales lr_cov per parameter;
    ``optimizer.param_overrides`` ({name pattern: {argument: value}}) sets anything per name.
    """
    options = dict(config["optimizer"])
    name = options.pop("name")
    fixed_b = options.pop("batch_size", None)
    return create_optimizer(
        name,
        model,
        batch_size=fixed_b or batch_size,
        lr_cov_scales=options.pop("lr_cov_scales", None),
        param_overrides=options.pop("param_overrides", None),
        decay_1d=config["trainer"]["decay_1d"],
        **optimizer_arguments(name, options),
    )
