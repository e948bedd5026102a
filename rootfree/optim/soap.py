"""SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors (Vyas et al., 2024,
arXiv 2409.11321; the authors' ``soap.py`` at github.com/nikhilvyas/SOAP, commit a1e5535).

For a gradient G seen as a tensor of shape (d_1, ..., d_k) (its own shape, or merged axes with
``merge_dims``), one factor per axis no longer than ``max_precond_dim``:

    first step: L_n <- (1 - shampoo_beta) G_(n) G_(n)^T;  Q_n = eigenvectors of L_n, eigenvalues
                descending; no parameter update
    later steps, t = 1, 2, ...:
    G'  = G x_1 Q_1^T ... x_k Q_k^T                       (the gradient in the eigenbasis)
    m  <- beta1 m + (1 - beta1) G                          (kept in the original basis)
    v  <- beta2 v + (1 - beta2) G' * G'                    (kept in the eigenbasis)
    U   = [(m x_n Q_n^T) / (sqrt(v) + eps)] x_1 Q_1 ... x_k Q_k
    p  <- p - lr sqrt(1 - beta2^t) / (1 - beta1^t) U;  p <- p (1 - lr weight_decay)
    L_n <- shampoo_beta L_n + (1 - shampoo_beta) G_(n) G_(n)^T
    every ``precondition_frequency`` steps: one power iteration, Q_n = QR(L_n Q_n), its columns
        ordered by the estimated eigenvalues diag(Q_n^T L_n Q_n), v's entries permuted alike

``shampoo_beta < 0`` means betas[1]. The eigendecompositions and QRs run in
``decomposition_dtype`` (fp32, as the authors'; fp64 for dtype-matched comparisons).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rootfree.optim import kronecker
from rootfree.optim.base import PreconditionedOptimizer, grad_or_raise
from rootfree.optim.spec import ADAM_PAPER_NAMES, OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    DTYPES,
    check_betas,
    check_choice,
    check_lr,
    check_nonnegative,
    check_positive_int,
    dtype_name,
    resolve_dtype,
)

DATA_FORMATS = ("channels_first", "channels_last")
DECOMPOSITION_DTYPES = ("float32", "float64")
EIGH_SHIFT = 1e-30  # added to each factor's diagonal before eigh, as the authors do


@dataclass(frozen=True)
class Layout:
    """How a parameter is seen by its factors: an optional axis permutation, then a reshape."""

    shape: tuple[int, ...]  # the parameter's shape
    view: tuple[int, ...]  # the factors' view of it, one factor per axis
    preconditioned: tuple[bool, ...]  # which view axes have a factor
    channels_last: bool  # permute (0, 3, 1, 2) before reshaping

    def to_view(self, x: torch.Tensor) -> torch.Tensor:
        """A parameter-shaped tensor in the factors' view."""
        return (x.permute(0, 3, 1, 2) if self.channels_last else x).reshape(self.view)

    def from_view(self, x: torch.Tensor) -> torch.Tensor:
        """A tensor in the factors' view back in the parameter's shape."""
        if not self.channels_last:
            return x.reshape(self.shape)
        n, h, w, c = self.shape
        return x.reshape(n, c, h, w).permute(0, 2, 3, 1)


def merged_shape(shape: Sequence[int], max_dim: int) -> tuple[int, ...]:
    """Adjacent axes merged while their product stays <= ``max_dim`` (the authors' rule)."""
    merged: list[int] = []
    current = 1
    for size in shape:
        if current * size <= max_dim:
            current *= size
        elif current > 1:
            merged.append(current)
            current = size
        else:
            merged.append(size)
    if current > 1 or not merged:
        merged.append(current)
    return tuple(merged)


def layout_of(
    shape: Sequence[int],
    *,
    max_precond_dim: int,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    channels_last: bool = False,
) -> Layout:
    """The factors' view of a parameter of ``shape`` under SOAP's options."""
    shape = tuple(shape)
    if len(shape) == 1:
        return Layout(shape, shape, (precondition_1d and shape[0] <= max_precond_dim,), False)
    permute = merge_dims and channels_last and len(shape) == 4
    view = (shape[0], shape[3], shape[1], shape[2]) if permute else shape
    if merge_dims:
        view = merged_shape(view, max_precond_dim)
    return Layout(shape, view, tuple(d <= max_precond_dim for d in view), permute)


def rotate(
    x: torch.Tensor, bases: Sequence[torch.Tensor | None], inverse: bool = False
) -> torch.Tensor:
    """x x_n Q_n^T on every axis with a basis (into the eigenbasis); ``inverse``: x x_n Q_n."""
    if all(basis is None for basis in bases):
        return x
    stacked = x.unsqueeze(0)
    for basis in bases:
        if basis is None:
            stacked = stacked.movedim(1, -1)
        else:
            stacked = kronecker.multiply_axis_and_move(
                stacked, basis.to(x.dtype).unsqueeze(0), transpose=not inverse
            )
    return stacked.squeeze(0)


def update_factors_(
    factors: Sequence[torch.Tensor | None], grad: torch.Tensor, beta: float
) -> None:
    """L_n <- beta L_n + (1 - beta) G_(n) G_(n)^T for every axis with a factor."""
    for axis, factor in enumerate(factors):
        if factor is not None:
            gram = kronecker.gram(grad.unsqueeze(0), axis, False)[0]
            factor.lerp_(gram.to(factor.dtype), 1.0 - beta)


def eigenbasis(factor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Eigenvectors of a factor by eigh in ``dtype``, eigenvalues descending (fp64 on failure)."""
    matrix = factor.to(dtype)
    shift = EIGH_SHIFT * torch.eye(matrix.shape[0], dtype=dtype, device=matrix.device)
    try:
        vectors = torch.linalg.eigh(matrix + shift)[1]
    except torch.linalg.LinAlgError:
        vectors = torch.linalg.eigh(matrix.double() + shift.double())[1]
    return vectors.flip(1).to(factor.dtype)


def eigenbases(
    factors: Sequence[torch.Tensor | None], dtype: torch.dtype
) -> list[torch.Tensor | None]:
    """The eigenbasis of every factor (None where an axis has none)."""
    return [None if f is None else eigenbasis(f, dtype) for f in factors]


def power_iteration_bases(
    factors: Sequence[torch.Tensor | None],
    bases: Sequence[torch.Tensor | None],
    second_moment: torch.Tensor,
    dtype: torch.dtype,
) -> tuple[list[torch.Tensor | None], torch.Tensor]:
    """One power iteration per factor, Q_n = QR(L_n Q_n) in ``dtype``, with Q_n's columns and
    the second moment's entries along axis n first sorted by diag(Q_n^T L_n Q_n), descending."""
    refreshed: list[torch.Tensor | None] = []
    for axis, (factor, basis) in enumerate(zip(factors, bases)):
        if factor is None:
            refreshed.append(None)
            continue
        matrix, old = factor.to(dtype), basis.to(dtype)
        product = matrix @ old  # one product serves the estimate and the iteration
        order = torch.argsort((old * product).sum(dim=0), descending=True)  # diag(Q^T L Q)
        second_moment = second_moment.index_select(axis, order)
        refreshed.append(torch.linalg.qr(product[:, order])[0].to(factor.dtype))
    return refreshed, second_moment


def soap_direction(
    momentum: torch.Tensor,
    second_moment: torch.Tensor,
    bases: Sequence[torch.Tensor | None],
    eps: float,
) -> torch.Tensor:
    """Adam's m / (sqrt(v) + eps) in the eigenbasis, rotated back; ``momentum`` is m already in
    the eigenbasis (tensors in the factors' view)."""
    denominator = second_moment.to(momentum.dtype).sqrt().add_(eps)
    return rotate(momentum / denominator, bases, inverse=True)


def change_basis(
    x: torch.Tensor, old: Sequence[torch.Tensor | None], new: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """``x`` expressed in the eigenbasis ``old``, re-expressed in ``new``."""
    return rotate(rotate(x, old, inverse=True), new)


def second_moment_apply(
    x: torch.Tensor, second_moment: torch.Tensor, bases: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """The second moment as an operator on ``x``: (Q_1 x ... x Q_k) diag(v) (...)^T x.

    Unlike Q_n or v alone, this is unchanged by sign flips and reorderings of the bases."""
    return rotate(rotate(x, bases) * second_moment.to(x.dtype), bases, inverse=True)


class SOAP(PreconditionedOptimizer):
    """SOAP as the authors wrote it: Adam in the eigenbasis of Shampoo's factors.

    Args:
        lr: step size.
        betas: (Adam's first-moment EMA beta1, its second-moment EMA beta2); the paper's
            momentum is beta1 and lr_cov is 1 - beta2 (also the factors' EMA by default).
        shampoo_beta: the Kronecker factors' EMA; negative (default): betas[1].
        eps: added to sqrt(v) (the paper's damping).
        weight_decay: decoupled, applied after the step as the authors do.
        precondition_frequency: steps between power-iteration refreshes of the eigenbases.
        max_precond_dim: axes longer than this get no factor (left in the original basis).
        merge_dims: merge adjacent axes while their product stays <= max_precond_dim.
        precondition_1d: give vectors a factor too (default: plain Adam for them).
        normalize_grads: divide each step by its root mean square.
        data_format: ``channels_last`` reads 4-D tensors as NHWC when merging axes.
        correct_bias: Adam's bias correction, sqrt(1 - beta2^t) / (1 - beta1^t).
        preconditioner_dtype: dtype of the factors and bases (``None``: the parameter's,
            at least fp32; the authors' are in torch's default dtype).
        decomposition_dtype: dtype of eigh and QR (``float32`` as the authors', or ``float64``).

    State per parameter: ``step`` (Adam steps taken), ``exp_avg`` (m) and ``exp_avg_sq`` (v),
    both in the eigenbasis and the factors' view, ``GG`` (the factors L_n) and ``Q`` (their
    bases), None for an axis without a factor. The authors keep m in the original basis and
    rotate it into the eigenbasis on every step; keeping it rotated is the same m and saves
    that rotation, at the price of re-expressing m when the bases are refreshed.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1.0,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        normalize_grads: bool = False,
        data_format: str = "channels_first",
        correct_bias: bool = True,
        *,
        preconditioner_dtype: str | torch.dtype | None = None,
        decomposition_dtype: str | torch.dtype = "float32",
    ) -> None:
        check_lr(lr)
        check_betas(betas)
        if shampoo_beta >= 0.0:
            check_betas((0.0, shampoo_beta))
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("precondition_frequency", precondition_frequency)
        check_positive_int("max_precond_dim", max_precond_dim)
        check_choice("data_format", data_format, DATA_FORMATS)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            shampoo_beta=shampoo_beta,
            eps=eps,
            weight_decay=weight_decay,
            precondition_frequency=precondition_frequency,
            max_precond_dim=max_precond_dim,
            merge_dims=bool(merge_dims),
            precondition_1d=bool(precondition_1d),
            normalize_grads=bool(normalize_grads),
            data_format=data_format,
            correct_bias=bool(correct_bias),
            preconditioner_dtype=dtype_name("preconditioner_dtype", preconditioner_dtype, DTYPES),
            decomposition_dtype=dtype_name(
                "decomposition_dtype", decomposition_dtype, DECOMPOSITION_DTYPES
            ),
        )
        if defaults["decomposition_dtype"] is None:
            raise ValueError("Invalid decomposition_dtype: None; choose float32 or float64")
        super().__init__(params, defaults)

    @staticmethod
    def layout(group: dict[str, Any], param: torch.Tensor) -> Layout:
        """The factors' view of ``param`` under ``group``'s options."""
        return layout_of(
            param.shape,
            max_precond_dim=group["max_precond_dim"],
            merge_dims=group["merge_dims"],
            precondition_1d=group["precondition_1d"],
            channels_last=group["data_format"] == "channels_last",
        )

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        layout = self.layout(group, param)
        opmath = torch.promote_types(param.dtype, torch.float32)
        dtype = resolve_dtype(group["preconditioner_dtype"], opmath)
        state["step"] = 0
        state["exp_avg"] = torch.zeros(layout.view, dtype=param.dtype, device=param.device)
        state["exp_avg_sq"] = torch.zeros(layout.view, dtype=param.dtype, device=param.device)
        state["GG"] = [
            torch.zeros(d, d, dtype=dtype, device=param.device) if has else None
            for d, has in zip(layout.view, layout.preconditioned)
        ]
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        for param in group["params"]:
            if param.grad is not None:
                self._step_param(group, param, grad_or_raise(param, "SOAP"))

    def _step_param(self, group: dict[str, Any], param: torch.Tensor, grad: torch.Tensor) -> None:
        """One SOAP step of one parameter (the first only builds the factors and bases)."""
        beta1, beta2 = group["betas"]
        shampoo_beta = group["shampoo_beta"] if group["shampoo_beta"] >= 0 else beta2
        decomposition = DTYPES[group["decomposition_dtype"]]
        layout = self.layout(group, param)
        state = self._init_state(group, param)
        factors = state["GG"]
        g = layout.to_view(grad.to(torch.promote_types(grad.dtype, torch.float32)))
        if "Q" not in state:
            update_factors_(factors, g, shampoo_beta)
            state["Q"] = eigenbases(factors, decomposition)
            return

        state["step"] += 1
        step, bases = state["step"], state["Q"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        projected = rotate(g, bases)
        exp_avg.mul_(beta1).add_(projected, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(projected, projected, value=1.0 - beta2)
        momentum = exp_avg.to(g.dtype)
        direction = layout.from_view(soap_direction(momentum, exp_avg_sq, bases, group["eps"]))
        if group["normalize_grads"]:
            direction = direction / (1e-30 + direction.square().mean().sqrt())
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= (1.0 - beta2**step) ** 0.5 / (1.0 - beta1**step)
        param.add_(direction.to(param.dtype), alpha=-step_size)
        if group["weight_decay"] > 0.0:
            param.mul_(1.0 - group["lr"] * group["weight_decay"])

        update_factors_(factors, g, shampoo_beta)
        if step % group["precondition_frequency"] == 0:
            state["Q"], state["exp_avg_sq"] = power_iteration_bases(
                factors, bases, exp_avg_sq, decomposition
            )
            state["exp_avg"] = change_basis(momentum, bases, state["Q"]).to(exp_avg.dtype)


def pytorch_optimizer_reference(model: torch.nn.Module, **arguments: Any) -> torch.optim.Optimizer:
    """pytorch-optimizer's port of the authors' SOAP (``pip install pytorch-optimizer``) with
    our arguments in its names, for the bench and the tests. It has no dtype arguments: its
    factors take the parameters' dtype, its eigh runs in that dtype and its QR in fp32."""
    from pytorch_optimizer import SOAP as PortedSOAP

    names = {"lr": "lr", "betas": "betas", "shampoo_beta": "shampoo_beta", "eps": "eps",
             "weight_decay": "weight_decay", "precondition_frequency": "precondition_frequency",
             "max_precond_dim": "max_precondition_dim", "merge_dims": "merge_dims",
             "precondition_1d": "precondition_1d", "normalize_grads": "normalize_gradient",
             "data_format": "data_format", "correct_bias": "correct_bias"}  # fmt: skip
    unknown = sorted(set(arguments) - set(names))
    if unknown:
        raise ValueError(f"pytorch-optimizer's SOAP has no counterpart of {unknown}")
    if arguments.get("shampoo_beta", -1.0) < 0:
        arguments["shampoo_beta"] = None  # the port's spelling of "follow betas[1]"
    return PortedSOAP(model.parameters(), **{names[k]: v for k, v in arguments.items()})


SPECS = (
    OptimizerSpec(
        "soap",
        SOAP,
        family="kronecker",
        bias_corrected=True,  # Adam's correction in the eigenbasis (correct_bias)
        paper_names={
            **ADAM_PAPER_NAMES,
            "damping": PaperName("eps"),
        },
        defaults={
            "lr": 3.0e-3,
            "momentum": 0.95,
            "lr_cov": 0.05,
            "damping": 1.0e-8,
            "weight_decay": 0.01,
            "shampoo_beta": -1.0,
            "precondition_frequency": 10,
            "max_precond_dim": 10000,
            "merge_dims": False,
            "precondition_1d": False,
            "normalize_grads": False,
            "data_format": "channels_first",
            "correct_bias": True,
            "preconditioner_dtype": None,
            "decomposition_dtype": "float32",
        },
        search={
            "lr": SearchRange(1e-5, 0.1),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-4, 0.5),
            "damping": SearchRange(1e-12, 1e-4),
            "weight_decay": SearchRange(1e-5, 0.5),
        },
        dtype_arguments=("preconditioner_dtype", "decomposition_dtype"),
        bench={"lr": 3e-3, "precondition_frequency": 10},
        reference=pytorch_optimizer_reference,
        description="SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors "
        "(Vyas et al., 2024)",
        notes="Defaults are the authors' (github.com/nikhilvyas/SOAP soap.py, commit a1e5535): "
        "lr 3e-3, betas (0.95, 0.95), eps 1e-8, weight_decay 0.01, precondition_frequency 10. "
        "lr_cov = 1 - betas[1], Adam's second-moment EMA in the eigenbasis; with shampoo_beta "
        "-1 (the default) it is also the Kronecker factors' EMA, and shampoo_beta >= 0 sets that "
        "EMA apart. The paper's experiments are on transformers; no paper ranges to quote. "
        "decomposition_dtype: float32 as the authors' eigh and QR, float64 for exact runs.",
    ),
)
