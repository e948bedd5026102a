"""An optimizer's spec: the one home of what rootfree knows about a method (its factory, where
the paper's hyperparameters sit among its arguments, its config defaults, its stage-1 search
space, its family and root-based counterpart, its parameter-group policy, its bench settings, which
of its decays sum undampened).

A method module defines ``SPECS = (OptimizerSpec(...), ...)``; a plug-in package points an entry
point of the group ``rootfree.optimizers`` at one spec (docs/extending.md). Everything else
(configs, search spaces, tables, the study, the bench) reads the registry built from them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

# The closed set of families a spec may name: what kind of preconditioner the method keeps.
FAMILIES = {
    "sgd": "no preconditioner: (momentum) SGD",
    "diagonal": "one scale per coordinate: Adam, RMSProp and their root-free forms",
    "kronecker": "Kronecker factors per matrix: Shampoo, its root-free forms, SINGD, SOAP, PSGD",
    "orthogonal": "no curvature estimate; the matrix update is orthogonalised: Muon",
    "sign": "the sign of a momentum mix (sign descent)",
}

PAPER_HPARAMS = ("lr", "momentum", "lr_cov", "damping", "weight_decay", "riemannian_momentum")
PAPER_DECAYS = ("momentum", "riemannian_momentum")  # EMA coefficients, in [0, 1)
PAPER_RATES = ("lr", "lr_cov")  # step sizes: of the parameters, of the preconditioner
# Config keys the trainer reads beside the optimizer's own (rootfree.train.build.build_optimizer).
TRAINER_KEYS = ("name", "batch_size", "lr_cov_scales", "param_overrides")


@dataclass(frozen=True)
class PaperName:
    """Where one of the paper's hyperparameters lives among an optimizer's arguments."""

    argument: str
    index: int | None = None  # position inside a tuple argument such as betas
    complement: bool = False  # the paper's value is 1 - the argument's


@dataclass(frozen=True)
class SearchRange:
    """One key of a stage-1 search space: sampled in [low, high], log-uniformly if ``log``."""

    low: float
    high: float
    log: bool = True

    def sweeper(self) -> str:
        """The range in the Optuna sweeper's syntax (``tag(log, interval(1e-4, 1.0))``)."""
        interval = f"interval({self.low!r}, {self.high!r})"
        return f"tag(log, {interval})" if self.log else interval


# Where an Adam-style method keeps the paper's names: momentum = betas[0], lr_cov = 1 - betas[1]
# (damping differs: Adam's eps, or the root-free methods' damping).
ADAM_PAPER_NAMES = {
    "lr": PaperName("lr"),
    "weight_decay": PaperName("weight_decay"),
    "momentum": PaperName("betas", index=0),
    "lr_cov": PaperName("betas", index=1, complement=True),
}

# A parameter-group policy: (model, groups built so far, the optimizer's settings) -> groups.
GroupPolicy = Callable[[torch.nn.Module, list[dict[str, Any]], Mapping[str, Any]], list[dict]]


@dataclass(frozen=True)
class OptimizerSpec:
    """What rootfree needs to train, search, tabulate and benchmark one method.

    ``defaults`` are its config's values (paper names where it has them, its own arguments
    otherwise); ``search`` its stage-1 space in the same keys; ``dtype_arguments`` the arguments
    that take a dtype's name ("bfloat16"); ``param_groups`` splits a model's parameters the way
    the method is run (Muon: matrices only, the rest to its AdamW); ``bench`` the settings the
    bench runs it with, beside ``reference``, a factory of its authors' installable optimizer.
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    family: str
    root_free: bool = False
    counterpart: str | None = None  # the root-based method a root-free one is compared with
    # decays that sum undampened (b <- decay b + u), each mapped to the rate whose effective
    # step, rate / (1 - decay), it scales: a control that moves the decay holds that ratio
    heavy_ball: Mapping[str, str] = field(default_factory=dict)
    # its curvature EMA (lr_cov) is bias-corrected, so it needs no steps to forget its start
    bias_corrected: bool = False
    paper_names: Mapping[str, PaperName] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, SearchRange] = field(default_factory=dict)
    takes_batch_size: bool = False
    dtype_arguments: tuple[str, ...] = ()
    param_groups: GroupPolicy | None = None
    bench: Mapping[str, Any] = field(default_factory=dict)
    reference: Callable[..., torch.optim.Optimizer] | None = None
    # its curvature comes from hooks on the forward and backward passes (KFAC-like): a step
    # without a backward before it measures nothing, so the bench times backward and step
    curvature_from_backward: bool = False
    description: str = ""
    notes: str = ""  # where the defaults and ranges come from, for docs/hyperparameters.md
    provider: str = "rootfree"  # the distribution that registered it


def argument_defaults(spec: OptimizerSpec) -> dict[str, Any]:
    """The factory's own defaults, by argument."""
    parameters = inspect.signature(spec.factory).parameters
    return {
        name: p.default
        for name, p in parameters.items()
        if name != "params" and p.default is not inspect.Parameter.empty
    }


def accepted_arguments(spec: OptimizerSpec) -> set[str]:
    return set(inspect.signature(spec.factory).parameters) - {"params"}


def spec_problems(spec: OptimizerSpec, taken: Mapping[str, OptimizerSpec]) -> list[str]:
    """Why ``spec`` cannot join a registry holding ``taken`` (empty: it can)."""
    if not isinstance(spec, OptimizerSpec):
        return [f"expected a rootfree.optim.OptimizerSpec, got {type(spec).__name__}"]
    problems = []
    if not spec.name.isidentifier():
        problems.append(f"name {spec.name!r} is not an identifier")
    if spec.name in taken:
        problems.append(f"name {spec.name!r} is already taken by {taken[spec.name].provider}")
    if spec.family not in FAMILIES:
        problems.append(f"family {spec.family!r} is not one of {sorted(FAMILIES)}")
    if not callable(spec.factory):
        problems.append("factory is not callable")
        return problems
    accepted = accepted_arguments(spec)
    for paper, where in spec.paper_names.items():
        if paper not in PAPER_HPARAMS or where.argument not in accepted:
            problems.append(f"paper name {paper!r} -> {where.argument!r} is not an argument")
    keys = set(spec.paper_names) | (accepted - {w.argument for w in spec.paper_names.values()})
    keys |= set(TRAINER_KEYS) - {"name"}
    for what, names in (("defaults", spec.defaults), ("search", spec.search)):
        unknown = sorted(set(names) - keys)
        if unknown:
            problems.append(f"{what} {unknown} are neither paper names nor arguments")
    for decay, rate in spec.heavy_ball.items():
        if decay not in PAPER_DECAYS or rate not in PAPER_RATES:
            problems.append(f"heavy_ball {decay!r} -> {rate!r} is not a decay -> a rate")
        elif not {decay, rate} <= set(spec.paper_names):
            problems.append(f"heavy_ball {decay!r} -> {rate!r} needs both as paper names")
    if spec.counterpart is not None and spec.counterpart not in taken:
        problems.append(f"counterpart {spec.counterpart!r} is not registered")
    return problems
