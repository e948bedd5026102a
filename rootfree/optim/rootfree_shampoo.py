"""IF-Shampoo / SIRFShampoo: inverse- and root-free Kronecker-factored Shampoo (paper.md 1.3.1).

A parameter whose squeezed gradient G has shape (d_1, ..., d_N) keeps factors K_n (initially I)
and implicitly the preconditioner (x)_n K_n K_n^T. On a refresh step, with G_hat = G x_n K_n^T,

    m_n^step = 1/2 [ damping * prod_{j!=n} tr(K_j^T K_j)/d_j * K_n^T K_n
                     + B / prod_{j!=n} d_j * G_hat_(n) G_hat_(n)^T - I ]
    m_n     <- riemannian_momentum * m_n + (1 - riemannian_momentum) * m_n^step
    K_n     <- K_n - lr_cov / max(1, ||m_n||_F) * K_n m_n

(all m_n^step from the old factors); every step

    U = G x_n (K_n K_n^T) + weight_decay * p,   b <- momentum * b + U,   p <- p - lr * b.

Only matrix products: no eigendecomposition, solve, inverse or root, so it runs in bf16.
K_n K_n^T is cached between refreshes (rescaled by s_n = max(1, sqrt(max|K_n|)) for range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from rootfree.optim import kronecker
from rootfree.optim.base import RootfreeOptimizer, grad_or_raise
from rootfree.optim.update_schedule import SCHEDULES, next_update_step
from rootfree.optim.validation import (
    check_choice,
    check_lr,
    check_nonnegative,
    check_positive_int,
    check_unit_interval,
    dtype_name,
    resolve_dtype,
)


class RootFreeShampoo(RootfreeOptimizer):
    """Inverse- and root-free Kronecker Shampoo, numerically the authors' SIRFShampoo 0.0.1.

    Args:
        lr: step size (the paper's beta_1).
        momentum: heavy-ball momentum on the preconditioned step (alpha_1).
        lr_cov: factor learning rate (beta_2).
        riemannian_momentum: momentum on the factor updates (alpha_2).
        damping: lambda.
        weight_decay: added to the preconditioned step (kappa).
        batch_size: B, the number of samples the loss is averaged over.
        update_every: T, refresh interval of the factors.
        update_schedule: ``fixed`` (every T steps) or ``log4`` (the authors' warm-up, capped at T).
        preconditioner_dtype: dtype of factors and preconditioned step (``None``: the parameter's).
        structure: ``dense`` or ``diagonal`` factors.
        max_preconditioner_dim: axes longer than this get a diagonal factor (``None``: no limit).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.9,
        lr_cov: float = 1e-2,
        riemannian_momentum: float = 0.5,
        damping: float = 1e-3,
        weight_decay: float = 0.0,
        *,
        batch_size: int,
        update_every: int = 1,
        update_schedule: str = "fixed",
        preconditioner_dtype: str | torch.dtype | None = None,
        structure: str = "dense",
        max_preconditioner_dim: int | None = 8192,
    ) -> None:
        check_lr(lr)
        check_unit_interval("momentum", momentum, open_low=False, open_high=True)
        check_unit_interval("lr_cov", lr_cov, open_low=True, open_high=False)
        check_unit_interval(
            "riemannian_momentum", riemannian_momentum, open_low=False, open_high=True
        )
        check_nonnegative("damping", damping)
        check_nonnegative("weight_decay", weight_decay)
        check_positive_int("batch_size", batch_size)
        check_positive_int("update_every", update_every)
        check_choice("update_schedule", update_schedule, SCHEDULES)
        check_choice("structure", structure, kronecker.STRUCTURES)
        if max_preconditioner_dim is not None:
            check_positive_int("max_preconditioner_dim", max_preconditioner_dim)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            lr_cov=lr_cov,
            riemannian_momentum=riemannian_momentum,
            damping=damping,
            weight_decay=weight_decay,
            batch_size=batch_size,
            update_every=update_every,
            update_schedule=update_schedule,
            preconditioner_dtype=dtype_name("preconditioner_dtype", preconditioner_dtype),
            structure=structure,
            max_preconditioner_dim=max_preconditioner_dim,
        )
        super().__init__(params, defaults)

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        dtype = resolve_dtype(group["preconditioner_dtype"], param.dtype)
        factors = [
            kronecker.identity_factor(
                dim,
                kronecker.factor_is_diagonal(
                    dim, group["structure"], group["max_preconditioner_dim"]
                ),
                dtype,
                param.device,
            )
            for dim in kronecker.squeezed_shape(param.shape)
        ]
        state["step"] = 0
        state["next_update"] = 0
        state["factors"] = factors
        state["preconditioners"] = [f.clone() for f in factors]
        state["preconditioner_scale"] = torch.ones(
            (), dtype=torch.promote_types(dtype, torch.float32), device=param.device
        )
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self._init_state(group, param)
            factors = state["factors"]
            grad = grad_or_raise(param, "RootFreeShampoo")
            grad = grad.reshape([f.shape[0] for f in factors]).to(factors[0].dtype)

            if state["step"] == state["next_update"]:
                self._update_factors(group, state, grad)
                state["preconditioners"], state["preconditioner_scale"] = _cache_preconditioner(
                    factors
                )
                state["next_update"] = next_update_step(
                    state["step"], group["update_every"], group["update_schedule"]
                )
            state["step"] += 1

            update = kronecker.apply_factors(grad, state["preconditioners"])
            update = update.reshape(param.shape).to(param.dtype).mul_(state["preconditioner_scale"])
            if group["weight_decay"] != 0.0:
                update.add_(param, alpha=group["weight_decay"])
            if group["momentum"] != 0.0:
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = torch.zeros_like(param)
                update = buffer.mul_(group["momentum"]).add_(update)
            param.add_(update, alpha=-group["lr"])

    def _update_factors(
        self, group: dict[str, Any], state: dict[str, Any], grad: torch.Tensor
    ) -> None:
        """One Riemannian step on every factor, all computed from the factors before the step."""
        factors = state["factors"]
        alpha2 = group["riemannian_momentum"]
        dims = grad.shape
        # Factors scaled by 1/sqrt(d_n) keep K^T K and G_hat in range in low precision.
        scaled = [factor * (1.0 / math.sqrt(dim)) for factor, dim in zip(factors, dims)]
        g_hat = kronecker.apply_factors(
            grad * math.sqrt(group["batch_size"]), scaled, transpose=True
        )
        inners = [kronecker.inner(factor) for factor in scaled]
        opmath = torch.promote_types(grad.dtype, torch.float32)
        traces = torch.stack([kronecker.average_trace(m).to(opmath) for m in inners])

        if alpha2 != 0.0 and "factor_momenta" not in state:
            state["factor_momenta"] = [torch.zeros_like(f) for f in factors]
        for n, (factor, dim) in enumerate(zip(factors, dims)):
            others = torch.cat([traces[:n], traces[n + 1 :]]).prod()
            step = inners[n].mul_(others * (group["damping"] / 2 * grad.numel()))
            step.add_(kronecker.gram(g_hat, n, factor.ndim == 1), alpha=dim / 2)
            kronecker.add_to_diagonal_(step, -0.5)
            if alpha2 != 0.0:
                step = state["factor_momenta"][n].mul_(alpha2).add_(step, alpha=1.0 - alpha2)
            rate = group["lr_cov"] / torch.linalg.vector_norm(step).to(opmath).clamp(min=1.0)
            factor.sub_(kronecker.matmul(factor, step).mul_(rate))


def _cache_preconditioner(factors: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """K_n K_n^T with each K_n divided by s_n = max(1, sqrt(max|K_n|)), and prod_n s_n^2."""
    opmath = torch.promote_types(factors[0].dtype, torch.float32)
    scales = [factor.abs().amax().to(opmath).sqrt().clamp(min=1.0) for factor in factors]
    preconditioners = [kronecker.outer(f / s.to(f.dtype)) for f, s in zip(factors, scales)]
    return preconditioners, torch.stack(scales).square().prod()
