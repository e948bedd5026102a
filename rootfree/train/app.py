"""The Hydra-facing entry point: one job = one run directory, skipped if done, resumed if not."""

from __future__ import annotations

import logging
import math
import traceback

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rootfree.train.loop import Diverged, Trainer, world
from rootfree.train.rundir import NON_SEMANTIC_KEYS, RunDir, config_hash

log = logging.getLogger(__name__)
FINAL_STATUSES = ("done", "diverged")


def run_hash(*, _root_: DictConfig) -> str:
    """OmegaConf resolver ``${run_hash:}``: the run directory name for the config being launched."""
    semantic = {
        key: OmegaConf.to_container(_root_[key], resolve=True)
        if OmegaConf.is_config(_root_[key])
        else _root_[key]
        for key in _root_
        if key not in NON_SEMANTIC_KEYS
    }
    return config_hash(semantic)


# Registered on import, so launcher child processes (joblib, submitit) that unpickle the task
# function resolve ${run_hash:} in hydra.run.dir / hydra.sweep.subdir too.
OmegaConf.register_new_resolver("run_hash", run_hash, replace=True)


def run(cfg: DictConfig) -> float:
    """Train the configured run (or skip/resume it); return the selection-split accuracy.

    A crash is recorded as ``failed`` (and re-raised outside multirun), a NaN as ``diverged``:
    either way the other jobs of a sweep carry on and no finished run is touched.
    """
    hydra = HydraConfig.get()
    rank, world_size = world()
    run_dir = RunDir(hydra.runtime.output_dir, writer=rank == 0)
    config = OmegaConf.to_container(cfg, resolve=True)
    status = run_dir.status()
    if status is not None and status["status"] in FINAL_STATUSES:
        log.info("%s is %s already; skipping", run_dir.path, status["status"])
        return status.get("final", {}).get("val_acc", math.nan)
    if run_dir.writer:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir.path / "config.yaml", resolve=True)
    run_dir.set_status("running", run_hash=config_hash(config), world_size=world_size, error=None)
    try:
        trainer = Trainer(config, run_dir)
        run_dir.write_provenance(
            dataset_checksum=trainer.data.checksum, selection_split=trainer.data.selection_split
        )
        resumed = trainer.resume()
        final = trainer.fit()
    except Diverged as error:
        run_dir.set_status("diverged", error=str(error))
        log.warning("%s diverged: %s", run_dir.path, error)
        return math.nan
    except Exception:
        run_dir.set_status("failed", error=traceback.format_exc(limit=20))
        if hydra.mode != RunMode.MULTIRUN:
            raise
        log.exception("%s failed; the sweep goes on", run_dir.path)
        return math.nan
    run_dir.set_status("done", final=final, resumed=resumed)
    if not run_dir.writer:
        return final["val_acc"]
    print(
        f"{run_dir.path}: test accuracy {final['test_acc']:.4f} "
        f"(val {final['val_acc']:.4f}, train {final['train_acc']:.4f}) after {final['epoch']} epochs"
    )
    return final["val_acc"]
