"""The optimizer registry: names, what each method is, and the paper's names for its knobs.

``create_optimizer("rootfree_adam", model, lr=1e-3, batch_size=128)`` builds an optimizer;
``to_paper_hparams`` / ``from_paper_hparams`` translate between an optimizer's own arguments
and the paper's shared vocabulary (lr, momentum, lr_cov = 1 - beta2, damping = eps,
weight_decay), so one search space and one results table serve every method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rootfree.optim.rootfree_adam import RootFreeAdam
from rootfree.optim.rootfree_rmsprop import RootFreeRMSProp
from rootfree.optim.rootfree_shampoo import RootFreeShampoo
from rootfree.optim.shampoo import Shampoo

PAPER_HPARAMS = ("lr", "momentum", "lr_cov", "damping", "weight_decay", "riemannian_momentum")


@dataclass(frozen=True)
class PaperName:
    """Where one of the paper's hyperparameters lives among an optimizer's arguments."""

    argument: str
    index: int | None = None  # position inside a tuple argument such as betas
    complement: bool = False  # the paper's value is 1 - the argument's


def _complement(value: float) -> float:
    """1 - value without binary round-off noise (1 - 0.999 reads 0.001, not 0.0010000000000000009)."""
    return float(f"{1.0 - value:.12g}")


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    factory: Callable[..., torch.optim.Optimizer]
    family: str  # "sgd", "diagonal" or "kronecker"
    root_free: bool
    counterpart: str | None  # the root-based method a root-free one is compared with
    paper_names: Mapping[str, PaperName] = field(default_factory=dict)
    takes_batch_size: bool = False
    description: str = ""


_COMMON = {"lr": PaperName("lr"), "weight_decay": PaperName("weight_decay")}
_ADAM_LIKE = {
    **_COMMON,
    "momentum": PaperName("betas", index=0),
    "lr_cov": PaperName("betas", index=1, complement=True),
}

OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec(
            "sgd",
            torch.optim.SGD,
            family="sgd",
            root_free=False,
            counterpart=None,
            paper_names={**_COMMON, "momentum": PaperName("momentum")},
            description="torch SGD with heavy-ball momentum and coupled weight decay",
        ),
        OptimizerSpec(
            "adamw",
            torch.optim.AdamW,
            family="diagonal",
            root_free=False,
            counterpart=None,
            paper_names={**_ADAM_LIKE, "damping": PaperName("eps")},
            description="torch AdamW",
        ),
        OptimizerSpec(
            "rmsprop",
            torch.optim.RMSprop,
            family="diagonal",
            root_free=False,
            counterpart=None,
            paper_names={
                **_COMMON,
                "momentum": PaperName("momentum"),
                "lr_cov": PaperName("alpha", complement=True),
                "damping": PaperName("eps"),
            },
            description="torch RMSprop",
        ),
        OptimizerSpec(
            "shampoo",
            Shampoo,
            family="kronecker",
            root_free=False,
            counterpart=None,
            paper_names={**_ADAM_LIKE, "damping": PaperName("eps")},
            description="Shampoo with eigendecomposition inverse roots (the paper's baseline)",
        ),
        OptimizerSpec(
            "rootfree_adam",
            RootFreeAdam,
            family="diagonal",
            root_free=True,
            counterpart="adamw",
            paper_names={**_ADAM_LIKE, "damping": PaperName("damping")},
            takes_batch_size=True,
            description="root-free AdamW (RF-AdamW)",
        ),
        OptimizerSpec(
            "rootfree_rmsprop",
            RootFreeRMSProp,
            family="diagonal",
            root_free=True,
            counterpart="rmsprop",
            paper_names={
                **_COMMON,
                "momentum": PaperName("momentum"),
                "lr_cov": PaperName("lr_cov"),
                "damping": PaperName("damping"),
            },
            takes_batch_size=True,
            description="root-free RMSProp (RF-RMSProp)",
        ),
        OptimizerSpec(
            "rootfree_shampoo",
            RootFreeShampoo,
            family="kronecker",
            root_free=True,
            counterpart="shampoo",
            paper_names={
                **_COMMON,
                "momentum": PaperName("momentum"),
                "lr_cov": PaperName("lr_cov"),
                "damping": PaperName("damping"),
                "riemannian_momentum": PaperName("riemannian_momentum"),
            },
            takes_batch_size=True,
            description="inverse- and root-free Kronecker Shampoo (IF-Shampoo / SIRFShampoo)",
        ),
    ]
}


def get_optimizer_spec(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def _defaults(spec: OptimizerSpec) -> dict[str, Any]:
    parameters = inspect.signature(spec.factory).parameters
    return {
        name: p.default
        for name, p in parameters.items()
        if name != "params" and p.default is not inspect.Parameter.empty
    }


def to_paper_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, float]:
    """The paper's view of an optimizer's arguments (defaults filled in for unset ones)."""
    spec = get_optimizer_spec(name)
    arguments = {**_defaults(spec), **hparams}
    paper = {}
    for paper_name, where in spec.paper_names.items():
        value = arguments[where.argument]
        if where.index is not None:
            value = value[where.index]
        paper[paper_name] = _complement(value) if where.complement else value
    return paper


def from_paper_hparams(name: str, **paper: float) -> dict[str, Any]:
    """Arguments for ``name`` from values in the paper's vocabulary (tuples filled from defaults)."""
    spec = get_optimizer_spec(name)
    unknown = sorted(set(paper) - set(spec.paper_names))
    if unknown:
        raise ValueError(
            f"Optimizer {name!r} has no paper hyperparameter {unknown}; "
            f"valid: {sorted(spec.paper_names)}"
        )
    defaults = _defaults(spec)
    arguments: dict[str, Any] = {}
    for paper_name, value in paper.items():
        where = spec.paper_names[paper_name]
        value = _complement(value) if where.complement else value
        if where.index is None:
            arguments[where.argument] = value
        else:
            current = list(arguments.get(where.argument, defaults[where.argument]))
            current[where.index] = value
            arguments[where.argument] = tuple(current)
    return arguments


def optimizer_arguments(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments from settings in the paper's vocabulary plus method-specific ones.

    Configs and search spaces name every method's knobs alike (lr, momentum, lr_cov, damping,
    weight_decay); keys outside that vocabulary (update_every, state_dtype, ...) pass through.
    """
    spec = get_optimizer_spec(name)
    paper = {k: v for k, v in settings.items() if k in spec.paper_names}
    own = {k: v for k, v in settings.items() if k not in spec.paper_names}
    arguments = from_paper_hparams(name, **paper)
    clash = sorted(set(arguments) & set(own))
    if clash:
        raise ValueError(
            f"Optimizer {name!r}: {clash} given both directly and in the paper's names"
        )
    return {**own, **arguments}


def weight_decay_param_groups(
    model: nn.Module, weight_decay: float, no_decay_names: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Two groups: tensors of ndim <= 1 (biases, norm scales) and named exceptions get no decay.

    A model's ``no_weight_decay()`` names (timm's ViTs list position embeddings) are honoured.
    """
    skip = set(no_decay_names)
    if hasattr(model, "no_weight_decay"):
        skip |= set(model.no_weight_decay())
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name in skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_cov_param_groups(
    model: nn.Module, groups: list[dict[str, Any]], scales: Mapping[str, float], lr_cov: float
) -> list[dict[str, Any]]:
    """Split ``groups`` so that parameters whose name contains a key of ``scales`` get
    ``lr_cov * scales[key]`` (the first key found). The authors' IF-Shampoo ran the ViTs with
    0.25 for names containing ``norm``, ``proj`` or ``bias``."""
    names = {id(p): n for n, p in model.named_parameters()}

    def scale(param: torch.Tensor) -> float:
        return next((f for key, f in scales.items() if key in names[id(param)]), 1.0)

    split = []
    for group in groups:
        by_scale: dict[float, list[torch.Tensor]] = {}
        for param in group["params"]:
            by_scale.setdefault(scale(param), []).append(param)
        for factor, params in by_scale.items():
            extra = {} if factor == 1.0 else {"lr_cov": lr_cov * factor}
            split.append({**group, "params": params, **extra})
    return split


def create_optimizer(
    name: str,
    model_or_params: nn.Module | Iterable[Any],
    *,
    batch_size: int | None = None,
    decay_1d: bool = True,
    lr_cov_scales: Mapping[str, float] | None = None,
    **hparams: Any,
) -> torch.optim.Optimizer:
    """Build a registered optimizer.

    Args:
        name: a key of ``OPTIMIZERS``.
        model_or_params: a model, or params / param groups as torch optimizers take them.
        batch_size: B for the root-free methods (ignored by the others, so a trainer can pass
            it to every method alike).
        decay_1d: if False (and a model is given), biases and norm parameters get no weight decay.
        lr_cov_scales: {name substring: factor} scaling lr_cov per parameter (a model is needed).
        **hparams: the optimizer's own arguments.
    """
    spec = get_optimizer_spec(name)
    accepted = set(inspect.signature(spec.factory).parameters) - {"params"}
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown hyperparameter(s) {unknown} for optimizer {name!r}; valid: {sorted(accepted)}"
        )
    if spec.takes_batch_size:
        if batch_size is None:
            raise ValueError(f"Optimizer {name!r} needs batch_size (B, the loss's averaging size)")
        hparams["batch_size"] = batch_size
    if lr_cov_scales and ("lr_cov" not in accepted or not isinstance(model_or_params, nn.Module)):
        raise ValueError(
            f"lr_cov_scales needs a model and an optimizer with lr_cov; {name!r} given"
        )
    if isinstance(model_or_params, nn.Module):
        if decay_1d:
            params: Any = [{"params": [p for p in model_or_params.parameters() if p.requires_grad]}]
        else:
            weight_decay = hparams.get("weight_decay", _defaults(spec).get("weight_decay", 0.0))
            params = weight_decay_param_groups(model_or_params, weight_decay)
        if lr_cov_scales:
            lr_cov = hparams.get("lr_cov", _defaults(spec).get("lr_cov"))
            params = lr_cov_param_groups(model_or_params, params, lr_cov_scales, lr_cov)
    else:
        params = model_or_params
    return spec.factory(params, **hparams)
