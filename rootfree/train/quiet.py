"""Third-party loggers that talk at INFO level in every sweep (alembic's "setup plugin" lines and
Optuna's coloured "study created" line, both from the Optuna sweeper's imports), held to warnings.

``quiet_third_party`` runs when the app is imported, before Hydra's plugin scan imports alembic;
Optuna sets its own level when imported, so the callback imports it first and then quiets it.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

QUIET = ("alembic", "optuna")


def quiet_third_party() -> None:
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


class QuietThirdParty(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_third_party()
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
            import optuna  # the sweeper imports it next; its import would reset the level

            optuna.logging.set_verbosity(logging.WARNING)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_third_party()
