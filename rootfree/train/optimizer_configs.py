"""Every registered optimizer's Hydra configs, made from its spec: ``optimizer/<name>`` (its
defaults) and ``search/random/<name>`` (its stage-1 space). A YAML file of the same name in a
config folder replaces the spec's node (Hydra reads files before its ConfigStore)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from rootfree.config_paths import config_dirs
from rootfree.optim import OPTIMIZERS, OptimizerSpec

SEARCH_GROUP = "search/random"


def _has_file(group: str, name: str) -> bool:
    return any((root / group / f"{name}.yaml").exists() for root in config_dirs())


def optimizer_node(spec: OptimizerSpec) -> dict:
    """The ``optimizer`` config of ``spec``: its name and defaults."""
    return {"name": spec.name, **spec.defaults}


def search_node(spec: OptimizerSpec) -> dict:
    """The stage-1 space of ``spec`` in the Optuna sweeper's syntax, keys in spec order."""
    return {f"optimizer.{key}": bounds.sweeper() for key, bounds in spec.search.items()}


def store_optimizer_configs() -> None:
    """Put each spec's nodes in Hydra's ConfigStore, unless a YAML file stands in for them."""
    store = ConfigStore.instance()
    for spec in OPTIMIZERS.values():
        if not _has_file("optimizer", spec.name):
            store.store(group="optimizer", name=spec.name, node=optimizer_node(spec))
        if spec.search and not _has_file(SEARCH_GROUP, spec.name):
            store.store(group=SEARCH_GROUP, name=spec.name, node=search_node(spec))
