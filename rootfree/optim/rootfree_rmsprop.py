"""RF-RMSProp: the paper's root-free RMSProp (docs/update_rules.md, yorkerlin ``MyRmsProp``).

    S <- (1 - lr_cov) S + lr_cov * B * g*g          (S starts at 1, not 0)
    d  = g / (S + damping) + weight_decay * p       (weight decay after preconditioning)
    b <- momentum * b + d                            (heavy ball, no dampening)
    p <- p - lr * b

No square root and no bias correction. B is the number of samples the loss is averaged over.
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
from rootfree.optim.fused import fused_rootfree_rmsprop
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_lr,
    check_nonnegative,
    check_positive_int,
    check_unit_interval,
    dtype_name,
    resolve_dtype,
)


class RootFreeRMSProp(PreconditionedOptimizer):
    """Root-free RMSProp with batch-size-scaled second moment and heavy-ball momentum.

    Args:
        lr: step size (the paper's beta_1).
        lr_cov: second-moment learning rate (the paper's beta_2; torch RMSprop's 1 - alpha).
        damping: lambda added to S (torch's eps).
        momentum: heavy-ball momentum alpha_1 in [0, 1).
        weight_decay: added to the preconditioned step (not preconditioned itself).
        batch_size: B, the number of samples the loss is averaged over.
        state_dtype: dtype of S and the momentum buffer (``None``: the parameter's); the paper
            ran bf16 under AMP.
        second_moment_init: S_0; 1 in the paper, 0 is its ``dummy_init`` ablation.
        foreach: use the multi-tensor path (default: on when every parameter is on CUDA).
        fused: one compiled loop per tensor (``fused``; compiles for about a minute first).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        lr_cov: float = 1e-2,
        damping: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        *,
        batch_size: int,
        state_dtype: str | torch.dtype | None = None,
        second_moment_init: float = 1.0,
        foreach: bool | None = None,
        fused: bool = False,
    ) -> None:
        check_lr(lr)
        check_unit_interval("lr_cov", lr_cov, open_low=True, open_high=False)
        check_nonnegative("damping", damping)
        check_unit_interval("momentum", momentum, open_low=False, open_high=True)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("batch_size", batch_size)
        check_nonnegative("second_moment_init", second_moment_init)
        defaults = dict(
            lr=lr,
            lr_cov=lr_cov,
            damping=damping,
            momentum=momentum,
            weight_decay=weight_decay,
            batch_size=batch_size,
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
            state["second_moment"] = torch.full_like(
                param, group["second_moment_init"], dtype=dtype, memory_format=torch.preserve_format
            )
            if group["momentum"] != 0.0:
                state["momentum_buffer"] = torch.zeros_like(
                    param, dtype=dtype, memory_format=torch.preserve_format
                )
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        params, grads, second_moments, buffers = [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._init_state(group, p)
            state["step"] += 1
            params.append(p)
            grads.append(grad_or_raise(p, "RootFreeRMSProp"))
            second_moments.append(state["second_moment"])
            buffers.append(state.get("momentum_buffer"))
        if not params:
            return
        rootfree_rmsprop(
            params,
            grads,
            second_moments,
            buffers,
            foreach=group["foreach"],
            fused=group.get("fused", False),
            lr=group["lr"],
            lr_cov=group["lr_cov"],
            damping=group["damping"],
            momentum=group["momentum"],
            weight_decay=group["weight_decay"],
            batch_size=group["batch_size"],
        )


def rootfree_rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor | None],
    *,
    foreach: bool | None = None,
    fused: bool = False,
    lr: float,
    lr_cov: float,
    damping: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
) -> None:
    """Functional RF-RMSProp (as ``torch.optim.adamw.adamw`` is AdamW's): one step on lists of
    tensors, the state updated in place; ``momentum_buffers`` entries are None without momentum.
    ``foreach`` (default: on when every parameter is on CUDA) picks the multi-tensor path."""
    if foreach is None:
        foreach = all(p.is_cuda for p in params) and not fused
    if fused and foreach:
        raise ValueError("Invalid fused: True; foreach and fused cannot both be True")
    update = _multi_tensor_rootfree_rmsprop if foreach else _single_tensor_rootfree_rmsprop
    update = fused_rootfree_rmsprop if fused else update
    update(
        params,
        grads,
        second_moments,
        momentum_buffers,
        lr=lr,
        lr_cov=lr_cov,
        damping=damping,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
    )


def _single_tensor_rootfree_rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    buffers: list[torch.Tensor | None],
    *,
    lr: float,
    lr_cov: float,
    damping: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
) -> None:
    """Reference implementation, one tensor at a time; the foreach path must equal it."""
    for param, grad, second_moment, buffer in zip(params, grads, second_moments, buffers):
        grad = grad.to(second_moment.dtype)
        second_moment.mul_(1.0 - lr_cov).addcmul_(grad, grad, value=lr_cov * batch_size)
        direction = grad.div(second_moment.add(damping))
        if weight_decay != 0.0:
            direction.add_(param, alpha=weight_decay)
        if buffer is not None:
            direction = buffer.mul_(momentum).add_(direction)
        param.add_(direction, alpha=-lr)


def _multi_tensor_rootfree_rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    second_moments: list[torch.Tensor],
    buffers: list[torch.Tensor | None],
    *,
    lr: float,
    lr_cov: float,
    damping: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
) -> None:
    """Same math as the reference with ``torch._foreach_*`` over same-device, same-dtype lists."""
    for p, g, s, b in group_by_device_and_dtypes(params, grads, second_moments, buffers):
        g = [t.to(s[0].dtype) for t in g] if g[0].dtype != s[0].dtype else g
        foreach_scale_(s, 1.0 - lr_cov)
        torch._foreach_addcmul_(s, g, g, value=lr_cov * batch_size)
        direction = torch._foreach_div(g, torch._foreach_add(s, damping))
        if weight_decay != 0.0:
            torch._foreach_add_(direction, p, alpha=weight_decay)
        if b[0] is not None:
            foreach_scale_(b, momentum)
            torch._foreach_add_(b, direction)
            direction = b
        torch._foreach_add_(p, direction, alpha=-lr)


SPECS = (
    OptimizerSpec(
        "rootfree_rmsprop",
        RootFreeRMSProp,
        family="diagonal",
        root_free=True,
        counterpart="rmsprop",
        heavy_ball={"momentum": "lr"},
        paper_names={
            "lr": PaperName("lr"),
            "weight_decay": PaperName("weight_decay"),
            "momentum": PaperName("momentum"),
            "lr_cov": PaperName("lr_cov"),
            "damping": PaperName("damping"),
        },
        defaults={
            "lr": 5.0e-3,
            "lr_cov": 1.0e-3,
            "damping": 5.0e-5,
            "momentum": 0.9,
            "weight_decay": 2.0e-3,
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
        bench={"lr": 0.02, "lr_cov": 0.01, "momentum": 0.9},
        description="root-free RMSProp (RF-RMSProp)",
        notes="Paper stage-2 ranges (ResNet-34): lr 2e-3..1e-2, damping 1e-5..1e-4, lr_cov "
        "8e-4..5e-3, momentum 0.1..0.99, weight_decay 1e-4..0.05; its best ResNet-34 run: lr "
        "4.98e-3, momentum 0.961, lr_cov 1.18e-3, damping 5.58e-5, wd 2.32e-3. "
        + "Damping stays small on purpose in the stage-1 space: a large one turns the method into SGD (docs/protocol.md). "
        "state_dtype bfloat16 reproduces the paper's AMP runs (docs/update_rules.md).",
    ),
)
