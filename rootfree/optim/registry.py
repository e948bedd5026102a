"""The optimizer registry: every method's spec, from rootfree's own method modules (each defines
``SPECS``) and from plug-in packages (entry points of the group ``rootfree.optimizers``), and
the factory ``create_optimizer("rootfree_adam", model, lr=1e-3, batch_size=128)``.
The vocabulary's translations are in ``vocabulary``, the parameter groups in ``param_groups``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import torch
from torch import nn

from rootfree.optim.param_groups import (
    lr_cov_param_groups,
    override_param_groups,
    weight_decay_param_groups,
)
from rootfree.optim.spec import (
    FAMILIES,
    OptimizerSpec,
    accepted_arguments,
    argument_defaults,
    spec_problems,
)

ENTRY_POINTS = "rootfree.optimizers"
OPTIMIZERS: dict[str, OptimizerSpec] = {}
PLUGIN_PROBLEMS: list[str] = []  # one line per plug-in that could not be registered


def register_optimizer(spec: OptimizerSpec) -> OptimizerSpec:
    """Add ``spec`` to the registry, or raise a one-line ValueError saying why it cannot join."""
    problems = spec_problems(spec, OPTIMIZERS)
    if problems:
        name = getattr(spec, "name", "?")
        raise ValueError(f"optimizer spec {name!r}: {'; '.join(problems)}")
    OPTIMIZERS[spec.name] = spec
    return spec


def _order(spec: OptimizerSpec) -> tuple:
    """Root-based before root-free, then by family, then by name; plug-ins after rootfree's."""
    return (
        spec.provider != "rootfree",
        spec.root_free,
        list(FAMILIES).index(spec.family),
        spec.name,
    )


def _in_tree_specs() -> list[OptimizerSpec]:
    """The ``SPECS`` of every module of rootfree.optim (a new method is one module)."""
    package = importlib.import_module("rootfree.optim")
    specs = []
    for module in pkgutil.iter_modules(package.__path__):
        specs.extend(
            getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "SPECS", ())
        )
    return specs


def load_plugins(entry_points: Iterable[metadata.EntryPoint] | None = None) -> list[str]:
    """Register the spec each entry point of ``rootfree.optimizers`` loads to; return one line
    per plug-in that fails (import error, taken name, invalid spec), naming its distribution.
    A broken plug-in never stops the others or rootfree's own methods."""
    problems = []
    for point in (
        metadata.entry_points(group=ENTRY_POINTS) if entry_points is None else entry_points
    ):
        provider = point.dist.name if point.dist is not None else "an unknown distribution"
        try:
            spec = point.load()
            if isinstance(spec, OptimizerSpec):
                spec = _provided_by(spec, provider)
            register_optimizer(spec)
        except Exception as error:  # a plug-in's own bug must not stop rootfree
            problems.append(
                f"rootfree: plug-in optimizer {point.name!r} from {provider} not loaded: "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )
    return problems


def _provided_by(spec: OptimizerSpec, provider: str) -> OptimizerSpec:
    return dataclasses.replace(spec, provider=provider)


def build_registry() -> None:
    """rootfree's methods, then the plug-ins'; run once, by the package's __init__ after it has
    bound every name a plug-in may import from it."""
    specs = sorted(_in_tree_specs(), key=_order)
    for spec in specs:
        register_optimizer(spec)
    PLUGIN_PROBLEMS.extend(load_plugins())
    for line in PLUGIN_PROBLEMS:
        print(line, file=sys.stderr)


def get_optimizer_spec(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name]


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
    accepted = accepted_arguments(spec)
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
        params = _model_groups(spec, model_or_params, decay_1d, lr_cov_scales, hparams)
        if param_overrides:
            params = override_param_groups(model_or_params, params, param_overrides)
    else:
        params = model_or_params
    return spec.factory(params, **hparams)


def _model_groups(
    spec: OptimizerSpec,
    model: nn.Module,
    decay_1d: bool,
    lr_cov_scales: Mapping[str, float] | None,
    hparams: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """A model's parameter groups: weight decay's, then lr_cov's, then the method's own policy."""
    defaults = argument_defaults(spec)
    if decay_1d:
        params: list[dict[str, Any]] = [
            {"params": [p for p in model.parameters() if p.requires_grad]}
        ]
    else:
        weight_decay = hparams.get("weight_decay", defaults.get("weight_decay", 0.0))
        params = weight_decay_param_groups(model, weight_decay)
    if lr_cov_scales:
        lr_cov = hparams.get("lr_cov", defaults.get("lr_cov"))
        params = lr_cov_param_groups(model, params, lr_cov_scales, lr_cov)
    if spec.param_groups is not None:
        params = spec.param_groups(model, params, {**defaults, **hparams})
    return params


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
