"""Throughput of our trainer against a bare PyTorch loop on the same model, data and batch.

Both train from the same uint8 tensors (normalised per batch), the same model and optimizer, for
the same number of steps; runs alternate and the median images/s of each is compared.

    python scripts/bench_trainer.py [--steps 150] [--repeats 3] [overrides ...]

Overrides are Hydra ones, e.g. `model=resnet model.width=16 optimizer=sgd trainer.device=cuda`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.data import load_dataset
from rootfree.data.ragged import RaggedImages
from rootfree.record import RunDir
from rootfree.train.build import build_model, build_optimizer, dataset_options, global_batch_size
from rootfree.train.loop import Trainer, resolve_device

CONF = Path(__file__).resolve().parents[1] / "conf"


def ours(config: dict) -> float:
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, RunDir(folder))
        row = trainer.fit()
    return row["images_per_second"]


def bare(config: dict) -> float:
    """The loop anyone would write: permute, slice, normalise, forward, backward, step.

    It honours the same precision and memory-format settings, so only the trainer's own
    bookkeeping differs (fp16's GradScaler is not mirrored: compare bf16 or fp32).
    """
    trainer = config["trainer"]
    device = resolve_device(trainer["device"])
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(trainer["amp"])
    torch.manual_seed(config["seed"])
    splits = load_dataset(**dataset_options(config))
    images = splits.train[0]
    images = images.centre_crops() if isinstance(images, RaggedImages) else images
    images, labels = images.to(device), splits.train[1].to(device)
    mean = torch.tensor(splits.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(splits.std, device=device).view(1, -1, 1, 1)
    model = build_model(config, splits.num_classes, splits.channels, splits.image_size).to(device)
    memory_format = torch.channels_last if trainer["channels_last"] else torch.contiguous_format
    optimizer = build_optimizer(config, model, global_batch_size(config))
    loss_fn = torch.nn.CrossEntropyLoss()
    batch, steps = config["dataset"]["batch_size"], config["trainer"]["max_steps"]
    order = torch.randperm(len(labels), device=device)
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(steps):
        chosen = order[step * batch : (step + 1) * batch]
        x = ((images[chosen].float().div_(255) - mean) / std).contiguous(
            memory_format=memory_format
        )
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_fn(model(x).float(), labels[chosen])
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


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
    for _ in range(args.repeats):
        results["ours"].append(ours(config))
        results["bare"].append(bare(config))
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"config: {' '.join(overrides)}")
    for name, values in results.items():
        print(f"{name:5s} images/s: median {median[name]:.0f}  runs {[round(v) for v in values]}")
    print(f"ours / bare = {median['ours'] / median['bare']:.3f}")


if __name__ == "__main__":
    main()
