"""The precision matrix: every optimizer in fp32, with bf16 optimizer state, and with bf16 params.

For each cell: the first step with a non-finite loss or parameter (none if it stayed finite), the
final loss (mean of the last 20 steps), and final / initial loss, on a small CNN learning a fixed random teacher. Then
Shampoo's inverse root attempted in bf16 on a factor with a known spectrum (its
smallest eigenvalues sit below bf16's resolution), reported as it behaves. A toy: one seed, untuned but sane learning rates.

    python scripts/bench_precision.py [--steps 300] [--device cpu]

Writes results/bench/precision_<device>.csv and .md.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from rootfree.optim import OPTIMIZERS, create_optimizer
from rootfree.optim.shampoo import inverse_root

BATCH = 64
# Each registered optimizer runs with its spec's ``bench`` settings (untuned but sane on this
# toy; the other settings are its defaults); "bf16 state" sets its first dtype argument.


def make_task(device: torch.device, steps: int):
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)).to(device)
    x = torch.randn(steps, BATCH, 3, 8, 8, device=device)
    with torch.no_grad():
        y = teacher(x.flatten(0, 1)).argmax(-1).view(steps, BATCH)
    return x, y


def make_model(device: torch.device, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.GroupNorm(4, 16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 10),
    ).to(device, dtype)


def run_cell(name: str, mode: str, x, y, device) -> dict:
    param_dtype = torch.bfloat16 if mode == "bf16 params" else torch.float32
    spec = OPTIMIZERS[name]
    hparams = dict(spec.bench)
    if mode == "bf16 state":
        hparams[spec.dtype_arguments[0]] = "bfloat16"
    model = make_model(device, param_dtype)
    optimizer = create_optimizer(name, model, batch_size=BATCH, **hparams)
    losses, first_non_finite = [], None
    for step, (xb, yb) in enumerate(zip(x, y)):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb.to(param_dtype)).float(), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        finite = math.isfinite(losses[-1]) and all(
            torch.isfinite(p).all() for p in model.parameters()
        )
        if not finite:
            first_non_finite = step
            break
    failures = sum(int(s.get("root_failures", 0)) for s in optimizer.state.values())
    final = sum(losses[-20:]) / len(losses[-20:])
    return dict(
        optimizer=name,
        precision=mode,
        first_non_finite_step=first_non_finite,
        final_loss=final,
        final_over_initial=final / losses[0],
        root_failures=failures if name == "shampoo" else None,
    )


def root_in_bf16() -> pd.DataFrame:
    """Shampoo's root of a low-rank factor plus damping, rounded to bf16."""
    torch.manual_seed(0)
    n, rank, eps = 256, 8, 1e-6
    g = torch.randn(n, rank, dtype=torch.float64)
    factor = g @ g.T / rank + eps * torch.eye(n, dtype=torch.float64)
    reference = inverse_root(factor, -0.25, 0.0)
    rounded = factor.to(torch.bfloat16)
    rows = [
        dict(case="fp64 factor", min_eigenvalue=torch.linalg.eigvalsh(factor).min().item()),
        dict(
            case="bf16-rounded factor (eigenvalues in fp64)",
            min_eigenvalue=torch.linalg.eigvalsh(rounded.double()).min().item(),
        ),
    ]
    try:
        torch.linalg.eigh(rounded)
        rows.append(dict(case="eigh in bf16", outcome="ran"))
    except RuntimeError as error:
        rows.append(dict(case="eigh in bf16", outcome=f"raises: {str(error).splitlines()[0][:70]}"))
    plain = rounded.float()
    values, vectors = torch.linalg.eigh(plain)
    unshifted = (vectors * (values + eps).pow(-0.25)) @ vectors.T
    rows.append(
        dict(
            case="bf16 factor, fp32 root without spectrum shift",
            outcome=f"{int((~torch.isfinite(unshifted)).sum())} non-finite entries",
        )
    )
    shifted = inverse_root(plain, -0.25, eps)
    error = ((shifted.double() - reference).norm() / reference.norm()).item()
    rows.append(
        dict(
            case="bf16 factor, fp32 root with rootfree's shift",
            outcome=f"finite: {bool(torch.isfinite(shifted).all())}, "
            f"relative error vs fp64 {error:.2g}",
        )
    )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    device = torch.device(args.device)
    x, y = make_task(device, args.steps)
    rows = []
    for name in OPTIMIZERS:
        modes = ["fp32", "bf16 params"]
        if OPTIMIZERS[name].dtype_arguments:
            modes.insert(1, "bf16 state")
        for mode in modes:
            rows.append(run_cell(name, mode, x, y, device))
            print({k: v for k, v in rows[-1].items() if v is not None})
    matrix = pd.DataFrame(rows)
    roots = root_in_bf16()
    print(matrix.to_string(index=False, float_format="%.3g"))
    print(roots.to_string(index=False))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"precision_{device.type}"
    matrix.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
    stem.with_suffix(".md").write_text(
        f"# Precision matrix ({args.steps} steps, batch {BATCH}, {device}, torch {torch.__version__})\n\n"
        + matrix.to_markdown(index=False, floatfmt=".3g")
        + "\n\n## Shampoo's inverse root of a bf16 factor\n\n"
        + roots.to_markdown(index=False, floatfmt=".3g")
        + "\n"
    )


if __name__ == "__main__":
    main()
