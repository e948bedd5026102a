"""``rootfree-train``: the Hydra app, with rootfree's configs found wherever it is installed.
Runs go under the current directory (``paths.runs``)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from rootfree.config_paths import config_dir
from rootfree.train.app import run  # also registers the ${run_hash:} resolver
from rootfree.train.groups import check_group_choices
from rootfree.train.quiet import quiet_third_party

quiet_third_party()

CONF = config_dir("conf")
if CONF is None:
    raise RuntimeError("rootfree's configs are missing: reinstall rootfree[train]")


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def _app(cfg: DictConfig) -> float:
    return run(cfg)


def main() -> None:
    """Check the command line's group choices, then hand it to Hydra."""
    problem = check_group_choices(sys.argv[1:])
    if problem is not None:
        raise SystemExit(f"rootfree: {problem}")
    _app()


if __name__ == "__main__":  # `python -m rootfree.train.cli`, as the study driver launches runs
    main()
