"""The resolved run config of a list of train overrides, as ``train.py`` would compose it,
without running anything: for the study's scheduler and for commands the results print.

Hydra builds a defaults list for every compose, about half a second; a study plan composes
every run of the design. Only the group overrides (``optimizer=soap``) shape the defaults
list, so their composed config is kept once per process, and each run's value overrides
(``optimizer.lr=3e-3``, ``seed=1``) are applied to a copy by Hydra's own override step."""

from __future__ import annotations

import copy
import functools

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from rootfree.config_paths import config_dir

try:  # Hydra's step that applies value overrides to a composed config (1.1 to 1.3)
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    _apply_values = ConfigLoaderImpl._apply_overrides_to_config
except (ImportError, AttributeError):  # another Hydra: compose every list whole
    _apply_values = None


def compose_overrides(overrides: list[str]) -> dict:
    """The run config of ``overrides``: the composed config of its group overrides (cached),
    then its value overrides on a copy; the same as composing the whole list (a test checks
    this on every shape of run in the study's designs)."""
    return copy.deepcopy(_split_composed(tuple(overrides)))


@functools.cache
def _split_composed(overrides: tuple[str, ...]) -> dict:
    groups, values = split_overrides(list(overrides))
    if _apply_values is None or not values:
        return _composed(overrides)
    config = copy.deepcopy(_base(tuple(groups)))
    _apply_values([_parsed(text) for text in values], config)
    return OmegaConf.to_container(config, resolve=True)


def compose_whole(overrides: list[str]) -> dict:
    """The run config of ``overrides`` composed by Hydra in one call, once per process."""
    return copy.deepcopy(_composed(tuple(overrides)))


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(overrides that choose configs, delete keys or touch Hydra's node; plain values)."""
    groups, values = [], []
    for text in overrides:
        parsed = _parsed(text)
        key = parsed.key_or_group
        plain = parsed.package is None and not (
            parsed.is_delete() or key.startswith("hydra") or _is_group(key)
        )
        (values if plain else groups).append(text)
    return groups, values


@functools.cache
def _parsed(text: str) -> Override:
    """One override parsed by Hydra's grammar (slow; a study repeats the same lines)."""
    (parsed,) = OverridesParser.create().parse_overrides([text])
    return parsed


@functools.cache
def _is_group(key: str) -> bool:
    with initialize_config_dir(str(config_dir("conf")), version_base="1.3"):
        return GlobalHydra.instance().config_loader().repository.group_exists(key)


@functools.cache
def _base(groups: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(str(config_dir("conf")), version_base="1.3"):
        return compose("config", overrides=list(groups))


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    with initialize_config_dir(str(config_dir("conf")), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)
