"""Check a whole resolved config before any data is loaded or any run directory is written.

Each problem is a ``ConfigError`` whose one-line message names the key, the bad value and what
would have been accepted. The model is built on the meta device with the dataset's shape and the
optimizer on a stand-in model, so their own checks run in well under a second.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rootfree.data.registry import DATASETS, SELECTION_SPLITS
from rootfree.data.text import context_problem
from rootfree.data.text_registry import TEXT_DATASETS
from rootfree.models import MODELS
from rootfree.models.lm import LM_MODELS, create_language_model
from rootfree.optim import OPTIMIZERS, config_keys
from rootfree.tasks import LANGUAGE_MODEL, task_for
from rootfree.train.build import build_image_model, build_optimizer, global_batch_size
from rootfree.train.groups import did_you_mean
from rootfree.train.loggers import LOGGERS
from rootfree.train.loop import AMP_MODES, resolve_device
from rootfree.train.losses import LOSSES
from rootfree.train.schedule import SCHEDULES


class ConfigError(ValueError):
    """A config value that cannot work: ``Invalid <key>: <value>; <what is valid>``."""

    def __init__(self, key: str, value: Any, valid: str) -> None:
        super().__init__(f"Invalid {key}: {value!r}; {valid}")
        self.key = key


def _number(key: str, value: Any, ok: Callable[[float], bool], valid: str) -> None:
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number:
        raise ConfigError(key, value, f"must be a number {valid}")
    if not ok(value):
        raise ConfigError(key, value, f"must be {valid}")


def _integer(key: str, value: Any, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(
            key, value, f"must be an integer >= {minimum}" + (" or null" if optional else "")
        )


def _choice(key: str, value: Any, choices) -> None:
    if value not in choices:
        suggestion = did_you_mean(value, sorted(choices)) if isinstance(value, str) else ""
        raise ConfigError(key, value, f"choose one of {sorted(choices)}{suggestion}")


def _flag(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(key, value, "must be true or false")


# Ranges of the paper's hyperparameter names, the same for every optimizer that has them.
PAPER_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "> 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "lr_cov": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "damping": (lambda v: v >= 0, ">= 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "riemannian_momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
}


def check_trainer(trainer: dict[str, Any]) -> None:
    _integer("trainer.max_steps", trainer["max_steps"], 1, optional=True)
    if trainer["max_steps"] is None:
        _integer("trainer.epochs", trainer["epochs"], 1)
    _integer("trainer.accumulate", trainer["accumulate"], 1)
    _integer("trainer.log_every", trainer["log_every"], 1)
    _integer("trainer.checkpoint_every_steps", trainer["checkpoint_every_steps"], 0)
    minutes = trainer.get("checkpoint_every_minutes")
    if minutes is not None:
        _number("trainer.checkpoint_every_minutes", minutes, lambda v: v >= 0, ">= 0 (0: off)")
    _integer("trainer.eval_every", trainer.get("eval_every"), 1, optional=True)
    _choice("trainer.amp", trainer["amp"], AMP_MODES)
    for key in ("channels_last", "compile", "decay_1d", "progress"):
        _flag(f"trainer.{key}", trainer[key])
    try:
        resolve_device(str(trainer["device"]))
    except (ValueError, RuntimeError) as error:
        raise ConfigError(
            "trainer.device", trainer["device"], "use auto, cpu or cuda[:N] (with CUDA)"
        ) from error
    if trainer["grad_clip"] is not None:
        _number("trainer.grad_clip", trainer["grad_clip"], lambda v: v > 0, "> 0 (or null)")
    loss = trainer["loss"]
    _choice("trainer.loss.kind", loss["kind"], LOSSES)
    _number(
        "trainer.loss.label_smoothing", loss["label_smoothing"], lambda v: 0 <= v < 1, "in [0, 1)"
    )
    schedule = trainer["schedule"]
    _choice("trainer.schedule.kind", schedule["kind"], SCHEDULES)
    _number("trainer.schedule.warmup_epochs", schedule["warmup_epochs"], lambda v: v >= 0, ">= 0")
    _number("trainer.schedule.gamma", schedule["gamma"], lambda v: v > 0, "> 0")
    _number(
        "trainer.schedule.min_factor", schedule["min_factor"], lambda v: 0 <= v <= 1, "in [0, 1]"
    )
    for milestone in schedule["milestones"]:
        _number(
            "trainer.schedule.milestones",
            milestone,
            lambda v: 0 < v < 1,
            "in (0, 1): fractions of training",
        )


def check_dataset(dataset: dict[str, Any]) -> tuple[int, int, int]:
    """Checks the dataset settings; returns its (channels, image size, classes) without loading
    ((0, 0, 0) for a text corpus)."""
    _choice("dataset.name", dataset["name"], {**DATASETS, **TEXT_DATASETS})
    _integer("dataset.batch_size", dataset["batch_size"], 1)
    _integer("dataset.eval_batch_size", dataset["eval_batch_size"], 1)
    if dataset["name"] in TEXT_DATASETS:
        check_text_dataset(dataset)
        return (0, 0, 0)
    _integer("dataset.train_subset", dataset.get("train_subset"), 1, optional=True)
    _choice("dataset.selection_split", dataset.get("selection_split", "val"), SELECTION_SPLITS)
    _number(
        "dataset.val_fraction", dataset.get("val_fraction", 0.1), lambda v: 0 < v < 1, "in (0, 1)"
    )
    return DATASETS[dataset["name"]].shape(**dataset)


def check_text_dataset(dataset: dict[str, Any]) -> None:
    """A text corpus's fractions, and its context against each split's length (files absent:
    checked once they are there, still before a run directory is written)."""
    spec = TEXT_DATASETS[dataset["name"]]
    for key in dataset:
        if key not in spec.keys:
            keys = sorted(spec.keys)
            valid = f"dataset {dataset['name']} takes {keys}" + did_you_mean(key, keys)
            raise ConfigError(f"dataset.{key}", dataset[key], valid)
    for key in ("val_fraction", "test_fraction"):
        if key in dataset:
            _number(f"dataset.{key}", dataset[key], lambda v: 0 < v < 1, "in (0, 1)")
    if "level" in dataset:
        _choice("dataset.level", dataset["level"], ("char", "word"))
    epoch_tokens = dataset.get("epoch_tokens")
    _integer("dataset.epoch_tokens", epoch_tokens, 1, optional=True)
    window = dataset["batch_size"] * dataset.get("context", 1)
    if epoch_tokens is not None and epoch_tokens < window:
        raise ConfigError(
            "dataset.epoch_tokens", epoch_tokens, f"must be >= batch_size x context = {window}"
        )
    try:
        lengths = spec.lengths(**dataset)
    except ValueError as error:
        raise ConfigError("dataset", dataset["name"], str(error)) from error
    problem = context_problem(dataset.get("context"), lengths or {"train": 2**62})
    if problem is not None:
        raise ConfigError("dataset.context", dataset.get("context"), problem)


def check_data_present(dataset: dict[str, Any]) -> None:
    """The dataset's files are where ``dataset.root`` says (or a download is asked for)."""
    spec = {**DATASETS, **TEXT_DATASETS}[dataset["name"]]
    missing = spec.missing(**dataset)
    if missing is not None:
        raise ConfigError("dataset.root", dataset.get("root"), missing)


def check_language_model(config: dict[str, Any]) -> None:
    """The model is a language model, built on the meta device over a stand-in vocabulary."""
    options = dict(config["model"])
    name = options.pop("name")
    if name not in LM_MODELS:
        raise ConfigError(
            "model.name",
            name,
            f"dataset {config['dataset']['name']} is text: choose one of {sorted(LM_MODELS)}",
        )
    try:
        with torch.device("meta"):
            create_language_model(name, 16, **options)
    except (ValueError, TypeError) as error:
        raise ConfigError("model", name, f"cannot be built: {error}") from error


def check_model(config: dict[str, Any], shape: tuple[int, int, int]) -> None:
    if task_for(config["dataset"]["name"]) is LANGUAGE_MODEL:
        return check_language_model(config)
    if config["model"]["name"] in LM_MODELS:
        raise ConfigError(
            "model.name",
            config["model"]["name"],
            f"a language model needs a text dataset ({sorted(TEXT_DATASETS)}); "
            f"for images choose one of {sorted(MODELS)}",
        )
    _choice("model.name", config["model"]["name"], MODELS)
    for option, values in MODELS[config["model"]["name"]].choices.items():
        if option in config["model"]:
            _choice(f"model.{option}", config["model"][option], values)
    channels, image_size, classes = shape
    try:
        with torch.device("meta"):
            build_image_model(config, classes or 10, channels, image_size)
    except (ValueError, TypeError, AssertionError, RuntimeError) as error:
        raise ConfigError(
            "model", config["model"]["name"], f"cannot be built for this dataset: {error}"
        ) from error


def check_optimizer(config: dict[str, Any]) -> None:
    settings = config["optimizer"]
    _choice("optimizer.name", settings["name"], OPTIMIZERS)
    keys = config_keys(settings["name"])
    for key in settings:
        if key not in keys:
            raise ConfigError(
                f"optimizer.{key}",
                settings[key],
                f"{settings['name']} takes {keys}" + did_you_mean(key, keys),
            )
    for key, (ok, valid) in PAPER_RANGES.items():
        if settings.get(key) is not None:
            _number(f"optimizer.{key}", settings[key], ok, valid)
    _integer("optimizer.batch_size", settings.get("batch_size"), 1, optional=True)
    stand_in = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 2))
    try:
        build_optimizer(config, stand_in, global_batch_size(config))
    except (ValueError, TypeError) as error:
        raise ConfigError("optimizer", settings["name"], str(error)) from error


def cpu_has_bf16_lstm() -> bool:
    """Whether oneDNN can run a bf16 LSTM on this CPU (AVX-512 BF16 or AMX): without them
    autocast's LSTM fails at its first forward pass."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_bf16_lstm(config: dict[str, Any]) -> None:
    """A bf16 LSTM on a CPU that cannot run one is refused before any data is loaded."""
    trainer = config["trainer"]
    if config["model"].get("name") != "lstm" or trainer["amp"] != "bf16":
        return
    if resolve_device(str(trainer["device"])).type == "cpu" and not cpu_has_bf16_lstm():
        raise ConfigError(
            "trainer.amp",
            "bf16",
            "this CPU has no bf16 LSTM (oneDNN needs AVX-512 BF16 or AMX): use off, or a GPU",
        )


def validate_config(config: dict[str, Any], check_data: bool = True) -> None:
    """Raise ``ConfigError`` for the first value of ``config`` that cannot work, then (unless
    ``check_data`` is off, for configs meant for another machine) for data that are missing
    and for what this machine cannot run (a bf16 LSTM on a CPU without its kernels)."""
    for section in ("dataset", "model", "optimizer", "trainer"):
        if not isinstance(config.get(section), dict):
            raise ConfigError(section, config.get(section), "must be a config group")
    _integer("seed", config.get("seed"), 0)
    _choice("logger.kind", config.get("logger", {}).get("kind", "none"), LOGGERS)
    check_trainer(config["trainer"])
    shape = check_dataset(config["dataset"])
    check_optimizer(config)
    check_model(config, shape)
    if check_data:
        check_data_present(config["dataset"])
        check_bf16_lstm(config)
