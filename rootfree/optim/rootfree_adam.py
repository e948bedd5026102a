"""RF-AdamW: root-free AdamW (docs/update_rules.md, yorkerlin ``MyAdamW``).

    p <- p (1 - lr * weight_decay)                       (decoupled weight decay)
    m <- betas[0] m + (1 - betas[0]) g
    S <- betas[1] S + (1 - betas[1]) B g*g                (S starts at 1; lr_cov = 1 - betas[1])
    p <- p - lr / bc1 * m / (S / bc2 + damping)

bc1 = 1 - betas[0]^t and bc2 = 1 - betas[1]^t when ``bias_correction`` is on, else 1 (the default,
as in the authors' code).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from rootfree.optim.base import (
    PreconditionedOptimizer,
    foreach_scale_,
    grad_or_raise,
    group_by_device_and_dtypes,
)
from rootfree.optim.fused import fused_rootfree_adam
from rootfree.optim.spec import ADAM_PAPER_NAMES, OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_betas,
    check_lr,
    check_nonnegative,
    check_positive_int,
    dtype_name,
    resolve_dtype,
)


class RootFreeAdam(PreconditionedOptimizer):
    """Root-free AdamW: Adam's update with B-scaled second moment and no square root.

    Args:
        lr: step size.
        betas: (first-moment EMA, second-moment EMA); the paper's lr_cov is 1 - betas[1].
        damping: lambda added to the second moment (Adam's eps, outside no root).
        weight_decay: decoupled, as in AdamW.
        batch_size: B, the number of samples the loss is averaged over.
        bias_correction: divide the moments by 1 - beta^t (off in the paper's code).
        state_dtype: dtype of both moments (``None``: the parameter's).
        second_moment_init: S_0 (1 in the paper).
        foreach: use the multi-tensor path (default: on when every parameter is on CUDA).
        fused: one compiled loop per tensor (``fused``; compiles for about a minute first).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        damping: float = 1e-4,
        weight_decay: float = 0.0,
        *,
        batch_size: int,
        bias_correction: bool = False,
        state_dtype: str | torch.dtype | None = None,
        second_moment_init: float = 1.0,
        foreach: bool | None = None,
        fused: bool = False,
    ) -> None:
        check_lr(lr)
        check_betas(betas)
        check_nonnegative("damping", damping)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("batch_size", batch_size)
        check_nonnegative("second_moment_init", second_moment_init)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            damping=damping,
            weight_decay=weight_decay,
            batch_size=batch_size,
            bias_correction=bias_correction,
            state_dtype=dtype_name("state_dtype", state_dtype),
            second_moment_init=second_moment_init,
            foreach=foreach,
            fused=fused,
        )
        if fused and foreach:
            raise ValueError("Invalid fused: True; foreach and fused cannot both be True")
        super().__init__(params, defaults)

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            dtype = resolve_dtype(group["state_dtype"], param.dtype)
            state["step"] = 0
            state["first_moment"] = torch.zeros_like(
                param, dtype=dtype, memory_format=torch.preserve_format
            )
            state["second_moment"] = torch.full_like(
                param, group["second_moment_init"], dtype=dtype, memory_format=torch.preserve_format
            )
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        params, grads, first_moments, second_moments, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._init_state(group, p)
            state["step"] += 1
            params.append(p)
            grads.append(grad_or_raise(p, "RootFreeAdam"))
            first_moments.append(state["first_moment"])
            second_moments.append(state["second_moment"])
            steps.append(state["step"])
        if not params:
            return
        rootfree_adam(
            params,
            grads,
            first_moments,
            second_moments,
            steps,
            foreach=group["foreach"],
            fused=group.get("fused", False),
            lr=group["lr"],
            betas=group["betas"],
            damping=group["damping"],
            weight_decay=group["weight_decay"],
            batch_size=group["batch_size"],
            bias_correction=group["bias_correction"],
        )


def rootfree_adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    first_moments: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    steps: list[int],
    *,
    foreach: bool | None = None,
    fused: bool = False,
    lr: float,
    betas: tuple[float, float],
    damping: float,
    weight_decay: float,
    batch_size: int,
    bias_correction: bool = False,
) -> None:
    """Functional RF-AdamW (as ``torch.optim.adamw.adamw`` is AdamW's): one step on lists of
    tensors, the moments updated in place; ``steps`` are each tensor's step count after this
    step (for bias correction). ``foreach`` (default: on when every parameter is on CUDA)
    picks the multi-tensor path."""
    beta1, beta2 = betas
    if foreach is None:
        foreach = all(p.is_cuda for p in params) and not fused
    if fused and foreach:
        raise ValueError("Invalid fused: True; foreach and fused cannot both be True")
    update = _multi_tensor_rootfree_adam if foreach else _single_tensor_rootfree_adam
    update = fused_rootfree_adam if fused else update
    update(
        params,
        grads,
        first_moments,
        second_moments,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        damping=damping,
        weight_decay=weight_decay,
        batch_size=batch_size,
        bc1=[1.0 - beta1**t if bias_correction else 1.0 for t in steps],
        bc2=[1.0 - beta2**t if bias_correction else 1.0 for t in steps],
    )


def _single_tensor_rootfree_adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    first_moments: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    damping: float,
    weight_decay: float,
    batch_size: int,
    bc1: list[float],
    bc2: list[float],
) -> None:
    """Reference implementation, one tensor at a time; the foreach path must equal it."""
    rows = zip(params, grads, first_moments, second_moments, bc1, bc2)
    for param, grad, first, second, correction1, correction2 in rows:
        grad = grad.to(second.dtype)
        if weight_decay != 0.0:
            param.mul_(1.0 - lr * weight_decay)
        first.lerp_(grad, 1.0 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=(1.0 - beta2) * batch_size)
        denominator = second.div(correction2).add_(damping)
        param.addcdiv_(first, denominator, value=-lr / correction1)


def _multi_tensor_rootfree_adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    first_moments: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    damping: float,
    weight_decay: float,
    batch_size: int,
    bc1: list[float],
    bc2: list[float],
) -> None:
    """Same math as the reference with ``torch._foreach_*`` over same-device, same-dtype lists."""
    groups = group_by_device_and_dtypes(params, grads, first_moments, second_moments, bc1, bc2)
    for p, g, m, s, correction1, correction2 in groups:
        g = [t.to(s[0].dtype) for t in g] if g[0].dtype != s[0].dtype else g
        if weight_decay != 0.0:
            foreach_scale_(p, 1.0 - lr * weight_decay)
        torch._foreach_lerp_(m, g, 1.0 - beta1)
        foreach_scale_(s, beta2)
        torch._foreach_addcmul_(s, g, g, value=(1.0 - beta2) * batch_size)
        denominator = torch._foreach_div(s, list(correction2))
        torch._foreach_add_(denominator, damping)
        torch._foreach_addcdiv_(p, m, denominator, [-lr / c for c in correction1])


SPECS = (
    OptimizerSpec(
        "rootfree_adam",
        RootFreeAdam,
        family="diagonal",
        root_free=True,
        counterpart="adamw",
        paper_names={
            **ADAM_PAPER_NAMES,
            "damping": PaperName("damping"),
        },
        defaults={
            "lr": 3.0e-3,
            "momentum": 0.9,
            "lr_cov": 0.1,
            "damping": 1.0e-4,
            "weight_decay": 0.0,
            "bias_correction": False,
            "state_dtype": None,
        },
        search={
            "lr": SearchRange(1e-4, 1.0),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-4, 0.1),
            "damping": SearchRange(1e-6, 5e-4),
            "weight_decay": SearchRange(1e-5, 0.1),
        },
        takes_batch_size=True,
        dtype_arguments=("state_dtype",),
        bench={"lr": 0.05},
        description="root-free AdamW (RF-AdamW)",
        notes="No training script of the authors runs it, so there are no paper ranges. Defaults "
        "for a first run, not tuned values: S starts at 1, so until it has adapted (about "
        "1 / lr_cov steps) the step is lr times the momentum, an SGD step; lr_cov 0.1 adapts "
        "within tens of steps and lr 3e-3 at B = 128 is the study's tuned CNN lr scaled by B "
        "(the class's own defaults, lr 1e-3 and lr_cov 0.01, left one epoch of Fashion-MNIST at "
        "70.6% test accuracy against SGD's 87.0%; these reach 87.1%). "
        + "Damping stays small on purpose in the stage-1 space: a large one turns the method into SGD (docs/protocol.md). "
        "state_dtype bfloat16 reproduces the paper's AMP runs.",
    ),
)
