"""`make gpu-check`: every paper experiment with every optimizer the paper ran on it, a few steps
at the paper's batch and input size under its precision (bf16 autocast), on generated data.
Prints step time, images/s and peak memory per run as a table and writes it to
results/bench/gpu_check_<device>.{md,csv}. Meant for one CUDA GPU; on CPU, pass a small
--batch and --image-size to exercise the code path.

    python scripts/gpu_check.py                                  # CUDA, the paper's sizes
    python scripts/gpu_check.py --device cpu --batch 2 --image-size 32 --steps 1 --warmup 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.data.registry import DATASETS
from rootfree.train.build import build_image_model, build_optimizer, global_batch_size
from rootfree.train.losses import make_loss

ROOT = Path(__file__).resolve().parents[1]


def cases() -> list[tuple[str, str]]:
    """(experiment, optimizer) for every best-run file of the paper's experiments."""
    found = []
    for path in sorted((ROOT / "experiments" / "experiment").glob("paper_*.yaml")):
        if path.stem == "paper_small":
            continue
        for best in sorted((ROOT / "experiments" / "best").glob(f"{path.stem}_*.yaml")):
            optimizer = best.stem.removeprefix(f"{path.stem}_")
            if not optimizer.startswith("mse"):
                found.append((path.stem, optimizer))
    return found


def paper_config(experiment: str, optimizer: str, overrides: list[str]) -> dict:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        config = compose(
            "config", [f"experiment={experiment}", f"optimizer={optimizer}", *overrides]
        )
        return OmegaConf.to_container(config, resolve=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(config: dict, device: torch.device, steps: int, warmup: int) -> dict:
    """Median step time (fwd, bwd, optimizer step) and peak memory on generated batches."""
    channels, size, classes = DATASETS[config["dataset"]["name"]].shape(**config["dataset"])
    classes = classes or 10
    model = build_image_model(config, classes, channels, size).to(device)
    optimizer = build_optimizer(config, model, global_batch_size(config))
    loss_fn = make_loss(config["trainer"]["loss"])
    batch = config["dataset"]["batch_size"]
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config["trainer"]["amp"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        optimizer.step()
        sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    )
    return {
        "batch": batch,
        "image": size,
        "step_ms": 1000 * seconds,
        "images_per_s": batch / seconds,
        "peak_gib": peak,
        "loss_finite": bool(torch.isfinite(loss)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, help="instead of the paper's batch (CPU smoke runs)")
    parser.add_argument("--image-size", type=int, help="instead of the paper's ViT input size")
    parser.add_argument("--only", default="", help="experiment:optimizer,... (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    chosen = [tuple(c.split(":")) for c in args.only.split(",") if c] or cases()
    rows = []
    for experiment, optimizer in chosen:
        overrides = [f"trainer.device={device.type}"]
        overrides += [f"dataset.batch_size={args.batch}"] if args.batch else []
        if args.image_size and "imagewoof" in experiment:
            overrides.append(f"dataset.image_size={args.image_size}")
        row = {"experiment": experiment, "optimizer": optimizer}
        row.update(
            measure(paper_config(experiment, optimizer, overrides), device, args.steps, args.warmup)
        )
        print(
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )
        rows.append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    table = pd.DataFrame(rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / f"gpu_check_{device.type}.csv", index=False, float_format="%.4g")
    text = f"# Paper experiments, {args.steps} steps each, on {name}\n\n" + table.to_markdown(
        index=False, floatfmt=".4g"
    )
    (args.out / f"gpu_check_{device.type}.md").write_text(text + "\n")
    print(text)
    return 0 if table["loss_finite"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
