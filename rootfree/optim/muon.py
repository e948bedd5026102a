"""Muon (Keller Jordan et al., 2024): momentum orthogonalised by Newton-Schulz, for the hidden
matrices, with an AdamW it carries for every other parameter (docs/update_rules.md). The math
follows the authors' ``muon.py`` (github.com/KellerJordan/Muon; PyPI ``muon-optimizer`` 0.1.0 is
its commit 7a93fd1), ``SingleDeviceMuonWithAuxAdam``:

    Muon groups (use_muon=True), per matrix W with gradient G:
        B <- momentum B + (1 - momentum) G                      (B starts at 0)
        M <- (1 - momentum) G + momentum B   if nesterov, else B
        O <- NS5(M) sqrt(max(1, rows / cols))                   (in ns_dtype, bfloat16 by default)
        W <- W (1 - lr weight_decay) - lr O
    AdamW groups (use_muon=False): bias-corrected Adam with eps outside the root and decoupled
    weight decay, W <- W (1 - lr weight_decay) - lr m_hat / (sqrt(v_hat) + eps).

NS5 is five steps of the quintic X <- a X + (b A + c A^2) X, A = X X^T, (a, b, c) = (3.4445,
-4.7750, 2.0315), from X = M / (||M||_F + 1e-7), on the wide orientation of M. As in the authors'
code, a 4-D convolution weight is flattened to (out, in * kh * kw), other tensors of more than two
axes are a batch of matrices over their last two, and rows / cols are the last two axes of the
unflattened tensor (a convolution's kernel height and width).

torch.optim.Muon (torch 2.14.1) steps with the same momentum EMA, Nesterov mix and
sqrt(max(1, rows / cols)) (as an lr factor; ``adjust_lr_fn`` offers others), though its docstring
writes B <- momentum B + G. It differs in: 2-D weights only and no AdamW half; lr 1e-3 and
weight_decay 0.1 by default; X / max(||X||, eps) for X / (||X|| + eps); addmm in the iteration.
Unlike the authors' code, this one leaves ``p.grad`` as it is (theirs overwrites it with the
Nesterov mix) and skips parameters without a gradient (their repository, since 5bc6993, steps
them on a zero gradient).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from rootfree.optim.base import PreconditionedOptimizer, grad_or_raise
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_betas,
    check_lr,
    check_nonnegative,
    check_positive_int,
    check_unit_interval,
    dtype_name,
    resolve_dtype,
)

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7
# A group's settings by kind, in the authors' layout (MuonWithAuxAdam's param groups).
MUON_KEYS = ("lr", "momentum", "weight_decay", "nesterov", "ns_steps", "ns_dtype")
ADAM_KEYS = ("lr", "betas", "eps", "weight_decay")
# The constructor's names of the AdamW half's settings.
ADAM_ARGUMENTS = ("adam_lr", "adam_momentum", "adam_lr_cov", "adam_damping", "adam_weight_decay")
MUON_ONLY = ("momentum", "nesterov", "ns_steps", "ns_dtype")


def _complement(value: float) -> float:
    """1 - value without binary round-off noise (1 - 0.05 reads 0.95)."""
    return float(f"{1.0 - value:.12g}")


class Muon(PreconditionedOptimizer):
    """Muon for the hidden matrices and the authors' AdamW for every other parameter.

    Args:
        lr, weight_decay, momentum: Muon's step size (spectral norm per step), decoupled weight
            decay and momentum EMA coefficient.
        nesterov: step along (1 - momentum) G + momentum B instead of the buffer B.
        ns_steps: Newton-Schulz iterations.
        ns_dtype: dtype of the Newton-Schulz iteration ("bfloat16" as the authors; ``None``:
            the parameter's).
        adam_lr, adam_momentum, adam_lr_cov, adam_damping, adam_weight_decay: the AdamW half's
            lr, beta1, 1 - beta2, eps and decoupled weight decay.

    Parameter groups: a group with ``use_muon`` is in the authors' layout, its ``lr`` and
    ``weight_decay`` its own (an AdamW group also takes ``betas`` and ``eps``; where it lacks
    one, its ``adam_*`` setting or the optimizer's stands in). A group without ``use_muon`` is split: tensors of two or more axes go to Muon with the
    group's ``lr``, ``momentum``, ``weight_decay``; the rest go to the AdamW with the group's
    ``adam_*`` settings (and no weight decay where the group sets ``weight_decay`` 0). Stored
    groups are the authors' layout, so an lr schedule scaling ``group["lr"]`` scales both halves.
    ``muon_param_groups`` splits a model the authors' way (first layer and head to AdamW).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        *,
        nesterov: bool = True,
        ns_steps: int = 5,
        ns_dtype: str | torch.dtype | None = "bfloat16",
        adam_lr: float = 3e-4,
        adam_momentum: float = 0.9,
        adam_lr_cov: float = 0.05,
        adam_damping: float = 1e-10,
        adam_weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            ns_dtype=dtype_name("ns_dtype", ns_dtype),
            adam_lr=adam_lr,
            adam_momentum=adam_momentum,
            adam_lr_cov=adam_lr_cov,
            adam_damping=adam_damping,
            adam_weight_decay=adam_weight_decay,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, split into its Muon and AdamW halves unless it sets ``use_muon``."""
        if "use_muon" in param_group:
            parts = [param_group]
        else:
            parts = split_param_group(param_group, lambda p: _tensor(p).ndim >= 2)
        for part in parts:
            group = self._resolve(part)
            super().add_param_group(group)
            keys = MUON_KEYS if group["use_muon"] else ADAM_KEYS
            for key in set(self.defaults) - set(keys):  # torch filled in the other half's
                group.pop(key, None)

    def _resolve(self, group: dict[str, Any]) -> dict[str, Any]:
        """A tagged group with every setting of its kind, checked (the authors' layout)."""
        if group["use_muon"]:
            resolved = {
                k: v for k, v in group.items() if k not in ADAM_ARGUMENTS + ("betas", "eps")
            }
            for key in MUON_KEYS:
                resolved.setdefault(key, self.defaults[key])
            resolved["ns_dtype"] = dtype_name("ns_dtype", resolved["ns_dtype"])
            _check_muon_group(resolved)
            flat = [p for p in resolved["params"] if _tensor(p).ndim < 2]
            if flat:
                raise ValueError(
                    f"Muon group: tensors of shape {[tuple(_tensor(p).shape) for p in flat]}; "
                    "Muon takes tensors of two or more axes, give the others use_muon=False"
                )
            return resolved
        resolved = {k: v for k, v in group.items() if k not in MUON_ONLY + ADAM_ARGUMENTS}
        resolved.update(self._adam_settings(group))
        check_lr(resolved["lr"])
        check_betas(resolved["betas"])
        check_nonnegative("eps", resolved["eps"])
        check_nonnegative("weight_decay", resolved["weight_decay"])
        return resolved

    def _adam_settings(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """An AdamW group's lr, betas, eps, weight_decay: its own (the authors' layout) first,
        then its ``adam_*`` ones, then the optimizer's."""
        settings = {**self.defaults, **{k: group[k] for k in ADAM_ARGUMENTS if k in group}}
        own = {k: tuple(group[k]) if k == "betas" else group[k] for k in ADAM_KEYS if k in group}
        return {
            "lr": settings["adam_lr"],
            "betas": (settings["adam_momentum"], _complement(settings["adam_lr_cov"])),
            "eps": settings["adam_damping"],
            "weight_decay": settings["adam_weight_decay"],
            **own,
        }

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if not state and group["use_muon"]:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        elif not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [grad_or_raise(p, "Muon") for p in params]
        states = [self._init_state(group, p) for p in params]
        if group["use_muon"]:
            muon(
                params,
                grads,
                [s["momentum_buffer"] for s in states],
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                nesterov=group["nesterov"],
                ns_steps=group["ns_steps"],
                ns_dtype=group["ns_dtype"],
            )
            return
        for state in states:
            state["step"] += 1
        aux_adamw(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
            lr=group["lr"],
            betas=group["betas"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
        )


def _tensor(param: Any) -> torch.Tensor:
    """The tensor of a params entry (torch also takes (name, tensor) pairs)."""
    return param[1] if isinstance(param, tuple) else param


def _check_muon_group(group: Mapping[str, Any]) -> None:
    """Muon's settings in range (one-line errors naming the valid range)."""
    check_lr(group["lr"])
    check_nonnegative("weight_decay", group["weight_decay"])
    check_unit_interval("momentum", group["momentum"], open_low=False, open_high=True)
    check_positive_int("ns_steps", group["ns_steps"])


def split_param_group(
    group: Mapping[str, Any], to_muon: Callable[[torch.Tensor], bool]
) -> list[dict[str, Any]]:
    """A group without ``use_muon`` as its Muon half (the tensors ``to_muon`` picks, with the
    group's Muon settings) and its AdamW half (the rest, with the group's ``adam_*`` settings);
    empty halves are left out. A group's ``weight_decay`` 0 also turns the AdamW's off."""
    params = list(group["params"])
    settings = {k: v for k, v in group.items() if k != "params"}
    muon_half = {k: v for k, v in settings.items() if k not in ADAM_ARGUMENTS}
    adam_half = {k: v for k, v in settings.items() if k not in MUON_KEYS}
    if settings.get("weight_decay") == 0.0:
        adam_half.setdefault("adam_weight_decay", 0.0)
    halves = [
        {"params": [p for p in params if to_muon(p)], **muon_half, "use_muon": True},
        {"params": [p for p in params if not to_muon(p)], **adam_half, "use_muon": False},
    ]
    return [half for half in halves if half["params"]]


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The weights Muon takes, as its authors choose them: every Linear and Conv weight except
    the input layer (the Embedding modules if any, else the first Linear or Conv, e.g. a ViT's
    patch embedding) and the head (the last Linear). Biases, norms, embeddings, position
    embeddings and class tokens go to the AdamW."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    embeddings = [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    skipped = {id(m) for m in (embeddings or layers[:1]) + linears[-1:]}
    embedded = {id(p) for m in embeddings for p in m.parameters()}  # a head tied to them
    weights = {
        id(m.weight): m.weight
        for m in layers
        if id(m) not in skipped and m.weight.ndim >= 2 and id(m.weight) not in embedded
    }
    return list(weights.values())


def muon_param_groups(
    model: nn.Module, groups: list[dict[str, Any]], settings: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The spec's group policy: each group split into its hidden matrices (Muon) and the rest."""
    hidden = {id(p) for p in hidden_matrices(model)}
    return [
        half for g in groups for half in split_param_group(g, lambda p: id(_tensor(p)) in hidden)
    ]


def muon(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor],
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool = True,
    ns_steps: int = 5,
    ns_dtype: str | torch.dtype | None = "bfloat16",
) -> None:
    """Functional Muon (as ``torch.optim.adamw.adamw`` is AdamW's): one step on lists of tensors,
    the momentum buffers updated in place, the gradients left as they are."""
    for param, grad, buffer in zip(params, grads, momentum_buffers):
        update = orthogonalized_update(
            grad, buffer, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, dtype=ns_dtype
        )
        if weight_decay != 0.0:
            param.mul_(1.0 - lr * weight_decay)
        param.add_(update.reshape(param.shape), alpha=-lr)


def orthogonalized_update(
    grad: torch.Tensor,
    buffer: torch.Tensor,
    *,
    momentum: float,
    nesterov: bool,
    ns_steps: int,
    dtype: str | torch.dtype | None,
) -> torch.Tensor:
    """Muon's step direction for one tensor (the authors' ``muon_update``), in the NS dtype."""
    buffer.lerp_(grad, 1.0 - momentum)
    blend = grad.lerp(buffer, momentum) if nesterov else buffer
    matrix = blend.reshape(len(blend), -1) if blend.ndim == 4 else blend
    if isinstance(dtype, str) or dtype is None:
        dtype = resolve_dtype(dtype, grad.dtype)
    update = newton_schulz(matrix, ns_steps, dtype)
    update *= max(1.0, grad.size(-2) / grad.size(-1)) ** 0.5
    return update


def newton_schulz(matrix: torch.Tensor, steps: int, dtype: torch.dtype) -> torch.Tensor:
    """Approximately U V^T for matrix = U S V^T (batched over leading axes), in ``dtype``: the
    authors' quintic iteration, whose singular values land near 1 (about 0.7..1.2), not at 1."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype)
    tall = matrix.size(-2) > matrix.size(-1)
    if tall:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + NS_EPS)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + (c * gram) @ gram) @ x
    return x.mT if tall else x


def aux_adamw(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[int],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
) -> None:
    """The AdamW Muon carries (the authors' ``adam_update``): one step, moments in place;
    ``steps`` are each tensor's step count after this step."""
    beta1, beta2 = betas
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.lerp_(grad.square(), 1.0 - beta2)
        first = exp_avg / (1.0 - beta1**step)
        second = exp_avg_sq / (1.0 - beta2**step)
        if weight_decay != 0.0:
            param.mul_(1.0 - lr * weight_decay)
        param.add_(first / (second.sqrt() + eps), alpha=-lr)


def muon_reference(model: nn.Module, **arguments: Any) -> torch.optim.Optimizer:
    """The authors' ``SingleDeviceMuonWithAuxAdam`` (``pip install muon-optimizer``) over the
    same split as ``muon_param_groups``, with Muon's arguments, for the bench and the tests.
    Their class fixes nesterov, 5 Newton-Schulz steps and bfloat16, so other values are refused.
    """
    from muon import SingleDeviceMuonWithAuxAdam

    settings = {**_constructor_defaults(), **arguments}
    fixed = {"nesterov": True, "ns_steps": 5, "ns_dtype": "bfloat16"}
    refused = sorted(set(arguments) - set(settings) - {"params"})
    settings["ns_dtype"] = dtype_name("ns_dtype", settings["ns_dtype"])
    refused += sorted(k for k, v in fixed.items() if settings[k] != v)
    if refused:
        raise ValueError(f"muon-optimizer's MuonWithAuxAdam has no counterpart of {refused}")
    hidden = [p for p in hidden_matrices(model) if p.requires_grad]
    if any(p.ndim == 4 for p in hidden) and not _steps_conv_weights(SingleDeviceMuonWithAuxAdam):
        raise ValueError(
            "the installed muon.py cannot step 4-D weights (PyPI's muon-optimizer 0.1.0 adds the "
            "flattened update to the 4-D weight); the repository's muon.py fixed it in c33a468"
        )
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [
        dict(
            params=hidden,
            use_muon=True,
            lr=settings["lr"],
            momentum=settings["momentum"],
            weight_decay=settings["weight_decay"],
        ),
        dict(
            params=rest,
            use_muon=False,
            lr=settings["adam_lr"],
            betas=(settings["adam_momentum"], _complement(settings["adam_lr_cov"])),
            eps=settings["adam_damping"],
            weight_decay=settings["adam_weight_decay"],
        ),
    ]
    return SingleDeviceMuonWithAuxAdam([g for g in groups if g["params"]])


def _constructor_defaults() -> dict[str, Any]:
    """Muon's constructor defaults, by argument."""
    parameters = inspect.signature(Muon).parameters
    return {n: p.default for n, p in parameters.items() if p.default is not p.empty}


def _steps_conv_weights(optimizer_class: type) -> bool:
    """Whether the installed authors' class can step a 4-D weight (a throwaway 2x1x2x2 one)."""
    weight = nn.Parameter(torch.zeros(2, 1, 2, 2))
    weight.grad = torch.ones_like(weight)
    try:
        optimizer_class([dict(params=[weight], use_muon=True)]).step()
    except RuntimeError:
        return False
    return True


SPECS = (
    OptimizerSpec(
        "muon",
        Muon,
        family="orthogonal",
        root_free=False,
        counterpart=None,
        paper_names={
            "lr": PaperName("lr"),
            "momentum": PaperName("momentum"),
            "weight_decay": PaperName("weight_decay"),
        },
        defaults={
            "lr": 0.02,
            "momentum": 0.95,
            "weight_decay": 0.0,
            "nesterov": True,
            "ns_steps": 5,
            "ns_dtype": "bfloat16",
            "adam_lr": 3.0e-4,
            "adam_momentum": 0.9,
            "adam_lr_cov": 0.05,
            "adam_damping": 1.0e-10,
            "adam_weight_decay": 0.0,
        },
        search={
            "lr": SearchRange(1e-3, 0.5),
            "momentum": SearchRange(0.1, 0.99),
            "weight_decay": SearchRange(1e-5, 0.5),
            "adam_lr": SearchRange(1e-5, 0.1),
        },
        dtype_arguments=("ns_dtype",),
        param_groups=muon_param_groups,
        bench={"lr": 0.02},
        reference=muon_reference,
        description="Muon (Jordan et al., 2024): Nesterov momentum orthogonalised by five "
        "Newton-Schulz steps on the hidden matrices, an AdamW on the rest (MuonWithAuxAdam)",
        notes="Defaults are the authors' (github.com/KellerJordan/Muon muon.py: lr 0.02, "
        "momentum 0.95, Nesterov, 5 Newton-Schulz steps in bfloat16, no weight decay; the AdamW "
        "half lr 3e-4, betas (0.9, 0.95), eps 1e-10); their README tunes lr and weight decay "
        "only. No paper ranges: the stage-1 space is wide around the authors' values (lr 0.02, "
        "0.05 in their NanoGPT example). Muon takes the weights of the hidden Linear and Conv "
        "layers; the Embedding modules (else the first Linear or Conv) and the last Linear go "
        "to the AdamW, as do biases, norms and position embeddings. ns_dtype float32 or "
        "float64 runs Newton-Schulz in that dtype.",
    ),
)
