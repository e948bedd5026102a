"""Load time and memory of the in-memory ImageFolder pipeline on an ImageWoof-sized set.

Writes a generated ImageFolder of JPEGs (9025 train / 3929 val, ImageWoof2's counts; sizes drawn
around full-size ImageNet photos) into a temporary folder, loads it as ``dataset=imagefolder``
does, and reports the load time, the memory held by each split and the time to augment one
training batch with the ViT recipe, for each shorter-side cap (``dataset.decode_size``).

    python scripts/bench_imagefolder.py [--train 9025] [--val 3929] [--caps none,320] [--device cpu]

Writes results/bench/imagefolder_<device>.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rootfree.data import BatchLoader, load_dataset
from rootfree.data.ragged import nbytes

CLASSES = 10


def write_folder(root: Path, train: int, val: int, seed: int = 0) -> None:
    """JPEGs with smooth random content, shorter side 300-500 px, aspect 3:4 to 16:9 either way."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for i in range(count):
            folder = root / split / f"class{i % CLASSES}"
            folder.mkdir(parents=True, exist_ok=True)
            short, aspect = rng.integers(300, 501), rng.uniform(0.75, 16 / 9)
            size = (
                (int(short * aspect), int(short))
                if rng.random() < 0.8
                else (int(short), int(short * aspect))
            )
            coarse = rng.integers(0, 256, (size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
            image.save(folder / f"{i}.JPEG", quality=90)


def measure(root: Path, cap: int | None, device: str, batch: int) -> dict:
    torch.set_num_threads(1)
    start, rss = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = load_dataset("imagefolder", root=str(root), image_size=224, decode_size=cap)
    seconds = time.perf_counter() - start
    loader = BatchLoader(
        *data.train,
        batch_size=batch,
        mean=data.mean,
        std=data.std,
        device=device,
        shuffle=True,
        augment="vit",
    )
    next(loader.batches(epoch=0))
    if device == "cuda":
        torch.cuda.synchronize()
    tick = time.perf_counter()
    for epoch in range(1, 4):
        next(loader.batches(epoch=epoch))
    if device == "cuda":
        torch.cuda.synchronize()
    mib = 2**20
    return {
        "decode_size": cap or "as decoded",
        "train images": len(data.train[1]),
        "load s": round(seconds, 1),
        "train MiB": round(nbytes(data.train[0]) / mib),
        "val+test MiB": round((nbytes(data.val[0]) + nbytes(data.test[0])) / mib),
        "peak RSS growth MiB": round(
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
        ),
        f"augment ms / batch of {batch}": round((time.perf_counter() - tick) / 3 * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=9025)
    parser.add_argument("--val", type=int, default=3929)
    parser.add_argument(
        "--caps", default="none,320", help="decode_size values; none keeps the decoded size"
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    caps = [None if c == "none" else int(c) for c in args.caps.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        tick = time.perf_counter()
        write_folder(Path(folder), args.train, args.val)
        print(f"wrote {args.train + args.val} JPEGs in {time.perf_counter() - tick:.0f} s")
        # each load in a fresh process, so each peak RSS is its own
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            rows = [
                pool.apply(measure, (Path(folder), cap, args.device, args.batch)) for cap in caps
            ]
    table = pd.DataFrame(rows).to_markdown(index=False)
    header = (
        f"# ImageFolder in memory: {args.train} train / {args.val} val generated JPEGs at input 224, "
        f"{args.device}, one thread\n\nMade by `python scripts/bench_imagefolder.py --device {args.device}`. "
        "Peak RSS growth is the process's high-water mark during the load (it includes decoding).\n\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"imagefolder_{args.device}.md").write_text(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
