"""The Hydra-facing entry point: one job = one run directory, skipped if done or already being
trained, resumed if not; the config is checked before anything is loaded or written."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rootfree.optim import OPTIMIZERS
from rootfree.paper_experiments import missing_best_file
from rootfree.record import HASH_EXCLUDED, DiskFull, RunDir, RunStatus, config_hash
from rootfree.record.files import write_bytes_atomic
from rootfree.record.provenance import launches
from rootfree.tasks import task_for
from rootfree.train.groups import GROUPS, group_options
from rootfree.train.loop import Diverged, OtherData, Trainer, world
from rootfree.train.validate import ConfigError, validate_config

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_hash(*, _root_: DictConfig) -> str:
    """OmegaConf resolver ``${run_hash:}``: the run directory name for the config being launched."""
    top_level = {key for key in HASH_EXCLUDED if "." not in key}
    semantic = {
        key: OmegaConf.to_container(_root_[key], resolve=True)
        if OmegaConf.is_config(_root_[key])
        else _root_[key]
        for key in _root_
        if key not in top_level
    }
    return config_hash(semantic)


def help_groups() -> str:
    """OmegaConf resolver ``${rootfree_help_groups:}``: the groups a user picks, with options;
    a plug-in optimizer names the distribution that provides it."""
    return "\n".join(
        f"{group}: {', '.join(map(_with_provider(group), group_options(group)))}"
        for group in (*GROUPS, "hydra/launcher")
    )


def _with_provider(group: str):
    def label(option: str) -> str:
        spec = OPTIMIZERS.get(option) if group == "optimizer" else None
        return (
            f"{option} (plug-in from {spec.provider})"
            if spec and spec.provider != "rootfree"
            else option
        )

    return label


# Registered on import, so launcher child processes (joblib, submitit) that unpickle the task
# function resolve ${run_hash:} in hydra.run.dir / hydra.sweep.subdir too.
OmegaConf.register_new_resolver("run_hash", run_hash, replace=True)
OmegaConf.register_new_resolver("rootfree_help_groups", help_groups, replace=True)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived; like KeyboardInterrupt, no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM/SIGINT (SLURM's stop, ``kill``, Ctrl-C) into ``Interrupted`` while training."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _claim(run_dir: RunDir, world_size: int) -> bool:
    """Rank 0 takes the run's lock; under torchrun every rank learns whether it did."""
    owned = run_dir.lock.acquire() if run_dir.writer else True
    if world_size > 1:
        flag = [owned]
        dist.broadcast_object_list(flag, src=0)
        owned = flag[0]
    return owned


def _reject(run_dir: RunDir, error: ConfigError) -> float:
    """A bad config: remove the directory Hydra just made for it, say why in one line."""
    if run_dir.writer and not (run_dir.path / "status.json").exists():
        shutil.rmtree(run_dir.path, ignore_errors=True)
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        raise SystemExit(f"rootfree: {error}")
    log.error("rootfree: %s; the sweep goes on", error)
    return math.nan


def _check_best_file(config: dict) -> None:
    """A paper experiment with an optimizer the paper ran needs its best hyperparameters."""
    experiment = HydraConfig.get().runtime.choices.get("experiment")
    missing = missing_best_file(experiment, config["optimizer"]["name"])
    if missing is not None:
        raise ConfigError(
            "experiment",
            experiment,
            f"its best {config['optimizer']['name']} settings "
            f"({missing.name}) are missing from {missing.parent}; the run would use defaults",
        )


def objective(config: dict, row: dict) -> float:
    """What a sweeper maximizes: the task's primary validation metric, signed so higher is
    better (accuracy; minus the validation loss of a language model). NaN where not logged."""
    task = task_for(config["dataset"]["name"])
    return task.score(row) if f"val_{task.primary.name}" in row else math.nan


def run(cfg: DictConfig) -> float:
    """Train the configured run (or skip/resume it); return its ``objective``."""
    rank, world_size = world()
    run_dir = RunDir(HydraConfig.get().runtime.output_dir, writer=rank == 0)
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        validate_config(config)
        _check_best_file(config)
    except ConfigError as error:
        return _reject(run_dir, error)
    if not _claim(run_dir, world_size):
        holder = run_dir.lock.holder()
        print(
            f"{run_dir.path} is being trained by pid {holder.get('pid')} on {holder.get('host')}; "
            "skipping",
            file=sys.stderr,
        )
        return math.nan
    try:
        status = run_dir.status()
        if status is not None and RunStatus(status["status"]).final:
            log.info("%s is %s already; skipping", run_dir.path, status["status"])
            final = run_dir.metrics()[-1:] or [{}]
            return objective(config, final[0])
        return _train(cfg, config, run_dir, world_size)
    finally:
        run_dir.lock.release()


def _train(cfg: DictConfig, config: dict, run_dir: RunDir, world_size: int) -> float:
    """Train under the lock; every way out is recorded in status.json."""
    trainer, before = None, run_dir.status()
    try:
        if run_dir.writer:
            text = OmegaConf.to_yaml(cfg, resolve=True)
            write_bytes_atomic(run_dir.path / "config.yaml", text.encode())
        run_dir.set_status(
            "running", run_hash=config_hash(config), world_size=world_size, error=None
        )
        with signals_interrupt():
            trainer = Trainer(config, run_dir)
            _check_same_data(run_dir, config["dataset"].get("root"), trainer.data.checksum)
            run_dir.record_launch(
                dataset_checksum=trainer.data.checksum,
                selection_split=trainer.data.selection_split,
                run_device=str(trainer.device),
            )
            resumed = trainer.resume()
            if not resumed and before is not None and run_dir.writer:
                print(
                    f"{run_dir.path}: no checkpoint from its earlier launch "
                    f"({before['status']}); starting over",
                    file=sys.stderr,
                )
            final = trainer.fit()
    except Interrupted as stop:
        return _interrupted(run_dir, trainer, stop)
    except OtherData as error:
        if before is not None:  # the run is as it was: nothing of this launch is recorded
            run_dir.set_status(before["status"], error=before.get("error"))
        return _end_with_error(run_dir, str(error))
    except DiskFull as error:
        with contextlib.suppress(OSError):
            run_dir.set_status("failed", error=str(error))
        return _end_with_error(
            run_dir, f"{error}; the partial file was removed, the last checkpoint kept"
        )
    except Diverged as error:
        run_dir.set_status("diverged", error=str(error))
        log.warning("%s diverged: %s", run_dir.path, error)
        return math.nan
    except Exception:
        run_dir.set_status("failed", error=traceback.format_exc(limit=20))
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.exception("%s failed; the sweep goes on", run_dir.path)
        return math.nan
    except BaseException as error:  # SystemExit from a launcher's own handler (submitit's USR2)
        with contextlib.suppress(OSError):
            run_dir.set_status("interrupted", error=repr(error))
        raise
    run_dir.set_status("done", resumed=resumed, epochs_done=final["epoch"])
    if run_dir.writer:
        print(f"{run_dir.path}: {summary(trainer.task, final)}")
    return objective(config, final)


def summary(task, final: dict) -> str:
    """The run's last row in one phrase: test, validation and training primary metric."""
    name = task.primary.name
    label = {"acc": "accuracy", "loss": "loss"}.get(name, name)
    return (
        f"test {label} {final[f'test_{name}']:.4f} (val {final[f'val_{name}']:.4f}, "
        f"train {final[f'train_{name}']:.4f}) after {final['epoch']} epochs"
    )


def _check_same_data(run_dir: RunDir, root: str | None, checksum: str) -> None:
    """Raise ``OtherData`` in one line when the data's checksum is not the run's: runs are
    named without ``dataset.root``, so moved data resume a run, and changed data must not."""
    earlier = {launch.get("dataset_checksum") for launch in launches(run_dir.provenance())}
    earlier.discard(None)
    if earlier and checksum not in earlier:
        raise OtherData(
            f"Invalid dataset.root: {root!r}; the data there (checksum {checksum}) are not the "
            f"data {run_dir.path} was trained on ({', '.join(sorted(earlier))}): point "
            "dataset.root at those, or train elsewhere (paths.runs)"
        )


def _interrupted(run_dir: RunDir, trainer: Trainer | None, stop: Interrupted) -> float:
    where = f"epoch {trainer.epoch + 1}, step {trainer.step}" if trainer else "start-up"
    note = trainer.relaunch_note() if trainer else "a relaunch starts over"
    with contextlib.suppress(OSError):
        run_dir.set_status("interrupted", error=f"{stop} at {where}")
    print(f"{run_dir.path}: interrupted by {stop} at {where}; {note}", file=sys.stderr)
    raise SystemExit(128 + stop.signum)


def _end_with_error(run_dir: RunDir, message: str) -> float:
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        raise SystemExit(f"rootfree: {message}")
    log.error("rootfree: %s", message)
    return math.nan
