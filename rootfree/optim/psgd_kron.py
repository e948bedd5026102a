"""PSGD-Kron: Xi-Lin Li's preconditioned SGD with a Kronecker-factored whitening preconditioner,
the ``KronWhiten`` optimizer of github.com/lixilinx/psgd_torch (``psgd.py``) with its default
geometry ``dQ = Q^0.5 E Q^1.5`` (docs/update_rules.md).

A parameter whose gradient G has shape (d_1, ..., d_k) once its size-1 axes are squeezed keeps
one factor Q_n per axis: a d_n x d_n matrix, or a diagonal where the axis is long for the tensor
(d_n^2 > max_skew * numel, or d_n > max_size). P = (x)_n Q_n^T Q_n is applied axis by axis.

    m <- beta m + (1 - beta) g,  beta = min(t / (t + 1), momentum)       (if momentum > 0)
    w  = g (whiten_grad) or m;  h = P (w + (damping + eps |w|) v),  v ~ N(0, I)
    per axis n, with A_n = h_(n) h_(n)^T (its diagonal for a diagonal Q_n) and c_n = numel / d_n:
        ell = ||A_n|| + c_n   (a subspace-iteration lower bound; max A_n for a diagonal)
        L_n <- max(betaL L_n + (1 - betaL) ell, ell)
        Q_n <- Q_n - lr_preconditioner / L_n (A_n Q_n - c_n Q_n), then one Procrustes rotation
    d  = P m (or P g); d <- d * min(1, clip_rms / rms(d)), clamped to [-clip_abs, clip_abs]
    p <- p (1 - lr * weight_decay) - lr d

The preconditioner is refreshed with probability ``preconditioner_update_probability``, before
(default) or after it is applied. Only matrix products: no eigendecomposition, root, inverse or
triangular solve. Random draws come from torch's default generators, in the authors' order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from rootfree.optim.base import PreconditionedOptimizer, autocast_disabled, grad_or_raise
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_lr,
    check_nonnegative,
    check_unit_interval,
    dtype_name,
    resolve_dtype,
)

PROBES = 32  # rows of the random subspace in the norm lower bound (the authors' k)
HALF_ITERATIONS = 2  # half the number of subspace iterations (the authors' half_iters)
PROCRUSTES_STEP = 1.0 / 8.0  # largest rotation step of the Procrustes solver
BALANCE_PROBABILITY = 0.01  # chance per update that the factors' ranges are rebalanced


def factor_is_dense(size: int, numel: int, max_size: float, max_skew: float) -> bool:
    """Whether an axis of this size gets a dense factor (else a diagonal one)."""
    return not (size <= 1 or size > max_size or size**2 > max_skew * numel)


def preconditioner_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The shape the preconditioner sees: size-1 axes squeezed, a scalar as one axis."""
    return tuple(d for d in shape if d != 1) or (1,)


def init_factors(
    shape: Sequence[int],
    scale: float | torch.Tensor,
    max_size: float,
    max_skew: float,
    dtype: torch.dtype,
    device: torch.device,
) -> list[torch.Tensor]:
    """Factors with (x)_n Q_n = scale * I: each scale^(1/k) times an identity (or ones)."""
    numel = math.prod(shape)
    per_axis = scale ** (1.0 / len(shape))
    return [
        per_axis * torch.eye(d, dtype=dtype, device=device)
        if factor_is_dense(d, numel, max_size, max_skew)
        else per_axis * torch.ones(d, dtype=dtype, device=device)
        for d in shape
    ]


def apply_along(factor: torch.Tensor, x: torch.Tensor, axis: int, transpose: bool) -> torch.Tensor:
    """Q (or Q^T) applied to axis ``axis`` of ``x``; a diagonal factor scales it."""
    if factor.ndim == 1:
        return x * factor.reshape([-1] + [1] * (x.ndim - axis - 1))
    contracted = 0 if transpose else 1
    return torch.tensordot(factor, x, dims=([contracted], [axis])).movedim(0, axis)


def precondition(factors: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """P x with P = (x)_n Q_n^T Q_n."""
    for axis, factor in enumerate(factors):
        x = apply_along(factor, apply_along(factor, x, axis, False), axis, True)
    return x


def axis_gram(x: torch.Tensor, axis: int, dense: bool) -> torch.Tensor:
    """x_(n) x_(n)^T, the unfolding's Gram matrix along ``axis`` (its diagonal if not dense)."""
    unfolded = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    return unfolded @ unfolded.T if dense else unfolded.square().sum(1)


def norm_lower_bound(matrix: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """A cheap lower bound on ||matrix||_2 by a few subspace iterations from random rows.

    ``magnitude`` normalises the matrix first (its largest diagonal entry for a PSD matrix, its
    largest |entry| for a skew one); the random rows start aligned with its largest row.
    """
    tiny = torch.finfo(matrix.dtype).smallest_normal
    magnitude = magnitude + tiny
    matrix = matrix / magnitude
    row = matrix[torch.linalg.vector_norm(matrix, dim=1).argmax()]
    v = torch.randn(PROBES, matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    v = row + torch.sign((row * v).sum(1, keepdim=True)) * v
    for _ in range(HALF_ITERATIONS):
        v = v @ matrix
        v = v / (torch.linalg.vector_norm(v, dim=1, keepdim=True) + tiny)
        v = v @ matrix
    return magnitude * torch.linalg.vector_norm(v, dim=1).amax()


def procrustes_step_(q: torch.Tensor, max_step: float = PROCRUSTES_STEP) -> None:
    """Rotate Q towards symmetric positive definite: Q <- (I + aR + (aR)^2 / 2) Q, R = Q^T - Q."""
    r = q.T - q
    r = r / (norm_lower_bound(r, r.abs().amax()) + torch.finfo(r.dtype).smallest_normal)
    rq = r @ q
    rrq = r @ rq
    tr_rq = rq.diagonal().sum()
    tr_rrq = rrq.diagonal().sum()
    step = torch.where(tr_rrq < 0, torch.clamp(-tr_rq / tr_rrq, max=max_step), max_step)
    q.add_(step * (rq + 0.5 * step * rrq))


def balance_factors_(factors: Sequence[torch.Tensor]) -> None:
    """Give every factor the geometric mean of their largest |entry|; P is unchanged."""
    if len(factors) < 2:
        return
    largest = [factor.abs().amax() for factor in factors]
    mean = torch.stack(largest).prod() ** (1.0 / len(factors))
    for factor, size in zip(factors, largest):
        factor.mul_(mean / size)


def update_preconditioner_(
    factors: list[torch.Tensor],
    lipschitz: torch.Tensor,
    target: torch.Tensor,
    lr: float,
    beta: float,
    damping: float,
) -> None:
    """One Q^0.5 E Q^1.5 step that fits P towards E[w w^T]^(-1/2) (whitening ``target`` w)."""
    noise = damping + torch.finfo(target.dtype).eps * target.abs()
    h = precondition(factors, target + noise * torch.randn_like(target))
    for axis, factor in enumerate(factors):
        dense = factor.ndim == 2
        gram = axis_gram(h, axis, dense)
        identity = target.numel() / factor.shape[0]
        if dense:
            ell = norm_lower_bound(gram, gram.diagonal().amax()) + identity
        else:
            ell = gram.amax() + identity
        lipschitz[axis] = torch.maximum(beta * lipschitz[axis] + (1 - beta) * ell, ell)
        step = lr / lipschitz[axis]
        if dense:
            factor.sub_(step * (gram @ factor - identity * factor))
            procrustes_step_(factor)
        else:
            factor.mul_(1 - step * (gram - identity))
    if torch.rand([]) < BALANCE_PROBABILITY:
        balance_factors_(factors)


def clip_(direction: torch.Tensor, max_rms: float, max_abs: float) -> torch.Tensor:
    """Scale ``direction`` down to RMS <= max_rms, then clamp it to [-max_abs, max_abs]."""
    rms = direction.square().mean().sqrt()
    direction.mul_(torch.clamp(max_rms / rms, max=1.0))
    return direction.clamp_(min=-max_abs, max=max_abs)


def largest_fourth_moment(grads: Iterable[torch.Tensor]) -> torch.Tensor:
    """The largest mean |g|^4 over the tensors."""
    return functools.reduce(torch.maximum, [g.abs().pow(4).mean() for g in grads])


def initial_scale(fourth_moment: torch.Tensor, damping: float) -> torch.Tensor:
    """The authors' on-the-fly scale of P_0 = scale^2 I: (max mean |g|^4 + damping^4)^(-1/8)."""
    return (fourth_moment + damping**4) ** (-1.0 / 8.0)


def check_defaults(d: dict[str, Any]) -> None:
    """Reject PSGD-Kron settings outside their valid ranges, one named argument per error."""
    check_lr(d["lr"])
    if not d["lr_preconditioner"] > 0.0:
        raise ValueError(f"Invalid lr_preconditioner value: {d['lr_preconditioner']} (must be > 0)")
    check_nonnegative("damping", d["damping"])
    check_unit_interval("momentum", d["momentum"], open_low=False, open_high=True)
    check_nonnegative("weight_decay", d["weight_decay"])
    check_unit_interval("beta_lipschitz", d["beta_lipschitz"], open_low=False, open_high=False)
    check_unit_interval(
        "preconditioner_update_probability",
        d["preconditioner_update_probability"],
        open_low=False,
        open_high=False,
    )
    max_rms, max_abs = d["grad_clip_max_amps"]
    if not 0.0 < max_rms <= max_abs:
        raise ValueError(
            f"Invalid grad_clip_max_amps: {d['grad_clip_max_amps']!r} "
            "(need 0 < largest RMS <= largest |entry|)"
        )
    if not d["whiten_grad"] and d["momentum"] == 0.0:
        raise ValueError("Invalid whiten_grad: False needs momentum > 0 (there is no momentum)")
    if d["preconditioner_init_scale"] is not None and not d["preconditioner_init_scale"] > 0.0:
        raise ValueError(
            f"Invalid preconditioner_init_scale: {d['preconditioner_init_scale']} (must be > 0)"
        )
    if d["preconditioner_max_size"] is not None:
        check_nonnegative("preconditioner_max_size", d["preconditioner_max_size"])
    check_nonnegative("preconditioner_max_skew", d["preconditioner_max_skew"])


class PSGDKron(PreconditionedOptimizer):
    """PSGD with Kronecker whitening preconditioners, numerically the authors' ``KronWhiten``.

    Args:
        lr: step size (the authors' lr_params).
        lr_preconditioner: step of the preconditioner fit, normalised by its Lipschitz estimate.
        damping: scale of the noise added to what is whitened, which bounds P by I / damping.
        momentum: gradient EMA factor, ramped up as min(t / (t + 1), momentum) (0: none).
        weight_decay: decoupled (``p *= 1 - lr * weight_decay``) as in the authors' torch.optim
            wrapper, or added to the gradient with ``decoupled_weight_decay=False``.
        beta_lipschitz: EMA factor of the Lipschitz estimate (the authors' betaL).
        grad_clip_max_amps: (largest RMS, largest |entry|) of the preconditioned step.
        preconditioner_update_probability: chance, drawn once per step, of refitting P.
        update_preconditioner_first: refit before preconditioning (biased) or after.
        whiten_grad: fit P to whiten the gradient (else the momentum; needs momentum > 0).
        preconditioner_init_scale: P_0 = scale^2 I; ``None`` sets it from the first gradients.
        preconditioner_max_size: axes longer than this get a diagonal factor (``None``: none).
        preconditioner_max_skew: axes with d^2 > max_skew * numel get a diagonal factor.
        preconditioner_dtype: dtype of the factors and momentum (``None``: the parameter's).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        lr_preconditioner: float = 0.1,
        damping: float = 1e-9,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        decoupled_weight_decay: bool = True,
        beta_lipschitz: float = 0.9,
        grad_clip_max_amps: Sequence[float] = (2.0, 10.0),
        preconditioner_update_probability: float = 1.0,
        update_preconditioner_first: bool = True,
        whiten_grad: bool = True,
        preconditioner_init_scale: float | None = None,
        preconditioner_max_size: float | None = None,
        preconditioner_max_skew: float = 1.0,
        preconditioner_dtype: str | torch.dtype | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_preconditioner=lr_preconditioner,
            damping=damping,
            momentum=momentum,
            weight_decay=weight_decay,
            decoupled_weight_decay=bool(decoupled_weight_decay),
            beta_lipschitz=beta_lipschitz,
            grad_clip_max_amps=tuple(float(amp) for amp in grad_clip_max_amps),
            preconditioner_update_probability=preconditioner_update_probability,
            update_preconditioner_first=bool(update_preconditioner_first),
            whiten_grad=bool(whiten_grad),
            preconditioner_init_scale=preconditioner_init_scale,
            preconditioner_max_size=preconditioner_max_size,
            preconditioner_max_skew=preconditioner_max_skew,
            preconditioner_dtype=dtype_name("preconditioner_dtype", preconditioner_dtype),
        )
        check_defaults(defaults)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with autocast_disabled():
            self._init_new_states()
            draw = torch.rand([])  # one draw per step decides every group's refit, as KronWhiten
            for group in self.param_groups:
                self._step_group(group, draw < group["preconditioner_update_probability"])
        return loss

    @staticmethod
    def _grad(group: dict[str, Any], param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """A gradient as the preconditioner sees it: squeezed, in the preconditioner dtype."""
        dtype = resolve_dtype(group["preconditioner_dtype"], param.dtype)
        return grad.reshape(preconditioner_shape(param.shape)).to(dtype)

    def _init_new_states(self) -> None:
        """Create the state of parameters stepped for the first time.

        With no ``preconditioner_init_scale``, the scale comes from the largest mean |g|^4 over
        all of them (all groups), as KronWhiten sets it from all parameters' first gradients.
        """
        new = [
            (group, param)
            for group in self.param_groups
            for param in group["params"]
            if param.grad is not None and not self.state[param]
        ]
        if not new:
            return
        fourth = None
        if any(group["preconditioner_init_scale"] is None for group, _ in new):
            fourth = largest_fourth_moment(self._grad(g, p, p.grad) for g, p in new)
        for group, param in new:
            self._init_state(group, param, fourth)

    def _init_state(
        self, group: dict[str, Any], param: torch.Tensor, fourth: torch.Tensor | None = None
    ) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        dtype = resolve_dtype(group["preconditioner_dtype"], param.dtype)
        scale = group["preconditioner_init_scale"]
        if scale is None:
            scale = initial_scale(fourth, group["damping"])
        max_size = group["preconditioner_max_size"]
        shape = preconditioner_shape(param.shape)
        state["step"] = 0
        state["factors"] = init_factors(
            shape,
            scale,
            math.inf if max_size is None else max_size,
            group["preconditioner_max_skew"],
            dtype,
            param.device,
        )
        lipschitz_dtype = torch.promote_types(dtype, torch.float32)
        state["lipschitz"] = torch.zeros(len(shape), dtype=lipschitz_dtype, device=param.device)
        if group["momentum"] > 0.0:
            state["momentum_buffer"] = torch.zeros(shape, dtype=dtype, device=param.device)
        return state

    def _step_group(self, group: dict[str, Any], refit: bool | torch.Tensor = True) -> None:
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self._init_state(group, param)
            grad = grad_or_raise(param, "PSGDKron")
            if weight_decay != 0.0:
                if group["decoupled_weight_decay"]:
                    param.mul_(1.0 - lr * weight_decay)
                else:
                    grad = grad.add(param, alpha=weight_decay)
            grad = self._grad(group, param, grad)
            step = state["step"]
            state["step"] = step + 1
            stepped = grad
            if momentum > 0.0:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                beta = min(step / (step + 1), momentum)
                stepped = state["momentum_buffer"].mul_(beta).add_(grad, alpha=1 - beta)
            target = grad if group["whiten_grad"] else stepped
            first = group["update_preconditioner_first"]
            if refit and first:
                self._refit(group, state, target)
            direction = precondition(state["factors"], stepped)
            if refit and not first:
                self._refit(group, state, target)
            clip_(direction, *group["grad_clip_max_amps"])
            param.sub_(direction.reshape(param.shape).to(param.dtype), alpha=lr)

    @staticmethod
    def _refit(group: dict[str, Any], state: dict[str, Any], target: torch.Tensor) -> None:
        """Refit the parameter's preconditioner with the group's settings."""
        update_preconditioner_(
            state["factors"],
            state["lipschitz"],
            target,
            group["lr_preconditioner"],
            group["beta_lipschitz"],
            group["damping"],
        )


SPECS = (
    OptimizerSpec(
        "psgd_kron",
        PSGDKron,
        family="kronecker",
        root_free=True,
        counterpart=None,
        paper_names={
            "lr": PaperName("lr"),
            "momentum": PaperName("momentum"),
            "lr_cov": PaperName("lr_preconditioner"),
            "damping": PaperName("damping"),
            "weight_decay": PaperName("weight_decay"),
        },
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.0,
            "lr_cov": 0.1,
            "damping": 1.0e-9,
            "weight_decay": 0.0,
            "beta_lipschitz": 0.9,
            "preconditioner_update_probability": 1.0,
            "whiten_grad": True,
            "preconditioner_init_scale": None,
            "preconditioner_max_skew": 1.0,
            "preconditioner_dtype": None,
        },
        search={
            "lr": SearchRange(1e-5, 0.1),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-3, 0.9),
            "damping": SearchRange(1e-12, 1e-5),
            "weight_decay": SearchRange(1e-5, 0.1),
        },
        dtype_arguments=("preconditioner_dtype",),
        bench={"lr": 1e-3, "momentum": 0.9},
        description="PSGD-Kron: Kronecker whitening preconditioner fitted in a Lie group "
        "(Li's KronWhiten, Q0.5EQ1.5)",
        notes="Defaults are the authors' KronWhiten defaults (github.com/lixilinx/psgd_torch, "
        "psgd.py): lr 1e-3, lr_preconditioner 0.1, damping 1e-9, momentum 0, betaL 0.9, clip "
        "(2, 10), update probability 1, P_0 set from the first gradients, max_skew 1 (the longer "
        "axis of a non-square matrix and every bias get a diagonal factor). KronWhiten has no "
        "weight decay; ours is the decoupled one of the authors' torch.optim wrapper (KWNS4). "
        "The step is normalised to about unit RMS, as Adam's, hence Adam-like lr ranges; the "
        "authors advise annealing lr_preconditioner and the update probability down (to "
        "0.01..0.1) in long runs. There are no paper ranges: the paper did not run PSGD.",
    ),
)
