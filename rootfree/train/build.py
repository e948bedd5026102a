"""Builders for a run's parts from its resolved config; the trainer, the config check and the
trainer benchmark share them, so B and every argument are derived in one place. The dataset's
task (``rootfree.tasks``) picks its builders from ``TASK_BUILDERS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rootfree.data import BatchLoader, DatasetSplits, load_dataset
from rootfree.data.ragged import RaggedImages
from rootfree.data.text import TextCorpus
from rootfree.data.text_loader import TextBatchLoader, TextEvalLoader
from rootfree.data.text_registry import load_text_dataset
from rootfree.models import create_model
from rootfree.models.lm import create_language_model
from rootfree.optim import create_optimizer, optimizer_arguments
from rootfree.tasks import CLASSIFICATION, LANGUAGE_MODEL, Task, task_for


def global_batch_size(config: dict[str, Any], world_size: int = 1) -> int:
    """B: the samples one optimizer step averages over (all ranks, all accumulated micro-batches)."""
    return config["dataset"]["batch_size"] * world_size * config["trainer"]["accumulate"]


def dataset_options(config: dict[str, Any]) -> dict[str, Any]:
    """The dataset config without the loaders' settings: what the dataset's loader takes."""
    options = dict(config["dataset"])
    for key in ("batch_size", "eval_batch_size", "context", "epoch_tokens"):
        options.pop(key, None)
    return options


@dataclass
class RunData:
    """A run's data as the trainer uses them, whatever the task."""

    task: Task
    splits: DatasetSplits | TextCorpus
    train_loader: BatchLoader | TextBatchLoader
    eval_loaders: dict[str, BatchLoader | TextEvalLoader]
    checksum: str
    selection_split: str
    level: str  # what one target is: "image", or a text corpus's "char" or "word"


def build_data(
    config: dict[str, Any], device: torch.device, rank: int = 0, world_size: int = 1
) -> RunData:
    """The data of the dataset's task: training loader (this rank's share) and val/test loaders."""
    task = task_for(config["dataset"]["name"])
    return TASK_BUILDERS[task.name].data(config, device, rank, world_size)


def build_model(config: dict[str, Any], data: RunData) -> nn.Module:
    """The configured model sized for ``data``: classes and image shape, or the vocabulary."""
    return TASK_BUILDERS[data.task.name].model(config, data)


def build_train_eval_loader(
    config: dict[str, Any], data: RunData, device: torch.device
) -> BatchLoader | TextEvalLoader | None:
    """The training split in evaluation order, without augmentation, for the final train-split
    evaluation; None where the task's data cannot give one."""
    return TASK_BUILDERS[data.task.name].train_eval_loader(config, data, device)


def build_text_data(
    config: dict[str, Any], device: torch.device, rank: int = 0, world_size: int = 1
) -> RunData:
    """A corpus, random training windows of ``dataset.context`` tokens, ordered val/test windows."""
    corpus = load_text_dataset(**dataset_options(config))
    context, settings = config["dataset"]["context"], config["dataset"]
    train = TextBatchLoader(
        corpus.train,
        context=context,
        batch_size=settings["batch_size"],
        device=device,
        seed=config["seed"],
        rank=rank,
        world_size=world_size,
        epoch_tokens=settings.get("epoch_tokens"),
    )
    evaluation = {
        split: TextEvalLoader(
            getattr(corpus, split),
            context=context,
            batch_size=settings["eval_batch_size"],
            split=split,
            device=device,
        )
        for split in ("val", "test")
    }
    return RunData(LANGUAGE_MODEL, corpus, train, evaluation, corpus.checksum, "val", corpus.level)


def build_image_data(
    config: dict[str, Any], device: torch.device, rank: int = 0, world_size: int = 1
) -> RunData:
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
    return RunData(
        CLASSIFICATION, data, train, evaluation, data.checksum, data.selection_split, "image"
    )


def text_train_eval_loader(
    config: dict[str, Any], data: RunData, device: torch.device
) -> TextEvalLoader:
    """A corpus's first training block as long as its validation split (a whole pass over a
    large corpus would cost many epochs' evaluations)."""
    block = data.splits.train[: len(data.splits.val)]
    context, batch_size = config["dataset"]["context"], config["dataset"]["eval_batch_size"]
    return TextEvalLoader(
        block, context=context, batch_size=batch_size, split="train", device=device
    )


def image_train_eval_loader(
    config: dict[str, Any], data: RunData, device: torch.device
) -> BatchLoader | None:
    """Every training image; None where training images are only cropped per batch
    (ImageFolder)."""
    images, labels = data.splits.train
    if isinstance(images, RaggedImages):
        return None
    stats = dict(mean=data.splits.mean, std=data.splits.std, device=device)
    return BatchLoader(images, labels, batch_size=config["dataset"]["eval_batch_size"], **stats)


def build_text_model(config: dict[str, Any], data: RunData) -> nn.Module:
    options = dict(config["model"])
    return create_language_model(options.pop("name"), len(data.splits.vocabulary), **options)


def build_image_model_for(config: dict[str, Any], data: RunData) -> nn.Module:
    splits = data.splits
    return build_image_model(config, splits.num_classes, splits.channels, splits.image_size)


def build_image_model(
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


@dataclass(frozen=True)
class TaskBuilders:
    """What a task builds for the trainer: its data, its model and its train-split evaluation."""

    data: Callable[..., RunData]
    model: Callable[[dict[str, Any], RunData], nn.Module]
    train_eval_loader: Callable[..., BatchLoader | TextEvalLoader | None]


TASK_BUILDERS = {
    CLASSIFICATION.name: TaskBuilders(
        build_image_data, build_image_model_for, image_train_eval_loader
    ),
    LANGUAGE_MODEL.name: TaskBuilders(build_text_data, build_text_model, text_train_eval_loader),
}
