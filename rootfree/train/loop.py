"""The training loop: one run from a resolved config into a run directory, resumable bitwise.

Everything a continued run needs is in ``checkpoints/last.pt``: model, optimizer, grad scaler,
torch RNG states, the position (epoch, batch, step) and the epoch's running sums. The data order
is a function of (seed, epoch, batch), so a resumed run repeats exactly what an uninterrupted one
does, on CPU bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rootfree.data.text import vocabulary_difference
from rootfree.record import RunDir
from rootfree.tasks import derived_metrics
from rootfree.train.build import (
    build_data,
    build_model,
    build_optimizer,
    build_train_eval_loader,
    global_batch_size,
)
from rootfree.train.checkpoint import load_latest, save_atomic
from rootfree.train.diagnostics import (
    factor_conditioning,
    optimizer_state_mib,
    peak_gpu_mib,
    second_moment_at_init,
    training_stability,
)
from rootfree.train.loggers import create_logger
from rootfree.train.losses import make_loss
from rootfree.train.progress import Progress
from rootfree.train.schedule import lr_factor

log = logging.getLogger(__name__)
AMP_MODES = ("off", "bf16", "fp16")


class Diverged(Exception):
    """The training loss became NaN or infinite."""


class OtherData(Exception):
    """The data found now are not the data the run began on."""


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; the process group is set up on first use."""
    size = int(os.environ.get("WORLD_SIZE", 1))
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", 0)), size


def resolve_device(name: str) -> torch.device:
    """``auto``, ``cpu`` or ``cuda``; under torchrun, ``cuda`` means this rank's local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"Invalid trainer.device: {name!r}; CUDA is not available (use cpu or auto)"
        )
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


class Trainer:
    """One run: built from a resolved (and validated, ``rootfree.train.validate``) config."""

    def __init__(self, config: dict[str, Any], run_dir: RunDir) -> None:
        self.config, self.run_dir = config, run_dir
        self.trainer = config["trainer"]
        self.accumulate = self.trainer["accumulate"]
        self.device = resolve_device(self.trainer["device"])
        self.rank, self.world_size = world()
        torch.manual_seed(config["seed"])
        self.data = build_data(config, self.device, self.rank, self.world_size)
        self.task, self.train_loader = self.data.task, self.data.train_loader
        self.eval_loaders = self.data.eval_loaders
        self.model = build_model(config, self.data).to(self.device)
        self.batch_size = global_batch_size(config, self.world_size)
        self.optimizer = build_optimizer(config, self.model, self.batch_size)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.forward = self.model
        if self.world_size > 1:
            self.forward = DistributedDataParallel(self.model)
        if self.trainer["compile"]:
            self.forward = torch.compile(self.forward)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.trainer["amp"] == "fp16")
        tokens = self.data.task.unit == "tokens"
        self.loss_fn = make_loss(self.trainer["loss"], tokens)
        self.eval_loss_fn = make_loss({**self.trainer["loss"], "label_smoothing": 0.0}, tokens)
        self._plan_steps()
        self.progress = Progress(
            self.trainer["progress"],
            self.total_steps,
            self.epochs,
            self.trainer["log_every"],
            quiet=self.rank != 0,
        )
        self.epoch, self.batch, self.step = 0, 0, 0
        self.running = {"loss": 0.0, "correct": 0, "count": 0, "seconds": 0.0}
        self.best_score = -math.inf  # the task's primary validation metric, higher is better
        self.wall_seconds = 0.0
        self.saved_step: int | None = None  # the step of the checkpoint a relaunch resumes from
        self.saved_at = time.monotonic()

    def _plan_steps(self) -> None:
        self.steps_per_epoch = len(self.train_loader) // self.accumulate
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"Invalid dataset.batch_size: {self.batch_size} samples per step, but only "
                f"{self.train_loader.samples} training samples"
            )
        self.total_steps = (
            self.trainer["max_steps"] or self.trainer["epochs"] * self.steps_per_epoch
        )
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.warmup_steps = round(self.trainer["schedule"]["warmup_epochs"] * self.steps_per_epoch)

    # -- precision -----------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        amp = self.trainer["amp"]
        if amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step},
            "running": dict(self.running),
            "best_score": self.best_score,
            "wall_seconds": self.wall_seconds,
            **self._vocabulary(),
        }

    def _vocabulary(self) -> dict[str, list[str]]:
        """A language model's vocabulary, which its embedding rows index."""
        vocabulary = getattr(self.data.splits, "vocabulary", None)
        return {} if vocabulary is None else {"vocabulary": list(vocabulary)}

    def _check_vocabulary(self, payload: dict[str, Any]) -> None:
        """Refuse, in one line, to resume a language model on a corpus with other symbols."""
        saved = payload.get("vocabulary")
        current = self._vocabulary().get("vocabulary")
        problem = None if saved is None else vocabulary_difference(saved, current)
        if problem is not None:
            root = self.config["dataset"].get("root")
            raise OtherData(
                f"Invalid dataset.root: {root!r}; the corpus's vocabulary is not the one "
                f"{self.run_dir.path} was trained with: {problem}"
            )

    def resume(self) -> bool:
        """Continue from the last readable checkpoint; metrics.jsonl is cut back to match it."""
        payload = load_latest(self.run_dir.checkpoints / "last.pt")
        if payload is None:
            if self.run_dir.metrics():
                log.warning(
                    "%s has metrics but no readable checkpoint: restarting", self.run_dir.path
                )
            self.run_dir.write_metrics([])
            return False
        self._check_vocabulary(payload)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scaler.load_state_dict(payload["scaler"])
        torch.set_rng_state(payload["rng"]["torch"])
        if "cuda" in payload["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(payload["rng"]["cuda"], self.device)
        position = payload["position"]
        self.epoch, self.batch, self.step = position["epoch"], position["batch"], position["step"]
        self.running = dict(payload["running"])
        # checkpoints written before tasks held classification's best validation accuracy
        self.best_score = payload.get("best_score", payload.get("best_val_acc"))
        self.wall_seconds = payload["wall_seconds"]
        self._restore_metrics()
        self.saved_step = self.step
        log.info(
            "resumed from the last checkpoint at step %d of %d: epoch %d, %d of its %d steps done",
            self.step,
            self.total_steps,
            self.epoch + 1,
            self.batch,
            self.steps_per_epoch,
        )
        return True

    def relaunch_note(self) -> str:
        """What a relaunch would do now: resume from the last checkpoint, redoing the steps
        since, or start over when none was written."""
        if self.saved_step is None:
            return "no checkpoint yet, so a relaunch starts over"
        redo = self.step - self.saved_step
        return f"a relaunch resumes from the checkpoint at step {self.saved_step}" + (
            f" and redoes {redo} step{'s' * (redo != 1)}" if redo else ""
        )

    def _restore_metrics(self) -> None:
        """Keep one row per epoch up to the checkpoint's; a row lost to a torn line stays lost,
        and the warning (and the results module's gap check) says so."""
        rows = {r["epoch"]: r for r in self.run_dir.metrics() if r["epoch"] <= self.epoch}
        missing = sorted(set(range(1, self.epoch + 1)) - set(rows))
        if missing:
            log.warning("%s: metrics of epochs %s are unreadable", self.run_dir.path, missing)
        self.run_dir.write_metrics([rows[e] for e in sorted(rows)])

    def save(self, best: bool = False) -> None:
        self.saved_step, self.saved_at = self.step, time.monotonic()
        if not self.run_dir.writer:
            return
        state = self.state()
        save_atomic(state, self.run_dir.checkpoints / "last.pt")
        if best:
            save_atomic(
                {"model": state["model"], "epoch": self.epoch}, self.run_dir.checkpoints / "best.pt"
            )

    # -- the loop ------------------------------------------------------------------------------
    def train_step(
        self, micro_batches: list[tuple[torch.Tensor, torch.Tensor]], sums: torch.Tensor
    ) -> None:
        """One optimizer step over ``accumulate`` micro-batches; adds (loss sum, correct) to ``sums``."""
        factor = lr_factor(
            self.step,
            self.total_steps,
            self.trainer["schedule"]["kind"],
            self.warmup_steps,
            tuple(self.trainer["schedule"]["milestones"]),
            self.trainer["schedule"]["gamma"],
            self.trainer["schedule"]["min_factor"],
        )
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        self.optimizer.zero_grad(set_to_none=True)
        for index, (images, labels) in enumerate(micro_batches):
            if self.trainer["channels_last"] and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            last = index == len(micro_batches) - 1
            no_sync = getattr(self.forward, "no_sync", None)
            with contextlib.nullcontext() if last or no_sync is None else no_sync():
                with self.autocast():
                    logits = self.forward(images)
                    loss = self.loss_fn(logits.float(), labels)
                scaled = loss if len(micro_batches) == 1 else loss / len(micro_batches)
                self.scaler.scale(scaled).backward()
            sums[0].add_(loss.detach(), alpha=labels.numel())
            sums[1].add_((logits.argmax(-1) == labels).sum())
        if self.trainer["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.trainer["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def flush(self, sums: torch.Tensor, count: int) -> float:
        """Move the device-side (loss, correct) sums over ``count`` samples into the epoch's totals.

        One host sync per call, so it runs every ``log_every`` steps, before a checkpoint and at
        the epoch's end, never per step. A non-finite loss ends the run as diverged.
        """
        if self.world_size > 1:
            dist.all_reduce(sums)
        loss_sum, correct = sums.tolist()
        sums.zero_()
        if not math.isfinite(loss_sum):
            raise Diverged(f"non-finite training loss by step {self.step}")
        self.running["loss"] += loss_sum
        self.running["correct"] += int(correct)
        self.running["count"] += int(count)
        return self.running["loss"] / max(1, self.running["count"])

    def checkpoint_due(self, flushed: bool) -> bool:
        """Every ``checkpoint_every_steps`` steps (0: off), and at a logging step once
        ``checkpoint_every_minutes`` have passed since the last save (0: off). Time is only read
        where the sums were just flushed, so saving changes no logged number; under DDP rank 0's
        clock decides for every rank."""
        every = self.trainer["checkpoint_every_steps"]
        if every and self.step % every == 0:
            return True
        minutes = self.trainer.get("checkpoint_every_minutes") or 0
        if not (minutes and flushed):
            return False
        due = time.monotonic() - self.saved_at >= 60 * minutes
        if self.world_size == 1:
            return due
        flag = torch.tensor(int(due), device=self.device)  # a collective only under DDP
        dist.broadcast(flag, src=0)
        return bool(flag)

    def train_epoch(self, logger) -> None:
        self.model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        pending = 0  # samples (all ranks) in sums; batches are full (drop_last), so it is known
        batches = self.progress.batches(
            self.train_loader.batches(self.epoch, start=self.batch * self.accumulate),
            self.epoch + 1,
            total=self.steps_per_epoch * self.accumulate,
            done=self.batch * self.accumulate,
        )
        started = time.perf_counter()
        micro_batches = []
        for micro_batch in batches:
            micro_batches.append(micro_batch)
            if len(micro_batches) < self.accumulate:
                continue
            self.train_step(micro_batches, sums)
            micro_batches = []
            pending += self.train_loader.targets_per_batch * self.accumulate
            self.batch += 1
            self.step += 1
            mean_loss, flushed = None, False
            if self.step % self.trainer["log_every"] == 0 or self.progress.first_step is None:
                flushed = True
                mean_loss, pending = self.flush(sums, pending), 0
                logger.log(
                    {"train_loss_running": mean_loss, "lr": self.optimizer.param_groups[0]["lr"]},
                    self.step,
                )
            self.progress.step(self.step, mean_loss)
            if self.step == self.total_steps or self.batch == self.steps_per_epoch:
                break
            if self.checkpoint_due(flushed):
                self.flush(sums, pending)
                pending = 0
                self.running["seconds"] += time.perf_counter() - started
                started = time.perf_counter()
                self.save()
        self.flush(sums, pending)
        self.running["seconds"] += time.perf_counter() - started

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for images, labels in self.eval_loaders[split].batches():
            if self.trainer["channels_last"] and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                logits = self.forward(images)
            loss_sum += self.eval_loss_fn(logits.float(), labels, reduction="sum")
            correct += (logits.argmax(-1) == labels).sum()
        n = self.eval_loaders[split].targets
        return loss_sum.item() / n, correct.item() / n

    def fit(self) -> dict[str, Any]:
        logger = create_logger(self.config, self.run_dir)
        try:
            while self.epoch < self.epochs and self.step < self.total_steps:
                self.train_epoch(logger)
                row = self.finish_epoch()
                logger.log(row, self.step)
            final_eval = self.final_record()
            if final_eval is not None:
                self.run_dir.write_final_eval(final_eval)
            return self.run_dir.metrics()[-1]
        finally:
            logger.finish()

    def final_record(self) -> dict[str, Any] | None:
        """final_eval.json: the final model on the training split (where the data allow) and
        the final preconditioner's conditioning (where the optimizer has factors)."""
        row = {
            **(self.evaluate_training_set() or {}),
            **factor_conditioning(self.optimizer),
            **training_stability(self.run_dir.metrics()),
        }
        return {"epoch": self.epoch, "step": self.step, **row} if row else None

    def evaluate_training_set(self) -> dict[str, Any] | None:
        """The model as it is, in eval mode, on the training split without augmentation (a text
        corpus's first block; ``build_train_eval_loader``); None where training images are only
        cropped per batch (ImageFolder)."""
        loader = build_train_eval_loader(self.config, self.data, self.device)
        if loader is None:
            return None
        self.eval_loaders["train"] = loader
        loss, accuracy = self.evaluate("train")
        row = {"train_eval_loss": loss, "train_eval_acc": accuracy}
        row.update(derived_metrics(row, self.data.level))
        return {"epoch": self.epoch, "step": self.step, **row}

    def _evaluates(self, epoch: int) -> bool:
        """Evaluate every ``trainer.eval_every`` epochs (every epoch if null) and at the end."""
        every = self.trainer.get("eval_every") or 1
        return epoch % every == 0 or epoch == self.epochs or self.step >= self.total_steps

    def finish_epoch(self) -> dict[str, Any]:
        count = max(1, self.running["count"])
        epoch_seconds = self.running["seconds"]
        self.wall_seconds += epoch_seconds
        row = {
            "epoch": self.epoch + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": self.running["loss"] / count,
            "train_acc": self.running["correct"] / count,
            "train_seconds": epoch_seconds,
            "wall_seconds": self.wall_seconds,
            f"{self.data.task.unit}_per_second": count / epoch_seconds if epoch_seconds else None,
        }
        best = False
        if self._evaluates(self.epoch + 1):
            for split in ("val", "test"):
                row[f"{split}_loss"], row[f"{split}_acc"] = self.evaluate(split)
            if not math.isfinite(row["val_loss"]):
                raise Diverged(f"non-finite validation loss after epoch {self.epoch + 1}")
            row.update(derived_metrics(row, self.data.level))
            best = self.task.score(row) > self.best_score
            self.best_score = max(self.best_score, self.task.score(row))
            row.update(second_moment_at_init(self.optimizer))
            row.update(optimizer_state_mib(self.optimizer), **peak_gpu_mib(self.device))
        self.run_dir.append_metrics(row)
        self.epoch, self.batch = self.epoch + 1, 0
        self.running = {"loss": 0.0, "correct": 0, "count": 0, "seconds": 0.0}
        self.save(best=best)
        self.run_dir.set_status("running", epochs_done=self.epoch)
        self.progress.epoch(row, self.wall_seconds)
        return row
