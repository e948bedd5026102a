"""The resolved run config of a list of train overrides, as ``train.py`` would compose it,
without running anything: for the study's scheduler and for commands the results print."""

from __future__ import annotations

import copy
import functools

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.config_paths import config_dir


def compose_overrides(overrides: list[str]) -> dict:
    """The run config of ``overrides``, composed once per process (the study's scheduler asks
    again for every run each time a job ends, and composing dominated its CPU)."""
    return copy.deepcopy(_composed(tuple(overrides)))


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    with initialize_config_dir(str(config_dir("conf")), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)
