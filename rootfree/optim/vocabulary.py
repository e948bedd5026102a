"""The paper's vocabulary: every method's knobs named alike (lr, momentum, lr_cov = 1 - beta2,
damping = eps, weight_decay, riemannian_momentum), so one search space and one results table
serve every method. ``to_paper_hparams`` / ``from_paper_hparams`` translate both ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rootfree.optim.registry import OPTIMIZERS, get_optimizer_spec
from rootfree.optim.spec import TRAINER_KEYS, argument_defaults


def _complement(value: float) -> float:
    """1 - value without binary round-off noise (1 - 0.999 reads 0.001, not 0.0010000000000000009)."""
    return float(f"{1.0 - value:.12g}")


def to_paper_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, float]:
    """The paper's view of an optimizer's arguments (defaults filled in for unset ones)."""
    spec = get_optimizer_spec(name)
    arguments = {**argument_defaults(spec), **hparams}
    paper = {}
    for paper_name, where in spec.paper_names.items():
        value = arguments[where.argument]
        if where.index is not None:
            value = value[where.index]
        paper[paper_name] = _complement(value) if where.complement else value
    return paper


def searched_arguments(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments ``name`` searches that have no paper name (Muon's adam_lr), defaults
    filled in, so every axis of a search can be read beside the paper's."""
    spec = get_optimizer_spec(name)
    arguments = {**argument_defaults(spec), **hparams}
    return {key: arguments[key] for key in spec.search if key not in spec.paper_names}


def searched_only() -> list[str]:
    """Every registered optimizer's searched arguments that have no paper name, sorted."""
    return sorted({k for s in OPTIMIZERS.values() for k in s.search if k not in s.paper_names})


def from_paper_hparams(name: str, **paper: float) -> dict[str, Any]:
    """Arguments for ``name`` from values in the paper's vocabulary (tuples filled from defaults)."""
    spec = get_optimizer_spec(name)
    unknown = sorted(set(paper) - set(spec.paper_names))
    if unknown:
        raise ValueError(
            f"Optimizer {name!r} has no paper hyperparameter {unknown}; "
            f"valid: {sorted(spec.paper_names)}"
        )
    defaults = argument_defaults(spec)
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


def config_keys(name: str) -> list[str]:
    """The keys an ``optimizer`` config of ``name`` may set: its paper names, its constructor's
    arguments that no paper name stands for (update_every, state_dtype, ...), and the trainer's."""
    spec = get_optimizer_spec(name)
    covered = {where.argument for where in spec.paper_names.values()}
    own = set(argument_defaults(spec)) - covered
    return sorted({*spec.paper_names, *own, *TRAINER_KEYS})
