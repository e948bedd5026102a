"""Shampoo as the paper ran it (Meta's DistributedShampoo configuration, docs/update_rules.md).

Every step, for the gradient G of order k with its size-1 axes squeezed (one factor per axis;
``squeeze_size_one_axes=False`` keeps them, as Meta's implementation does),

    L_n <- betas[1] L_n + (1 - betas[1]) G_(n) G_(n)^T            (factors start at 0)
    m   <- betas[0] m + (1 - betas[0]) g                           (filtered gradient)

and every ``update_every`` steps from ``start_preconditioning_step`` on, the inverse roots
Q_n = (L_n + eps I)^(-1/(2k)) by eigendecomposition in fp32 (retried in fp64 on failure) or fp64.
The step is m x_n Q_n, optionally rescaled to the norm of Adam's or SGD's step (grafting); before
preconditioning starts, the grafted method's step (or m) is taken. Weight decay is decoupled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from rootfree.optim import kronecker
from rootfree.optim.base import PreconditionedOptimizer, grad_or_raise, renamed
from rootfree.optim.spec import ADAM_PAPER_NAMES, OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_betas,
    check_choice,
    check_lr,
    check_nonnegative,
    check_positive_int,
    dtype_name,
)

GRAFTINGS = ("none", "adam", "sgd")
ROOT_DTYPES = ("float32", "float64")


class Shampoo(PreconditionedOptimizer):
    """Root-based Shampoo with per-axis Kronecker factors and eigendecomposition roots.

    Args:
        lr: step size.
        betas: (filtered-gradient EMA beta1, factor EMA beta2); the paper's lr_cov is 1 - beta2.
        eps: damping added to each factor before its root (the paper's damping).
        weight_decay: decoupled weight decay.
        update_every: steps between inverse-root recomputations (the paper's T = 2).
        start_preconditioning_step: first step (from 1) that uses the roots; ``None`` means
            ``update_every``; ``math.inf`` never preconditions (grafted method alone).
        grafting: ``none``, ``adam`` or ``sgd``: whose step norm the Shampoo step takes.
        grafting_beta2, grafting_eps: Adam grafting's second-moment EMA and epsilon.
        bias_correction: bias-correct the filtered gradient and Adam grafting's moment.
        preconditioner_dtype: dtype of the factors and stored roots.
        root_dtype: dtype of the eigendecomposition (fp32 retries in fp64 when eigh fails).
        max_preconditioner_dim: axes longer than this get a diagonal factor (``None``: no limit).
        squeeze_size_one_axes: drop size-1 axes before building factors (default), so a 1x1
            convolution is preconditioned like the matrix it is; ``False`` is Meta's
            DistributedShampoo convention, which the paper ran: a scalar factor per size-1 axis
            and the exponent -1/(2 * ndim). The paper experiments set ``False``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-12,
        weight_decay: float = 0.0,
        update_every: int = 1,
        *,
        start_preconditioning_step: int | float | None = None,
        grafting: str = "none",
        grafting_beta2: float = 0.999,
        grafting_eps: float = 1e-8,
        bias_correction: bool = False,
        use_bias_correction: bool | None = None,
        preconditioner_dtype: str | torch.dtype = "float32",
        root_dtype: str | torch.dtype = "float32",
        max_preconditioner_dim: int | None = 8192,
        squeeze_size_one_axes: bool = True,
    ) -> None:
        check_lr(lr)
        check_betas(betas)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("update_every", update_every)
        if start_preconditioning_step is None:
            start_preconditioning_step = update_every
        if start_preconditioning_step != math.inf:
            check_positive_int("start_preconditioning_step", start_preconditioning_step)
        check_choice("grafting", grafting, GRAFTINGS)
        check_betas((0.0, grafting_beta2))
        check_nonnegative("grafting_eps", grafting_eps)
        if max_preconditioner_dim is not None:
            check_positive_int("max_preconditioner_dim", max_preconditioner_dim)
        preconditioner_dtype = dtype_name("preconditioner_dtype", preconditioner_dtype)
        if preconditioner_dtype is None:
            raise ValueError("Invalid preconditioner_dtype: None; Shampoo needs an explicit dtype")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            update_every=update_every,
            start_preconditioning_step=start_preconditioning_step,
            grafting=grafting,
            grafting_beta2=grafting_beta2,
            grafting_eps=grafting_eps,
            bias_correction=renamed(
                "use_bias_correction", "bias_correction", use_bias_correction, bias_correction
            ),
            preconditioner_dtype=preconditioner_dtype,
            root_dtype=dtype_name("root_dtype", root_dtype, ROOT_DTYPES),
            max_preconditioner_dim=max_preconditioner_dim,
            squeeze_size_one_axes=bool(squeeze_size_one_axes),
        )
        super().__init__(params, defaults)

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        dtype = getattr(torch, group["preconditioner_dtype"])
        shape = (
            kronecker.squeezed_shape(param.shape)
            if group["squeeze_size_one_axes"]
            else tuple(param.shape) or (1,)
        )
        diagonal = [
            kronecker.factor_is_diagonal(dim, "dense", group["max_preconditioner_dim"])
            for dim in shape
        ]
        state["step"] = 0
        state["factors"] = [
            kronecker.zeros_factor(d, diag, dtype, param.device) for d, diag in zip(shape, diagonal)
        ]
        state["roots"] = [
            kronecker.identity_factor(d, diag, dtype, param.device)
            for d, diag in zip(shape, diagonal)
        ]
        state["root_failures"] = torch.zeros((), dtype=torch.int64, device=param.device)
        if group["betas"][0] != 0.0:
            state["filtered_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["grafting"] == "adam":
            state["grafting_second_moment"] = torch.zeros_like(
                param, memory_format=torch.preserve_format
            )
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        for param in group["params"]:
            if param.grad is None:
                continue
            grad = grad_or_raise(param, "Shampoo")
            state = self._init_state(group, param)
            state["step"] += 1
            step = state["step"]
            factors = state["factors"]

            stats_grad = grad.reshape([f.shape[0] for f in factors]).to(factors[0].dtype)
            for n, factor in enumerate(factors):
                factor.mul_(beta2).add_(
                    kronecker.gram(stats_grad.unsqueeze(0), n, factor.ndim == 1)[0],
                    alpha=1.0 - beta2,
                )

            if group["weight_decay"] != 0.0:
                param.mul_(1.0 - group["lr"] * group["weight_decay"])
            filtered = grad
            step_size = group["lr"]
            if beta1 != 0.0:
                filtered = state["filtered_grad"].lerp_(grad, 1.0 - beta1)
                if group["bias_correction"]:
                    step_size = group["lr"] / (1.0 - beta1**step)

            grafting_denominator = self._adam_grafting_denominator(state, group, grad)
            start = group["start_preconditioning_step"]
            if step < start:
                if grafting_denominator is None:
                    param.add_(filtered, alpha=-step_size)
                else:
                    param.addcdiv_(filtered, grafting_denominator, value=-step_size)
                continue

            if step == start or step % group["update_every"] == 0:
                bias = 1.0 - beta2**step if group["bias_correction"] else 1.0
                self._refresh_roots(state, group, bias)
            direction = kronecker.apply_factors(
                filtered.reshape(stats_grad.shape).to(factors[0].dtype).unsqueeze(0),
                [root.unsqueeze(0) for root in state["roots"]],
            )
            direction = direction.reshape(param.shape).to(param.dtype)
            if group["grafting"] != "none":
                graft = (
                    filtered if grafting_denominator is None else filtered / grafting_denominator
                )
                ratio = graft.norm() / direction.norm().clamp(min=torch.finfo(direction.dtype).tiny)
                direction.mul_(ratio)
            param.add_(direction, alpha=-step_size)

    @staticmethod
    def _adam_grafting_denominator(
        state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor
    ) -> torch.Tensor | None:
        """Adam grafting's sqrt(v_hat) + eps (None without Adam grafting): it sets the step's norm."""
        if group["grafting"] != "adam":
            return None
        beta2 = group["grafting_beta2"]
        second = state["grafting_second_moment"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        correction = 1.0 - beta2 ** state["step"] if group["bias_correction"] else 1.0
        return (second.sqrt() / correction**0.5).add_(group["grafting_eps"])

    @staticmethod
    def _refresh_roots(
        state: dict[str, Any], group: dict[str, Any], bias_correction: float
    ) -> None:
        """Recompute every (L_n / bias_correction + eps I)^(-1/(2k)).

        A root that fails (eigh raises, or the result is not finite) keeps the previous one and
        is counted in ``root_failures``, as DistributedShampoo does.
        """
        factors, roots = state["factors"], state["roots"]
        exponent = -1.0 / (2 * len(factors))
        for n, factor in enumerate(factors):
            matrix = factor.to(getattr(torch, group["root_dtype"])) / bias_correction
            try:
                new_root = inverse_root(matrix, exponent, group["eps"]).to(roots[n].dtype)
            except torch.linalg.LinAlgError:
                state["root_failures"].add_(1)
                continue
            finite = torch.isfinite(new_root).all()
            roots[n] = torch.where(finite, new_root, roots[n])
            state["root_failures"].add_((~finite).long())


def inverse_root(matrix: torch.Tensor, exponent: float, eps: float) -> torch.Tensor:
    """(A + eps I)^exponent of a symmetric PSD matrix (or of a diagonal given as a vector).

    The spectrum is shifted to be non-negative first (round-off can push tiny eigenvalues of a
    PSD factor below zero), as DistributedShampoo's eigh path does. eigh failing in fp32 is
    retried in fp64.
    """
    if matrix.ndim == 1:
        return (matrix.clamp(min=0.0) + eps).pow(exponent)
    try:
        eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    except torch.linalg.LinAlgError:
        if matrix.dtype == torch.float64:
            raise
        return inverse_root(matrix.double(), exponent, eps).to(matrix.dtype)
    eigenvalues = eigenvalues - eigenvalues.min().clamp(max=0.0) + eps
    return (eigenvectors * eigenvalues.pow(exponent)) @ eigenvectors.T


SPECS = (
    OptimizerSpec(
        "shampoo",
        Shampoo,
        family="kronecker",
        paper_names={
            **ADAM_PAPER_NAMES,
            "damping": PaperName("eps"),
        },
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.9,
            "lr_cov": 1.0e-3,
            "damping": 1.0e-8,
            "weight_decay": 0.0,
            "update_every": 2,
            "grafting": "none",
            "preconditioner_dtype": "float32",
            "root_dtype": "float32",
        },
        search={
            "lr": SearchRange(1e-5, 0.1),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-4, 0.1),
            "damping": SearchRange(1e-12, 1e-4),
            "weight_decay": SearchRange(1e-5, 0.1),
        },
        dtype_arguments=("preconditioner_dtype", "root_dtype"),
        bench={"lr": 2e-3, "eps": 1e-6, "update_every": 2, "grafting": "adam"},
        description="Shampoo with eigendecomposition inverse roots (the paper's baseline)",
        notes="As the paper ran Meta's: momentum = betas[0] (filtered gradient), T = 2, no "
        "grafting. Paper stage-2 ranges (the authors' Swin sweep): lr 5e-4..5e-2, momentum "
        "0.5..0.99, lr_cov 5e-4..0.1, damping 1e-10..1e-7, weight_decay 5e-4..0.1. "
        "+optimizer.squeeze_size_one_axes=false is Meta's convention (a factor per size-1 "
        "axis), set by the paper experiments; the default squeezes, so a 1x1 convolution is "
        "treated as the matrix it is.",
    ),
)
