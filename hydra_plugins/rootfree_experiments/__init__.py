"""Puts the repository's experiments/ folder (the paper's comparisons) on Hydra's search path."""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


class RootfreeExperimentsSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="rootfree-experiments", path=f"file://{EXPERIMENTS}")
