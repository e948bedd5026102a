"""IF-Shampoo / SIRFShampoo: inverse- and root-free Kronecker-factored Shampoo (docs/update_rules.md).

A parameter whose squeezed gradient G has shape (d_1, ..., d_N) keeps factors K_n (initially I)
and implicitly the preconditioner (x)_n K_n K_n^T. On a refresh step, with G_hat = G x_n K_n^T,

    m_n^step = 1/2 [ damping * prod_{j!=n} tr(K_j^T K_j)/d_j * K_n^T K_n
                     + B / prod_{j!=n} d_j * G_hat_(n) G_hat_(n)^T - I ]
    m_n     <- riemannian_momentum * m_n + (1 - riemannian_momentum) * m_n^step
    K_n     <- K_n - lr_cov / max(1, ||m_n||_F) * K_n m_n

(all m_n^step from the old factors); every step

    U = G x_n (K_n K_n^T) + weight_decay * p,   b <- momentum * b + U,   p <- p - lr * b.

With a structured factor (``structures``), m_n^step is projected onto the structure.
Only matrix products: no eigendecomposition, solve, inverse or root, so it runs in bf16.
K_n K_n^T is cached from one refresh to the next where that pays (rescaled by
s_n = max(1, sqrt(max|K_n|)) for range): computing it costs d_n^3, and it saves a mode product,
2 numel d_n, on each of the T steps it serves. Elsewhere K_n^T and K_n are applied in turn, as
SIRFShampoo always does. Both m_n and K_n K_n^T are symmetric, so the cache lives in the strict
lower triangle of m_n's storage: the state is K_n, m_n and b, as SIRFShampoo's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch

from rootfree.optim import kronecker, structures
from rootfree.optim.base import (
    PreconditionedOptimizer,
    foreach_scale_,
    grad_or_raise,
    renamed,
)
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange
from rootfree.optim.structures import Structure, StructureSpec
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


class RootFreeShampoo(PreconditionedOptimizer):
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
        structure: the factors' structure (docs/structures.md): ``dense``, ``diagonal``,
            ``block<k>diagonal``, ``hierarchical<k1>_<k2>``, ``triltoeplitz`` or ``triutoeplitz``
            for every axis, or {ndim: name or one name per axis} (other ndims: dense).
            Per-parameter choices go in parameter groups.
        max_preconditioner_dim: axes longer than this get a diagonal factor (``None``: no limit).
        foreach: stack parameters with equal factor shapes into one batched computation
            (default: on for CUDA parameters, where it saves kernel launches; on CPU the copies
            cost more than they save).
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
        structure: StructureSpec = "dense",
        max_preconditioner_dim: int | None = 8192,
        foreach: bool | None = None,
        batched: bool | None = None,
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
            foreach=renamed("batched", "foreach", batched, foreach),
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, checking its structure (groups may override the default's, per name)."""
        super().add_param_group(param_group)
        structures.check_spec(self.param_groups[-1]["structure"])

    def preconditioner_factors(self, max_dim: int = 1024) -> list[torch.Tensor]:
        """Each factor's K K^T (dense, float64), the preconditioner of one axis, for diagnostics
        (no decomposition here); axes longer than ``max_dim`` are left out, which bounds the
        eigensolves a caller runs at the end of a large model's training."""
        products = []
        for group in self.param_groups:
            for param in group["params"]:
                factors = self.state.get(param, {}).get("factors", [])
                for struct, factor in zip(_structures(group, param), factors):
                    if struct.dim <= max_dim:
                        k = struct.to_dense(factor[None])[0].double()
                        products.append(k @ k.T)
        return products

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if state:
            return state
        dtype = resolve_dtype(group["preconditioner_dtype"], param.dtype)
        factors = [s.identity(dtype, param.device) for s in _structures(group, param)]
        state["step"] = 0
        state["next_update"] = 0
        state["factors"] = factors
        state["preconditioners"] = [None] * len(factors)  # set on the first (refresh) step
        state["preconditioner_is_outer"] = [False] * len(factors)
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        batched = group["foreach"]
        buckets: dict[tuple[Any, ...], list[torch.Tensor]] = defaultdict(list)
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self._init_state(group, param)
            if batched or (batched is None and param.is_cuda):
                key = (
                    kronecker.squeezed_shape(param.shape),
                    _structures(group, param),
                    state["factors"][0].dtype,
                    param.dtype,
                    param.device,
                    state["step"] == state["next_update"],
                    tuple(state["preconditioner_is_outer"]),
                )
            else:
                key = (id(param),)
            buckets[key].append(param)
        for params in buckets.values():
            self._step_bucket(group, params)

    def _step_bucket(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """One step for parameters whose factors have equal shapes: stacked, batched math."""
        states = [self.state[p] for p in params]
        dims = kronecker.squeezed_shape(params[0].shape)
        structs = _structures(group, params[0])
        dtype = states[0]["factors"][0].dtype
        grads = [grad_or_raise(p, "RootFreeShampoo").reshape(dims) for p in params]
        grad = _stack(grads).to(dtype)
        if states[0]["step"] == states[0]["next_update"]:
            applied, is_outer, scale = _refresh(group, structs, states, grad)
        else:
            applied, is_outer, scale = _cached(structs, states)
        for s in states:
            s["step"] += 1

        # axes that are not outer products apply K_n itself, so they keep no copy of it
        update = structures.apply_outer_products(grad, structs, applied, is_outer)
        update = update.to(params[0].dtype)
        update = update.mul_(kronecker.per_element(scale, update))
        updates = [u.reshape(p.shape) for u, p in zip(update.unbind(0), params)]
        if group["weight_decay"] != 0.0:
            torch._foreach_add_(updates, params, alpha=group["weight_decay"])
        if group["momentum"] != 0.0:
            for s, p in zip(states, params):
                if "momentum_buffer" not in s:
                    s["momentum_buffer"] = torch.zeros_like(p)
            buffers = [s["momentum_buffer"] for s in states]
            foreach_scale_(buffers, group["momentum"])
            torch._foreach_add_(buffers, updates)
            updates = buffers
        torch._foreach_add_(params, updates, alpha=-group["lr"])


def _refresh(
    group: dict[str, Any], structs: tuple[Structure, ...], states: list[dict], grad: torch.Tensor
) -> tuple[list[torch.Tensor], list[bool], torch.Tensor]:
    """Update the factors and return what preconditions the gradient until the next refresh:
    per axis K_n K_n^T (rescaled, ``is_outer``) or K_n, and the scale of their product."""
    factors = [_stack([s["factors"][n] for s in states]) for n in range(len(structs))]
    momenta = _momenta(group, structs, states)
    _update_factors(group, structs, factors, momenta, grad)
    numel, has_momentum = grad[0].numel(), momenta is not None
    is_outer = [
        s.caches(group["update_every"] * numel)
        and (s.outer_needs_storage(has_momentum) or s.unpacking_pays(numel))
        for s in structs
    ]
    outers, scale = _rescaled_preconditioner(structs, factors, is_outer)
    applied = []
    for n, s in enumerate(structs):
        applied.append(factors[n] if outers[n] is None else outers[n])
        if outers[n] is not None and not s.outer_needs_storage(has_momentum):
            if momenta is not None:
                s.pack_(momenta[n], outers[n])
            outers[n] = None  # kept in the momentum's storage, or recomputed
    for i, state in enumerate(states):
        state["factors"] = [f[i] for f in factors]
        if momenta is not None:
            state["factor_momenta"] = [m[i] for m in momenta]
        state["preconditioners"] = [None if o is None else o[i] for o in outers]
        state.pop("preconditioner_scale", None)  # kept by earlier releases; recomputed now
        state["preconditioner_is_outer"] = is_outer
        state["next_update"] = next_update_step(
            state["step"], group["update_every"], group["update_schedule"]
        )
    return applied, is_outer, scale


def _packed(state: dict[str, Any]) -> list[bool]:
    """Axes whose K K^T is cached, but not on its own (see ``Structure.outer_needs_storage``)."""
    return [
        outer and p is None
        for outer, p in zip(state["preconditioner_is_outer"], state["preconditioners"])
    ]


def _momenta(
    group: dict[str, Any], structs: tuple[Structure, ...], states: list[dict]
) -> list[torch.Tensor] | None:
    """The stacked factor momenta, unpacked, or None without Riemannian momentum."""
    if group["riemannian_momentum"] == 0.0:
        return None
    for state in states:
        if "factor_momenta" not in state:
            state["factor_momenta"] = [torch.zeros_like(f) for f in state["factors"]]
    stacks = [_stack([st["factor_momenta"][n] for st in states]) for n in range(len(structs))]
    return [
        s.unpack_momentum(m) if packed else m
        for s, m, packed in zip(structs, stacks, _packed(states[0]))
    ]


def _cached(
    structs: tuple[Structure, ...], states: list[dict]
) -> tuple[list[torch.Tensor], list[bool], torch.Tensor]:
    """What the last refresh left to precondition with (see ``_refresh``); the scale is
    recomputed from the factors, which have not changed since."""
    is_outer = states[0]["preconditioner_is_outer"]
    factors = [_stack([st["factors"][n] for st in states]) for n in range(len(structs))]
    opmath = torch.promote_types(factors[0].dtype, torch.float32)
    scale = torch.ones(len(states), dtype=opmath, device=factors[0].device)
    applied = []
    for n, (s, factor, packed) in enumerate(zip(structs, factors, _packed(states[0]))):
        if not is_outer[n]:
            applied.append(factor)
            continue
        s_n = _factor_scale(s, factor)
        scale = scale * s_n.square()
        if packed:
            momenta = [st["factor_momenta"][n] for st in states if "factor_momenta" in st]
            applied.append(s.unpack_outer(_stack(momenta) if momenta else None, factor, s_n))
        else:
            applied.append(_stack([st["preconditioners"][n] for st in states]))
    return applied, is_outer, scale


def _structures(group: dict[str, Any], param: torch.Tensor) -> tuple[Structure, ...]:
    """The structure of each of ``param``'s factors, as the group's settings choose them."""
    dims = kronecker.squeezed_shape(param.shape)
    names = structures.axis_names(group["structure"], dims, group["max_preconditioner_dim"])
    return tuple(structures.structure(n, d) for n, d in zip(names, dims))


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack along a new leading axis; a single tensor becomes a view, so its updates land in place."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def _update_factors(
    group: dict[str, Any],
    structs: list[Structure],
    factors: list[torch.Tensor],
    momenta: list[torch.Tensor] | None,
    grad: torch.Tensor,
) -> None:
    """One Riemannian step on every (stacked) factor, all computed from the factors before it."""
    alpha2 = group["riemannian_momentum"]
    dims = grad.shape[1:]
    numel = math.prod(dims)
    # Factors scaled by 1/sqrt(d_n) keep K^T K and G_hat in range in low precision.
    scaled = [factor * (1.0 / math.sqrt(dim)) for factor, dim in zip(factors, dims)]
    g_hat = structures.apply_factors(grad * math.sqrt(group["batch_size"]), structs, scaled, True)
    inners = [s.inner(factor) for s, factor in zip(structs, scaled)]
    opmath = torch.promote_types(grad.dtype, torch.float32)
    traces = torch.stack([s.average_trace(m).to(opmath) for s, m in zip(structs, inners)])

    for n, (s, factor, dim) in enumerate(zip(structs, factors, dims)):
        others = torch.cat([traces[:n], traces[n + 1 :]]).prod(dim=0)
        step = inners[n].mul_(
            kronecker.per_element(others * (group["damping"] / 2 * numel), factor)
        )
        step.add_(s.gram(kronecker.unfold(g_hat, n)), alpha=dim / 2)
        s.add_to_diagonal_(step, -0.5)
        if momenta is not None:
            step = momenta[n].mul_(alpha2).add_(step, alpha=1.0 - alpha2)
        rate = group["lr_cov"] / s.frobenius_norm(step).to(opmath).clamp(min=1.0)
        factor.sub_(s.matmul(factor, step).mul_(kronecker.per_element(rate, factor)))


def _factor_scale(struct: Structure, factor: torch.Tensor) -> torch.Tensor:
    """s_n = max(1, sqrt(max|K_n|)), which keeps (K_n / s_n)(K_n / s_n)^T in range in low
    precision (shape (b,), op-math dtype)."""
    opmath = torch.promote_types(factor.dtype, torch.float32)
    return struct.max_abs(factor).to(opmath).sqrt().clamp(min=1.0)


def _rescaled_preconditioner(
    structs: tuple[Structure, ...], factors: list[torch.Tensor], is_outer: list[bool]
) -> tuple[list[torch.Tensor | None], torch.Tensor]:
    """(K_n / s_n)(K_n / s_n)^T where ``is_outer[n]`` (see ``_factor_scale``), and prod_n s_n^2,
    which the preconditioned gradient is multiplied by. Other axes get None: they apply K_n^T
    and then K_n from the factor itself at every step."""
    opmath = torch.promote_types(factors[0].dtype, torch.float32)
    scale = torch.ones(factors[0].shape[0], dtype=opmath, device=factors[0].device)
    preconditioners: list[torch.Tensor | None] = []
    for s, factor, outer in zip(structs, factors, is_outer):
        if not outer:
            preconditioners.append(None)
            continue
        s_n = _factor_scale(s, factor)
        preconditioners.append(s.outer(factor / kronecker.per_element(s_n, factor)))
        scale = scale * s_n.square()
    return preconditioners, scale


def sirfshampoo_reference(model: torch.nn.Module, **arguments: Any) -> torch.optim.Optimizer:
    """The authors' SIRFShampoo (``pip install sirfshampoo``) with RootFreeShampoo's arguments
    in its names, for the bench and the tests to set beside ours."""
    from sirfshampoo import SIRFShampoo

    names = {"lr": "lr", "lr_cov": "beta2", "momentum": "alpha1", "damping": "lam",
             "riemannian_momentum": "alpha2", "weight_decay": "kappa", "batch_size": "batch_size",
             "update_every": "T", "structure": "structures", "preconditioner_dtype": "preconditioner_dtypes"}  # fmt: skip
    unknown = sorted(set(arguments) - set(names))
    if unknown:
        raise ValueError(f"sirfshampoo has no counterpart of {unknown}")
    dtype = arguments.get("preconditioner_dtype")
    if isinstance(dtype, str):
        arguments["preconditioner_dtype"] = resolve_dtype(dtype, torch.float32)
    return SIRFShampoo(model, **{names[k]: v for k, v in arguments.items()})


SPECS = (
    OptimizerSpec(
        "rootfree_shampoo",
        RootFreeShampoo,
        family="kronecker",
        root_free=True,
        counterpart="shampoo",
        heavy_ball={"momentum": "lr"},
        paper_names={
            "lr": PaperName("lr"),
            "weight_decay": PaperName("weight_decay"),
            "momentum": PaperName("momentum"),
            "lr_cov": PaperName("lr_cov"),
            "damping": PaperName("damping"),
            "riemannian_momentum": PaperName("riemannian_momentum"),
        },
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.9,
            "lr_cov": 1.0e-2,
            "riemannian_momentum": 0.5,
            "damping": 1.0e-3,
            "weight_decay": 0.0,
            "update_every": 2,
            "update_schedule": "fixed",
            "lr_cov_scales": None,
            "preconditioner_dtype": None,
            "structure": "dense",
            "param_overrides": None,
        },
        search={
            "lr": SearchRange(1e-4, 0.1),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-3, 0.3),
            "riemannian_momentum": SearchRange(0.0, 0.9, log=False),
            "damping": SearchRange(1e-5, 1e-2),
            "weight_decay": SearchRange(1e-5, 0.1),
        },
        takes_batch_size=True,
        dtype_arguments=("preconditioner_dtype",),
        bench={"lr": 2e-3, "lr_cov": 0.05, "damping": 1e-2, "update_every": 2},
        reference=sirfshampoo_reference,
        description="inverse- and root-free Kronecker Shampoo (IF-Shampoo / SIRFShampoo)",
        notes="Refreshed every T = 2 steps as in the paper's ViT runs; update_schedule log4 is "
        "the authors' warm-up schedule. Paper stage-2 ranges (the authors' Swin sweep): lr "
        "2e-4..8e-4, momentum 0.5..0.9, lr_cov 0.2..0.8, riemannian_momentum 0.1..0.8, damping "
        "5e-5..5e-4, wd 1e-6..1e-3. lr_cov_scales: {name substring: factor}, the paper's ViT "
        "runs use {norm: 0.25, proj: 0.25, bias: 0.25}; structure: dense, block30diagonal, "
        "hierarchical15_15, triltoeplitz, ... or {ndim: [one per axis]} (docs/structures.md); "
        "param_overrides: {name pattern: {argument: value}}, e.g. "
        "{blocks.*.mlp.*: {structure: diagonal}}.",
    ),
)
