"""Puts rootfree's experiments/ folder (the paper's comparisons) on the search path of rootfree's
own Hydra app, and each registered optimizer's configs (made from its spec) in Hydra's
ConfigStore, and does neither for another app: it acts only when rootfree's conf/ is the primary
config, so whatever composes rootfree's configs (the app, the study, a test) finds them."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from rootfree.config_paths import config_dir


def _is_rootfree_app(search_path: ConfigSearchPath) -> bool:
    conf = config_dir("conf")
    return conf is not None and any(
        element.path in (str(conf), f"file://{conf}") for element in search_path.get_path()
    )


class RootfreeExperimentsSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        experiments = config_dir("experiments")
        if experiments is not None and _is_rootfree_app(search_path):
            search_path.append(provider="rootfree-experiments", path=f"file://{experiments}")
        if _is_rootfree_app(search_path):
            from rootfree.train.optimizer_configs import store_optimizer_configs  # imports torch

            store_optimizer_configs()
