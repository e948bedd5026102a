"""Plug-in optimizers: an entry point of ``rootfree.optimizers`` that loads to a spec joins the
registry; a broken one gets one line naming its distribution, and every other method still works."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from rootfree.optim import registry
from rootfree.optim.spec import OptimizerSpec, PaperName, SearchRange


def spec(name: str = "plain_sgd", **changes) -> OptimizerSpec:
    base = OptimizerSpec(
        name,
        torch.optim.SGD,
        family="sgd",
        paper_names={"lr": PaperName("lr")},
        defaults={"lr": 0.1},
        search={"lr": SearchRange(1e-3, 1.0)},
    )
    return dataclasses.replace(base, **changes)


class EntryPoint:
    """What importlib.metadata gives: a name, the distribution, and load()."""

    def __init__(self, name: str, dist: str, load) -> None:
        self.name, self.dist, self._load = name, SimpleNamespace(name=dist), load

    def load(self):
        return self._load()


def broken_import():
    raise ModuleNotFoundError("No module named 'scipy_extra'")


@pytest.fixture
def registry_copy(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(registry, "OPTIMIZERS", dict(registry.OPTIMIZERS))
    return registry.OPTIMIZERS


def test_a_plugin_spec_joins_the_registry_named_by_its_distribution(registry_copy):
    problems = registry.load_plugins([EntryPoint("plain_sgd", "rootfree-plain", spec)])
    assert problems == []
    assert registry_copy["plain_sgd"].provider == "rootfree-plain"
    model = torch.nn.Linear(3, 2)
    built = registry.create_optimizer("plain_sgd", model, lr=0.5)
    assert isinstance(built, torch.optim.SGD) and built.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    "load,message",
    [
        (broken_import, "ModuleNotFoundError: No module named 'scipy_extra'"),
        (lambda: spec("sgd"), "name 'sgd' is already taken by rootfree"),
        (lambda: spec(family="newton"), "family 'newton' is not one of"),
        (lambda: spec(defaults={"lrr": 1.0}), "defaults ['lrr'] are neither paper names"),
        (lambda: spec(paper_names={"lr": PaperName("step")}), "paper name 'lr' -> 'step'"),
        (lambda: "not a spec", "expected a rootfree.optim.OptimizerSpec, got str"),
        (lambda: spec(root_free=True, counterpart="sgdd"), "counterpart 'sgdd' is not registered"),
        (lambda: spec(heavy_ball={"lr": "momentum"}), "heavy_ball 'lr' -> 'momentum' is not a"),
        (lambda: spec(heavy_ball={"momentum": "lr"}), "'momentum' -> 'lr' needs both as paper"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_its_distribution(registry_copy, load, message):
    before = dict(registry_copy)
    good = EntryPoint("plain_sgd", "rootfree-plain", spec)
    (problem,) = registry.load_plugins([EntryPoint("bad", "rootfree-bad", load), good])
    assert problem.startswith("rootfree: plug-in optimizer 'bad' from rootfree-bad not loaded: ")
    assert message in problem and "\n" not in problem
    assert set(registry_copy) == {*before, "plain_sgd"}, "the good plug-in and the rest still load"
    assert registry_copy["sgd"] is before["sgd"]


def test_the_specs_configs_are_what_the_app_composes():
    from rootfree.train.optimizer_configs import optimizer_node, search_node

    rootfree_adam = registry.OPTIMIZERS["rootfree_adam"]
    assert optimizer_node(rootfree_adam)["lr_cov"] == rootfree_adam.defaults["lr_cov"]
    assert search_node(rootfree_adam)["optimizer.lr"] == "tag(log, interval(0.0001, 1.0))"
    shampoo = search_node(registry.OPTIMIZERS["rootfree_shampoo"])
    assert shampoo["optimizer.riemannian_momentum"] == "interval(0.0, 0.9)"
