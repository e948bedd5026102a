"""Train one configuration, or sweep many with -m: `python train.py optimizer=rootfree_adam`."""

import hydra
from omegaconf import DictConfig

from rootfree.train.app import run  # also registers the ${run_hash:} resolver


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run(cfg)


if __name__ == "__main__":
    main()
