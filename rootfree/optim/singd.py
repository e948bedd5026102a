"""SINGD: structured inverse-free natural gradient descent (Lin et al., ICML 2024, arXiv
2312.05705), numerically the authors' ``singd`` 0.0.5 (github.com/f-dangel/singd), on rootfree's
factor structures (``structures``; docs/update_rules.md).

A Linear or Conv2d layer whose weight the optimizer trains keeps factors K (d_K = the weight's
inputs, + 1 with a bias) and C (d_C = its outputs), initially I, and implicitly the KFAC
preconditioner (K K^T) (x) (C C^T). Its backward passes accumulate, on a refresh step,

    A = the layer's inputs as rows (a conv's patches; a 1 appended for a bias) / sqrt(rows)
    G = its output gradients as rows * sqrt(number of loss terms)
    H_K += P(K^T A^T A K),   H_C += P(C^T G^T G C)

and the step, with tr-bar the average trace and all m^step from the old factors, is

    m_K^step = 1/2 [tr-bar(H_C) H_K + damping tr-bar(C^T C) P(K^T K) - I]
    m_C^step = 1/2 [tr-bar(H_K) H_C + damping tr-bar(K^T K) P(C^T C) - I]
    m <- riemannian_momentum * m + m^step,   K <- K - lr_cov K m_K,   C <- C - lr_cov C m_C
    U = C C^T [grad W, grad b] K K^T + weight_decay * p,   b <- momentum b + U,   p <- p - lr b

(singd's momentum on m has no 1 - alpha, unlike SIRFShampoo's). P is the projection onto the
factor's structure, which for every structure both packages have is SINGD's ``from_dense``.
Inputs and output gradients come from hooks: a global forward hook that picks out the Linear and
Conv2d modules whose weight the optimizer holds, so the optimizer takes parameters like any other
and never needs the model. Parameters outside such layers (norms, embeddings, a layer whose
weight has no gradient) get AdamW (the authors' examples pair SINGD with it) or, with
``others="none"``, stay as they are, as in singd.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from rootfree.optim import kronecker, structures
from rootfree.optim.base import PreconditionedOptimizer, autocast_disabled
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange
from rootfree.optim.structures import Structure
from rootfree.optim.validation import (
    check_choice,
    check_lr,
    check_nonnegative,
    check_positive_int,
    check_unit_interval,
    dtype_name,
    resolve_dtype,
)

LAYERS = (nn.Linear, nn.Conv2d)
LOSS_AVERAGES = ("batch", "batch+sequence", None)
KFAC_APPROXIMATIONS = ("expand", "reduce")
OTHERS = ("adamw", "none")
ADAMW_BETAS, ADAMW_EPS = (0.9, 0.999), 1e-8  # torch's defaults, as in the authors' examples

# ---------------------------------------------------------------------------------------------
# The functional core: KFAC's rows, the factor step and the preconditioned gradient.
# ---------------------------------------------------------------------------------------------


def kfac_inputs(x: torch.Tensor, module: nn.Module, kfac_approx: str) -> torch.Tensor:
    """A (rows, d_K): the layer's inputs as rows, a 1 appended for a bias, / sqrt(rows)."""
    if isinstance(module, nn.Conv2d):
        rows = _conv_patches(x, module)  # (b, locations, c_in / groups * k1 * k2)
        rows = rows.flatten(0, 1) if kfac_approx == "expand" else rows.mean(dim=1)
    elif kfac_approx == "expand":
        rows = x.reshape(-1, x.shape[-1])
    else:
        rows = x.flatten(1, -2).mean(dim=1) if x.ndim > 2 else x
    if module.bias is not None:
        rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
    return rows / math.sqrt(rows.shape[0])


def kfac_output_gradients(
    grad: torch.Tensor, module: nn.Module, loss_average: str | None, kfac_approx: str
) -> torch.Tensor:
    """G (rows, d_C): the layer's output gradients as rows, times sqrt(loss terms) for a mean
    loss (``batch``: the batch size; ``batch+sequence``: times the shared axes, as singd)."""
    if isinstance(module, nn.Conv2d):
        grad = grad.movedim(1, -1)  # (b, o1, o2, c_out): shared axes in the middle, as Linear's
    shared = grad.shape[1:-1]
    terms = grad.shape[0] * (shared.numel() if loss_average == "batch+sequence" else 1)
    if kfac_approx == "expand":
        rows = grad.reshape(-1, grad.shape[-1])
    else:
        rows = grad.flatten(1, -2).sum(dim=1) if grad.ndim > 2 else grad
    return rows if loss_average is None else rows * math.sqrt(terms)


def _conv_patches(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The patches each output location sees, averaged over channel groups (singd's), with the
    conv's zero padding: (b, locations, c_in / groups * k1 * k2)."""
    x = x.unflatten(1, (conv.groups, -1)).mean(dim=1)
    padding = conv.padding
    if isinstance(padding, str):  # "valid", or "same": torch pads the odd remainder last
        totals = [
            d * (k - 1) if padding == "same" else 0 for d, k in zip(conv.dilation, conv.kernel_size)
        ]
        pads = [p for total in reversed(totals) for p in (total // 2, total - total // 2)]
        x, padding = F.pad(x, pads), 0
    patches = F.unfold(
        x, conv.kernel_size, dilation=conv.dilation, padding=padding, stride=conv.stride
    )
    return patches.transpose(1, 2)


def factor_steps(
    k: Structure,
    c: Structure,
    factors: tuple[torch.Tensor, torch.Tensor],
    curvature: tuple[torch.Tensor, torch.Tensor],
    damping: float,
    kfac_like: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """2 m_K^step and 2 m_C^step from stacked K, C and H_K, H_C (``kfac_like``: singd's IKFAC
    variant, tr-bar weights of 1)."""
    (K, C), (h_k, h_c) = factors, curvature
    k_inner, c_inner = k.inner(K), c.inner(C)  # fresh tensors: the steps are built in them
    if kfac_like:
        steps = (k_inner.mul_(damping).add_(h_k), c_inner.mul_(damping).add_(h_c))
    else:
        tr_hk, tr_hc = k.average_trace(h_k), c.average_trace(h_c)
        # copies: a structure's trace may be a view of the inner product built on below
        tr_kk, tr_cc = k.average_trace(k_inner).clone(), c.average_trace(c_inner).clone()
        times = kronecker.per_element
        steps = (
            k_inner.mul_(times(damping * tr_cc, k_inner)).addcmul_(h_k, times(tr_hc, h_k)),
            c_inner.mul_(times(damping * tr_kk, c_inner)).addcmul_(h_c, times(tr_hk, h_c)),
        )
    k.add_to_diagonal_(steps[0], -1.0)
    c.add_to_diagonal_(steps[1], -1.0)
    return steps


def factor_update_(
    structs: tuple[Structure, Structure],
    factors: tuple[torch.Tensor, torch.Tensor],
    curvature: tuple[torch.Tensor, torch.Tensor],
    momenta: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    lr_cov: float,
    damping: float,
    riemannian_momentum: float,
    kfac_like: bool = False,
    normalize_lr_cov: bool = False,
) -> None:
    """One Riemannian step on stacked K and C (and their momenta, when given), in place."""
    steps = factor_steps(*structs, factors, curvature, damping, kfac_like)
    scale = 0.5 * (1.0 - riemannian_momentum if normalize_lr_cov else 1.0)
    for n, (struct, factor, step) in enumerate(zip(structs, factors, steps)):
        step = step.mul_(scale)
        if momenta is not None:
            step = momenta[n].mul_(riemannian_momentum).add_(step)
        rate = torch.full((factor.shape[0],), lr_cov, dtype=torch.float64, device=factor.device)
        if normalize_lr_cov:  # singd's: by the largest entry it stores, never above lr_cov
            rate = rate / struct.max_abs(step).to(rate).clamp(min=1.0)
        factor.sub_(struct.matmul(factor, step).mul_(kronecker.per_element(rate, factor)))


def natural_gradient(
    structs: tuple[Structure, Structure],
    factors: tuple[torch.Tensor, torch.Tensor],
    grad: torch.Tensor,
) -> torch.Tensor:
    """C C^T G K K^T for a stack of gradient matrices G (b, d_C, d_K) and stacked K, C."""
    k, c = structs
    return structures.apply_outer_products(grad, (c, k), factors[::-1], (False, False))


def adamw_update_(
    param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float, weight_decay: float
) -> None:
    """torch AdamW's step (betas 0.9, 0.999, eps 1e-8) for a parameter outside KFAC's layers."""
    if "exp_avg" not in state:
        state["adamw_step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
    (beta1, beta2), step = ADAMW_BETAS, state["adamw_step"] + 1
    state["adamw_step"] = step
    param.mul_(1.0 - lr * weight_decay)
    state["exp_avg"].lerp_(grad, 1.0 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1.0 - beta2**step)).add_(ADAMW_EPS)
    param.addcdiv_(state["exp_avg"], denom, value=-lr / (1.0 - beta1**step))


def sgd_update_(
    param: torch.Tensor, update: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
) -> None:
    """U + weight_decay p into the heavy-ball buffer, then p <- p - lr b (singd's)."""
    if group["weight_decay"] != 0.0:
        update = update.add_(param, alpha=group["weight_decay"])
    if group["momentum"] != 0.0:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(param)
        update = state["momentum_buffer"].mul_(group["momentum"]).add_(update)
    param.add_(update, alpha=-group["lr"])


def layer_structures(
    structure: str | Sequence[str], weight: torch.Tensor, has_bias: bool
) -> tuple[Structure, Structure]:
    """K's and C's structures: ``structure`` names both, or is (K's, C's) as singd's."""
    names = (structure,) if isinstance(structure, str) else tuple(structure)
    k_name, c_name = names if len(names) == 2 else names * 2
    d_k = weight[0].numel() + int(has_bias)
    return structures.structure(k_name, d_k), structures.structure(c_name, weight.shape[0])


# ---------------------------------------------------------------------------------------------
# The optimizer: hooks collect H_K, H_C; step() refreshes K, C and moves the parameters.
# ---------------------------------------------------------------------------------------------


class SINGD(PreconditionedOptimizer):
    """Structured inverse-free natural gradient descent, numerically the authors' singd 0.0.5.

    Args:
        lr: step size (singd's lr; beta_2 in SINGD's paper).
        momentum: heavy-ball momentum on the preconditioned step (singd's momentum; alpha_2).
        lr_cov: the factors' learning rate (singd's lr_cov; beta_1).
        riemannian_momentum: momentum on the factor updates (singd's alpha1; alpha_1).
        damping: lambda.
        weight_decay: added to the preconditioned step (gamma); decoupled for AdamW's params.
        update_every: T, refresh interval of K and C.
        structure: K's and C's structure (docs/structures.md): one name for both, or
            (K's, C's). singd has dense, diagonal, block30diagonal, hierarchical15_15,
            triltoeplitz and triutoeplitz; rootfree any block size and hierarchy.
        preconditioner_dtype: dtype of K, C and the preconditioned step (``None``: the weight's).
        loss_average: what the loss is a mean over: ``batch``, ``batch+sequence`` or ``None``
            (a sum); scales the output gradients as singd does, so there is no B to pass.
        kfac_approx: ``expand`` or ``reduce`` (Eschenhagen et al., 2023) for shared axes.
        kfac_like: singd's IKFAC variant (its Riemannian momentum is then off).
        normalize_lr_cov: divide lr_cov by max(1, the largest entry of m), per factor.
        others: ``adamw`` for parameters outside the Linear and Conv2d layers, or ``none``
            (singd's: they are not trained).

    Preconditioner settings come from the group of the layer's weight; lr, momentum and
    weight decay from each parameter's own group. Under a GradScaler, step() takes its scale
    (``_step_supports_amp_scaling``), so gradients must not be unscaled before it.
    """

    _step_supports_amp_scaling = True

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
        update_every: int = 10,
        structure: str | Sequence[str] = "dense",
        preconditioner_dtype: str | torch.dtype | None = None,
        loss_average: str | None = "batch",
        kfac_approx: str = "expand",
        kfac_like: bool = False,
        normalize_lr_cov: bool = False,
        others: str = "adamw",
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            lr_cov=lr_cov,
            riemannian_momentum=riemannian_momentum,
            damping=damping,
            weight_decay=weight_decay,
            update_every=update_every,
            structure=structure if isinstance(structure, str) else tuple(structure),
            preconditioner_dtype=dtype_name("preconditioner_dtype", preconditioner_dtype),
            loss_average=loss_average,
            kfac_approx=kfac_approx,
            kfac_like=kfac_like,
            normalize_lr_cov=normalize_lr_cov,
            others=others,
        )
        super().__init__(params, defaults)
        self._install_hook()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, checking the settings it may override."""
        super().add_param_group(param_group)
        _check_group(self.param_groups[-1])
        self._group_index: dict[int, int] | None = None  # rebuilt on demand

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle or deepcopy (a copy hooks its own parameters' layers), or load_state_dict
        (which calls this on the optimizer itself, hooked already)."""
        super().__setstate__(state)
        self._group_index = None
        if "_pending" not in self.__dict__:
            self._install_hook()

    def preconditioner_factors(self, max_dim: int = 1024) -> list[torch.Tensor]:
        """Each layer's K K^T and C C^T (dense, float64), for diagnostics; sides longer than
        ``max_dim`` are left out."""
        products = []
        for group in self.param_groups:
            for weight in group["params"]:
                products += self._factor_products(group, weight, max_dim)
        return products

    def _factor_products(
        self, group: dict[str, Any], weight: torch.Tensor, max_dim: int
    ) -> list[torch.Tensor]:
        """K K^T and C C^T of the layer whose state ``weight`` keeps (none for other params)."""
        state, products = self.state.get(weight, {}), []
        if "K" not in state:
            return products
        structs = layer_structures(group["structure"], weight, False)
        if structs[0].shape != tuple(state["K"].shape):  # the layer has a bias: d_K + 1
            structs = layer_structures(group["structure"], weight, True)
        for struct, factor in zip(structs, (state["K"], state["C"])):
            if struct.dim <= max_dim:
                dense = struct.to_dense(factor[None])[0].double()
                products.append(dense @ dense.T)
        return products

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Refresh each layer's K, C on its refresh steps, then move every parameter."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        scale, found_inf = self._amp_scale()
        with autocast_disabled():
            if not found_inf:
                done = self._step_layers(scale)
                self._step_others(done, scale)
        self._pending.clear()
        return loss

    # -- hooks ---------------------------------------------------------------------------------
    def _install_hook(self) -> None:
        """One global forward hook, holding the optimizer weakly and removed when it is freed."""
        self._layers: dict[torch.Tensor, torch.Tensor | None] = {}  # weight -> its layer's bias
        self._pending: dict[torch.Tensor, list[torch.Tensor]] = {}  # weight -> [H_K, H_C]
        handle = register_module_forward_hook(partial(_forward_hook, weakref.ref(self)))
        weakref.finalize(self, handle.remove)

    def _on_forward(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        """Note the layer; on its refresh steps, hook its output to collect H_K, H_C."""
        weight = module.weight
        if id(weight) not in self._index():
            return
        self._layers[weight] = module.bias
        if not (
            torch.is_grad_enabled()
            and weight.requires_grad
            and inputs
            and torch.is_tensor(output)
            and output.requires_grad
        ):
            return
        state = self._layer_state(weight, module.bias)
        if state["step"] % self._group(weight)["update_every"] == 0:
            handler = partial(_backward_hook, weakref.ref(self), module, inputs[0].detach())
            output.register_hook(handler)

    def _on_backward(self, module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
        """Add this backward pass's H_K, H_C to the layer's pending sums."""
        weight, group = module.weight, self._group(module.weight)
        state = self.state[weight]
        k, c = layer_structures(group["structure"], weight, module.bias is not None)
        with torch.no_grad(), autocast_disabled():
            a = kfac_inputs(x.to(state["K"].dtype), module, group["kfac_approx"])
            g = kfac_output_gradients(
                grad.to(state["C"].dtype), module, group["loss_average"], group["kfac_approx"]
            )
            terms = [
                k.inner_of_rows(state["K"][None], a[None]),  # singd's ``from_inner``
                c.inner_of_rows(state["C"][None], g[None]),
            ]
        pending = self._pending.setdefault(weight, [torch.zeros_like(t) for t in terms])
        for total, term in zip(pending, terms):
            total.add_(term)

    # -- the step ------------------------------------------------------------------------------
    def _step_layers(self, scale: float) -> set[int]:
        """Step every layer whose weight has a gradient; return the ids of the params moved."""
        done = set()
        for weight, bias in self._layers.items():
            if weight.grad is None:
                continue
            for param, update in zip((weight, bias), self._layer_update(weight, bias, scale)):
                if id(param) in self._index() and param.grad is not None:
                    sgd_update_(param, update, self.state[param], self._group(param))
                    done.add(id(param))
        return done

    def _layer_update(
        self, weight: torch.Tensor, bias: torch.Tensor | None, scale: float
    ) -> list[torch.Tensor]:
        """The preconditioned gradients of weight and bias, refreshing K and C first if due."""
        group, state = self._group(weight), self._layer_state(weight, bias)
        structs = layer_structures(group["structure"], weight, bias is not None)
        pending = self._pending.pop(weight, None)
        if pending is not None and state["step"] % group["update_every"] == 0:
            self._refresh(group, state, structs, _all_reduce(pending, group["loss_average"]), scale)
        state["step"] += 1
        dtype = state["K"].dtype
        columns = [weight.grad.flatten(start_dim=1)]
        if bias is not None:
            columns.append(
                (bias.grad if bias.grad is not None else bias.new_zeros(bias.shape))[:, None]
            )
        grad = torch.cat(columns, dim=1)
        grad = (grad / scale if scale != 1.0 else grad).to(dtype)
        factors = (state["K"][None], state["C"][None])
        update = natural_gradient(structs, factors, grad[None])[0].to(weight.dtype)
        updates = [update[:, : columns[0].shape[1]].reshape(weight.shape)]
        return updates + ([update[:, -1].reshape(bias.shape)] if bias is not None else [])

    def _refresh(
        self,
        group: dict[str, Any],
        state: dict[str, Any],
        structs: tuple[Structure, Structure],
        curvature: list[torch.Tensor],
        scale: float,
    ) -> None:
        """One step on K and C from the collected H_K, H_C (H_C unscaled by the AMP scale^2)."""
        h_k, h_c = curvature
        if scale != 1.0:
            h_c = h_c / scale**2
        momenta = None
        if "K_momentum" in state and not group["kfac_like"]:
            momenta = (state["K_momentum"][None], state["C_momentum"][None])
        factor_update_(
            structs,
            (state["K"][None], state["C"][None]),
            (h_k, h_c),
            momenta,
            lr_cov=group["lr_cov"],
            damping=group["damping"],
            riemannian_momentum=0.0 if momenta is None else group["riemannian_momentum"],
            kfac_like=group["kfac_like"],
            normalize_lr_cov=group["normalize_lr_cov"],
        )

    def _step_others(self, done: set[int], scale: float) -> None:
        """AdamW (or nothing) for the parameters with a gradient that no layer moved."""
        for group in self.param_groups:
            if group["others"] == "none":
                continue
            for param in group["params"]:
                if param.grad is None or id(param) in done:
                    continue
                grad = param.grad / scale if scale != 1.0 else param.grad
                adamw_update_(param, grad, self.state[param], group["lr"], group["weight_decay"])

    # -- bookkeeping ---------------------------------------------------------------------------
    def _index(self) -> dict[int, int]:
        """id(param) -> the index of its group."""
        if self._group_index is None:
            self._group_index = {
                id(p): i for i, group in enumerate(self.param_groups) for p in group["params"]
            }
        return self._group_index

    def _group(self, param: torch.Tensor) -> dict[str, Any]:
        return self.param_groups[self._index()[id(param)]]

    def _layer_state(self, weight: torch.Tensor, bias: torch.Tensor | None) -> dict[str, Any]:
        """The layer's state, kept with its weight: K = C = I and zero momenta at first."""
        state = self.state[weight]
        if "K" not in state:
            group = self._group(weight)
            dtype = resolve_dtype(group["preconditioner_dtype"], weight.dtype)
            structs = layer_structures(group["structure"], weight, bias is not None)
            state["step"] = 0
            state["K"], state["C"] = (s.identity(dtype, weight.device) for s in structs)
            if group["riemannian_momentum"] != 0.0 and not group["kfac_like"]:
                state["K_momentum"] = torch.zeros_like(state["K"])
                state["C_momentum"] = torch.zeros_like(state["C"])
        return state

    def _amp_scale(self) -> tuple[float, bool]:
        """The scale a GradScaler left on the gradients and whether it found infs."""
        if not hasattr(self, "found_inf"):
            return 1.0, False
        if self.grad_scale is None:
            raise RuntimeError(
                "SINGD takes the GradScaler's scale in step(): its gradients were unscaled "
                "before (GradScaler.unscale_, e.g. to clip), which leaves H_C scaled by an "
                "unknown factor; clip without unscale_, or train in bf16"
            )
        return float(self.grad_scale), bool(self.found_inf.item())


def _forward_hook(ref: weakref.ref, module: nn.Module, inputs: tuple, output: Any) -> None:
    """The global forward hook: hand supported layers to the optimizer, if it still lives."""
    optimizer = ref()
    if optimizer is not None and isinstance(module, LAYERS):
        optimizer._on_forward(module, inputs, output)


def _backward_hook(
    ref: weakref.ref, module: nn.Module, x: torch.Tensor, grad: torch.Tensor
) -> None:
    """The tensor hook on a layer's output (a module backward hook breaks on in-place ops)."""
    optimizer = ref()
    if optimizer is not None:
        optimizer._on_backward(module, x, grad)


def _all_reduce(curvature: list[torch.Tensor], loss_average: str | None) -> list[torch.Tensor]:
    """Under torch.distributed, H_K and H_C averaged over ranks (summed for a summed loss)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return curvature
    for term in curvature:
        dist.all_reduce(term)
        if loss_average is not None:
            term.div_(dist.get_world_size())
    return curvature


def _check_group(group: dict[str, Any]) -> None:
    """Raise a one-line ValueError for a setting a group cannot take."""
    check_lr(group["lr"])
    check_nonnegative("lr_cov", group["lr_cov"])
    check_unit_interval("momentum", group["momentum"], open_low=False, open_high=True)
    check_unit_interval(
        "riemannian_momentum", group["riemannian_momentum"], open_low=False, open_high=True
    )
    check_nonnegative("damping", group["damping"])
    check_nonnegative("weight_decay", group["weight_decay"])
    check_positive_int("update_every", group["update_every"])
    check_choice("loss_average", group["loss_average"], LOSS_AVERAGES)
    check_choice("kfac_approx", group["kfac_approx"], KFAC_APPROXIMATIONS)
    check_choice("others", group["others"], OTHERS)
    spec = group["structure"]
    names = [spec] if isinstance(spec, str) else list(spec)
    if len(names) not in (1, 2) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"Invalid structure: {spec!r}; give one name, or two: (K's, C's)")
    for name in names:
        structures.check_spec(name)
    if group["kfac_like"] and group["riemannian_momentum"] != 0.0:
        warnings.warn("kfac_like=True ignores riemannian_momentum (as singd does)", stacklevel=4)


def singd_reference(model: nn.Module, **arguments: Any) -> torch.optim.Optimizer:
    """The authors' SINGD (``pip install singd``) with SINGD's arguments in its names, for the
    bench and the tests; it trains the Linear and Conv2d layers alone (``others="none"``)."""
    from singd.optim.optimizer import SINGD as AuthorsSINGD

    names = {"lr": "lr", "momentum": "momentum", "lr_cov": "lr_cov", "damping": "damping",
             "riemannian_momentum": "alpha1", "weight_decay": "weight_decay",
             "update_every": "T", "structure": "structures", "loss_average": "loss_average",
             "preconditioner_dtype": "preconditioner_dtype", "kfac_approx": "kfac_approx",
             "kfac_like": "kfac_like", "normalize_lr_cov": "normalize_lr_cov"}  # fmt: skip
    if arguments.pop("others", "none") != "none":
        raise ValueError("singd trains Linear and Conv2d layers alone: pass others='none'")
    unknown = sorted(set(arguments) - set(names))
    if unknown:
        raise ValueError(f"singd has no counterpart of {unknown}")
    if isinstance(arguments.get("structure"), str):
        arguments["structure"] = (arguments["structure"],) * 2
    dtype = arguments.get("preconditioner_dtype")
    if dtype is not None:
        arguments["preconditioner_dtype"] = (resolve_dtype(dtype_name("dtype", dtype), None),) * 2
    return AuthorsSINGD(model, **{names[k]: v for k, v in arguments.items()})


SPECS = (
    OptimizerSpec(
        "singd",
        SINGD,
        family="kronecker",
        root_free=True,
        counterpart=None,
        heavy_ball={"momentum": "lr", "riemannian_momentum": "lr_cov"},
        paper_names={
            "lr": PaperName("lr"),
            "momentum": PaperName("momentum"),
            "lr_cov": PaperName("lr_cov"),
            "damping": PaperName("damping"),
            "weight_decay": PaperName("weight_decay"),
            "riemannian_momentum": PaperName("riemannian_momentum"),
        },
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.9,
            "lr_cov": 1.0e-2,
            "riemannian_momentum": 0.5,
            "damping": 1.0e-3,
            "weight_decay": 0.0,
            "update_every": 10,
            "structure": "dense",
            "preconditioner_dtype": None,
            "loss_average": "batch",
            "kfac_approx": "expand",
            "others": "adamw",
            "lr_cov_scales": None,
            "param_overrides": None,
        },
        search={
            "lr": SearchRange(1e-5, 0.1),
            "momentum": SearchRange(0.1, 0.99),
            "lr_cov": SearchRange(1e-4, 0.3),
            "riemannian_momentum": SearchRange(0.0, 0.9, log=False),
            "damping": SearchRange(1e-6, 0.1),
            "weight_decay": SearchRange(1e-6, 0.1),
        },
        dtype_arguments=("preconditioner_dtype",),
        bench={"lr": 2e-3, "lr_cov": 0.05, "damping": 1e-2, "update_every": 2, "others": "none"},
        curvature_from_backward=True,
        reference=singd_reference,
        description="SINGD: structured inverse-free KFAC (Lin et al., ICML 2024; singd 0.0.5)",
        notes="Defaults are singd 0.0.5's (github.com/f-dangel/singd): lr 1e-3, momentum 0.9, "
        "lr_cov 1e-2, alpha1 0.5, damping 1e-3, T 10, dense K and C, loss_average batch, KFAC-"
        "expand. Curvature comes from the Linear and Conv2d layers' inputs and output "
        "gradients (hooks), so B is read from the tensors and not passed; parameters outside "
        "those layers get AdamW at the same lr and weight decay (the authors' examples), or "
        "stay untrained with others: none (singd's own behaviour). By role, not by letter: "
        "SINGD's paper calls the Riemannian momentum alpha_1 and the heavy-ball one alpha_2, "
        "lr_cov beta_1 and lr beta_2. No paper ranges are quoted; the stage-1 space is wide.",
    ),
)
