"""Train one configuration, or sweep many with -m: `python train.py optimizer=rootfree_adam`."""

import hydra
from omegaconf import DictConfig, OmegaConf

from rootfree.train.app import run, run_hash

OmegaConf.register_new_resolver("run_hash", run_hash, replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run(cfg)


if __name__ == "__main__":
    main()
