"""Throughput of our trainer against a bare PyTorch loop on the same model, data and batch.

Both train from the same data (uint8 images normalised per batch, or token windows at random
starts), the same model and optimizer, for the same number of steps; runs alternate and the
median images/s (tokens/s for a language model) of each is compared. The bare loop also times
the optimizer step against forward and backward.

    python scripts/bench_trainer.py [--steps 150] [--repeats 3] [overrides ...]

Overrides are Hydra ones, e.g. `model=resnet model.width=16 optimizer=sgd trainer.device=cuda`,
or for a language model `dataset=shakespeare model=lstm dataset.val_fraction=0.002
dataset.test_fraction=0.002` (small evaluation splits: only training is timed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.data import load_dataset
from rootfree.data.ragged import RaggedImages
from rootfree.data.text_registry import load_text_dataset
from rootfree.models.lm import create_language_model
from rootfree.record import RunDir
from rootfree.tasks import LANGUAGE_MODEL, task_for
from rootfree.train.build import (
    build_image_model,
    build_optimizer,
    dataset_options,
    global_batch_size,
)
from rootfree.train.loop import Trainer, resolve_device

CONF = Path(__file__).resolve().parents[1] / "conf"


def ours(config: dict) -> float:
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, RunDir(folder))
        row = trainer.fit()
        return row[f"{trainer.data.task.unit}_per_second"]


class Clock:
    """Seconds spent in each named phase (forward+backward, step), synchronised on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds = device, {"forward_backward": 0.0, "step": 0.0}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds[name] += time.perf_counter() - start


def bare_steps(
    config: dict, model: torch.nn.Module, batches: Callable[[int], tuple], device: torch.device
) -> tuple[float, Clock]:
    """``max_steps`` plain steps over ``batches(step)``; (seconds, per-phase clock)."""
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config["trainer"]["amp"])
    optimizer = build_optimizer(config, model, global_batch_size(config))
    clock = Clock(device)
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(config["trainer"]["max_steps"]):
        x, y = batches(step)
        with clock.phase("forward_backward"):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = model(x).float()
            torch.nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten()).backward()
        with clock.phase("step"):
            optimizer.step()
    return time.perf_counter() - start, clock


def bare_lm(config: dict) -> tuple[float, Clock]:
    """The language-model loop anyone would write: random windows, forward, backward, step."""
    device = resolve_device(config["trainer"]["device"])
    torch.manual_seed(config["seed"])
    corpus = load_text_dataset(**dataset_options(config))
    tokens, context = corpus.train.to(device), config["dataset"]["context"]
    batch = config["dataset"]["batch_size"]
    options = dict(config["model"])
    model = create_language_model(options.pop("name"), len(corpus.vocabulary), **options)
    offsets = torch.arange(context + 1, device=device)

    def batches(step: int) -> tuple:
        starts = torch.randint(0, len(tokens) - context, (batch, 1), device=device)
        windows = tokens[starts + offsets].long()
        return windows[:, :-1], windows[:, 1:]

    seconds, clock = bare_steps(config, model.to(device), batches, device)
    return config["trainer"]["max_steps"] * batch * context / seconds, clock


def bare(config: dict) -> tuple[float, Clock]:
    """The loop anyone would write: permute, slice, normalise, forward, backward, step.

    It honours the same precision and memory-format settings, so only the trainer's own
    bookkeeping differs (fp16's GradScaler is not mirrored: compare bf16 or fp32).
    """
    if task_for(config["dataset"]["name"]) is LANGUAGE_MODEL:
        return bare_lm(config)
    trainer = config["trainer"]
    device = resolve_device(trainer["device"])
    torch.manual_seed(config["seed"])
    splits = load_dataset(**dataset_options(config))
    images = splits.train[0]
    images = images.centre_crops() if isinstance(images, RaggedImages) else images
    images, labels = images.to(device), splits.train[1].to(device)
    mean = torch.tensor(splits.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(splits.std, device=device).view(1, -1, 1, 1)
    model = build_image_model(config, splits.num_classes, splits.channels, splits.image_size).to(
        device
    )
    memory_format = torch.channels_last if trainer["channels_last"] else torch.contiguous_format
    batch, steps = config["dataset"]["batch_size"], config["trainer"]["max_steps"]
    order = torch.randperm(len(labels), device=device)

    def batches(step: int) -> tuple:
        chosen = order[step * batch : (step + 1) * batch]
        x = ((images[chosen].float().div_(255) - mean) / std).contiguous(
            memory_format=memory_format
        )
        return x, labels[chosen]

    seconds, clock = bare_steps(config, model, batches, device)
    return steps * batch / seconds, clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    overrides = [f"trainer.max_steps={args.steps}", "trainer.progress=false", *args.overrides]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        config = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    results: dict[str, list[float]] = {"ours": [], "bare": []}
    phases = []
    for _ in range(args.repeats):
        results["ours"].append(ours(config))
        speed, clock = bare(config)
        results["bare"].append(speed)
        phases.append(clock.seconds["step"] / clock.seconds["forward_backward"])
    median = {k: statistics.median(v) for k, v in results.items()}
    unit = task_for(config["dataset"]["name"]).unit
    print(f"config: {' '.join(overrides)}")
    for name, values in results.items():
        print(f"{name:5s} {unit}/s: median {median[name]:.0f}  runs {[round(v) for v in values]}")
    print(f"ours / bare = {median['ours'] / median['bare']:.3f}")
    print(
        f"optimizer step / (forward + backward), bare loop: median {statistics.median(phases):.3f}"
    )


if __name__ == "__main__":
    main()
