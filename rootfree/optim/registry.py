"""The optimizer registry: what each method is (its spec, where its knobs sit in the paper's
vocabulary) and the factory, ``create_optimizer("rootfree_adam", model, lr=1e-3, batch_size=128)``.
The vocabulary's translations are in ``vocabulary``, the parameter groups in ``param_groups``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rootfree.optim.param_groups import (
    lr_cov_param_groups,
    override_param_groups,
    weight_decay_param_groups,
)
from rootfree.optim.rootfree_adam import RootFreeAdam
from rootfree.optim.rootfree_rmsprop import RootFreeRMSProp
from rootfree.optim.rootfree_shampoo import RootFreeShampoo
from rootfree.optim.shampoo import Shampoo


@dataclass(frozen=True)
class PaperName:
    """Where one of the paper's hyperparameters lives among an optimizer's arguments."""

    argument: str
    index: int | None = None  # position inside a tuple argument such as betas
    complement: bool = False  # the paper's value is 1 - the argument's


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


def argument_defaults(spec: OptimizerSpec) -> dict[str, Any]:
    parameters = inspect.signature(spec.factory).parameters
    return {
        name: p.default
        for name, p in parameters.items()
        if name != "params" and p.default is not inspect.Parameter.empty
    }


def create_optimizer(
    name: str,
    model_or_params: nn.Module | Iterable[Any],
    *,
    batch_size: int | None = None,
    decay_1d: bool = True,
    lr_cov_scales: Mapping[str, float] | None = None,
    param_overrides: Mapping[str, Mapping[str, Any]] | None = None,
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
        param_overrides: {name pattern: {argument: value}}: other settings for the parameters
            whose name matches (``fnmatch``; the first pattern that matches; a model is needed).
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
    _check_overrides(name, accepted, param_overrides, model_or_params)
    if isinstance(model_or_params, nn.Module):
        if decay_1d:
            params: Any = [{"params": [p for p in model_or_params.parameters() if p.requires_grad]}]
        else:
            weight_decay = hparams.get(
                "weight_decay", argument_defaults(spec).get("weight_decay", 0.0)
            )
            params = weight_decay_param_groups(model_or_params, weight_decay)
        if lr_cov_scales:
            lr_cov = hparams.get("lr_cov", argument_defaults(spec).get("lr_cov"))
            params = lr_cov_param_groups(model_or_params, params, lr_cov_scales, lr_cov)
        if param_overrides:
            params = override_param_groups(model_or_params, params, param_overrides)
    else:
        params = model_or_params
    return spec.factory(params, **hparams)


def _check_overrides(
    name: str, accepted: set[str], overrides: Mapping[str, Any] | None, target: object
) -> None:
    """A one-line error for param_overrides that cannot apply, before any group is built."""
    if not overrides:
        return
    if not isinstance(target, nn.Module):
        raise ValueError(f"param_overrides needs a model to match names in; {name!r} got params")
    for pattern, settings in overrides.items():
        if not isinstance(settings, Mapping) or not set(settings) <= accepted:
            raise ValueError(
                f"Invalid param_overrides[{pattern!r}]: {settings!r}; give {{argument: value}} "
                f"with arguments of {name!r}: {sorted(accepted)}"
            )
