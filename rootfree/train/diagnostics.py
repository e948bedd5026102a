"""Optimizer-state measurements logged with each evaluation or at the end (no per-step cost)."""

from __future__ import annotations

from typing import Any

import torch

from rootfree.record.stability import largest_spike, worst_drop


def second_moment_at_init(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The fraction of root-free second-moment coordinates still exactly at S_0.

    In bf16 an EMA step smaller than half an ulp of S rounds back to S, so with a small lr_cov
    the preconditioner can stay frozen at its start; this measures how much of it did.
    Empty for optimizers without such a state.
    """
    total, frozen = 0, 0
    for group in optimizer.param_groups:
        if "second_moment_init" not in group:
            continue
        for param in group["params"]:
            moment = optimizer.state.get(param, {}).get("second_moment")
            if moment is not None:
                total += moment.numel()
                frozen += int((moment == group["second_moment_init"]).sum())
    return {"second_moment_at_init": frozen / total} if total else {}


def optimizer_state_mib(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state in MiB (every tensor it holds per parameter, at its own dtype):
    the memory a method adds beyond the model, comparable across devices."""
    return {"optimizer_state_mib": _nbytes(list(optimizer.state.values())) / 2**20}


def factor_conditioning(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Medians over a Kronecker optimizer's factors of K K^T's condition number and smallest
    eigenvalue: how far low-precision factors drift from a well-conditioned preconditioner.
    Empty for optimizers without ``preconditioner_factors`` or before their first step."""
    products = getattr(optimizer, "preconditioner_factors", lambda: [])()
    if not products:
        return {}
    spectra = [torch.linalg.eigvalsh(product) for product in products]
    low = torch.stack([s[0] for s in spectra])
    high = torch.stack([s[-1] for s in spectra])
    return {
        "factor_cond_median": (high / low).median().item(),
        "factor_eig_min_median": low.median().item(),
    }


def peak_gpu_mib(device: torch.device) -> dict[str, Any]:
    """Peak GPU memory allocated so far in MiB; empty off CUDA."""
    if device.type != "cuda":
        return {}
    return {"peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_nbytes(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(item) for item in value)
    return 0


def training_stability(metrics: list[dict]) -> dict[str, float]:
    """The run's worst fall of running training accuracy below its best so far and its largest
    training-loss rise over its lowest so far, over the logged epochs (results.stability), so
    a record says whether it collapsed without rereading its curve."""
    rows = [r for r in metrics if "train_acc" in r and "train_loss" in r]
    if not rows:
        return {}
    return {
        "worst_acc_drop": worst_drop([float(r["train_acc"]) for r in rows]),
        "loss_spike": largest_spike([float(r["train_loss"]) for r in rows]),
    }
