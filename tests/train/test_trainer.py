"""The trainer in-process: bitwise resume at and within epochs, and the corrupt-checkpoint fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from rootfree.record import RunDir, read_run
from rootfree.train.diagnostics import optimizer_state_mib
from rootfree.train.loop import Trainer
from tests.train.helpers import compose_config

TIMING = {"train_seconds", "wall_seconds", "images_per_second", "tokens_per_second"}


class Killed(Exception):
    pass


class KilledTrainer(Trainer):
    """Dies just before taking global step ``kill_at``, as a SIGKILL would (nothing is flushed)."""

    kill_at: int | None = None

    def train_step(self, micro_batches, sums):
        if self.step == self.kill_at:
            raise Killed
        super().train_step(micro_batches, sums)


def run(config, path, kill_at=None):
    KilledTrainer.kill_at = kill_at
    trainer = KilledTrainer(config, RunDir(path))
    trainer.resume()
    try:
        trainer.fit()
    except Killed:
        return None
    return trainer


def results(trainer):
    rows = [{k: v for k, v in row.items() if k not in TIMING} for row in trainer.run_dir.metrics()]
    return trainer.model.state_dict(), rows


@pytest.mark.parametrize(
    "name,overrides,kill_at",
    [
        ("epoch boundary", [], 6),  # the smoke data has 6 steps per epoch
        ("mid-epoch", ["trainer.checkpoint_every_steps=2"], 9),
        (
            "mid-epoch, bf16 autocast, RootFreeShampoo",
            ["trainer.checkpoint_every_steps=2", "trainer.amp=bf16", "optimizer=rootfree_shampoo"],
            9,
        ),
    ],
)
def test_interrupted_and_resumed_run_equals_uninterrupted_bitwise(
    tmp_path, name, overrides, kill_at
):
    config = compose_config("experiment=smoke", "trainer.device=cpu", *overrides)  # bitwise: CPU
    straight_state, straight_rows = results(run(config, tmp_path / "straight"))
    assert run(config, tmp_path / "resumed", kill_at=kill_at) is None
    resumed_state, resumed_rows = results(run(config, tmp_path / "resumed"))
    assert (
        resumed_rows == straight_rows and len(rows := resumed_rows) == 2 and rows[-1]["epoch"] == 2
    )
    for key, value in straight_state.items():
        assert torch.equal(resumed_state[key], value), key


def test_corrupt_last_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    config = compose_config(
        "experiment=smoke", "trainer.device=cpu", "trainer.checkpoint_every_steps=2"
    )
    straight_state, straight_rows = results(run(config, tmp_path / "straight"))
    run(config, tmp_path / "resumed", kill_at=9)
    last = tmp_path / "resumed" / "checkpoints" / "last.pt"
    assert last.with_suffix(".prev.pt").exists()
    last.write_bytes(last.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        resumed_state, resumed_rows = results(run(config, tmp_path / "resumed"))
    assert "unreadable" in caplog.text
    assert resumed_rows == straight_rows
    for key, value in straight_state.items():
        assert torch.equal(resumed_state[key], value), key


def test_a_torn_metrics_row_costs_that_row_only_and_is_reported(tmp_path, caplog):
    config = compose_config("experiment=smoke", "trainer.device=cpu", "trainer.epochs=3")
    run(config, tmp_path, kill_at=12)  # the smoke data has 6 steps per epoch: 2 epochs logged
    metrics = tmp_path / "metrics.jsonl"
    first, second = metrics.read_text().splitlines()
    metrics.write_text(first[:20] + "\n" + second + "\n")
    with caplog.at_level(logging.WARNING):
        trainer = run(config, tmp_path)
    assert "metrics of epochs [1] are unreadable" in caplog.text
    assert [r["epoch"] for r in trainer.run_dir.metrics()] == [2, 3]
    assert "metrics.jsonl lacks epochs [1]" in read_run(tmp_path).problems


def test_without_a_readable_checkpoint_a_run_restarts_with_fresh_metrics(tmp_path, caplog):
    config = compose_config("experiment=smoke", "trainer.device=cpu", "trainer.epochs=3")
    run(config, tmp_path, kill_at=12)
    for name in ("last.pt", "last.prev.pt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        trainer = run(config, tmp_path)
    assert "restarting" in caplog.text
    assert [r["epoch"] for r in trainer.run_dir.metrics()] == [1, 2, 3]


def test_checkpoints_load_with_weights_only(tmp_path):
    assert run(compose_config("experiment=smoke"), tmp_path) is not None
    for name in ("last.pt", "best.pt"):
        payload = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert "model" in payload


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.amp=fp16", "trainer.channels_last=true", "trainer.grad_clip=1.0"],
        [
            "trainer.amp=bf16",
            "trainer.loss.label_smoothing=0.1",
            "trainer.schedule.kind=multistep",
            "trainer.schedule.warmup_epochs=0.5",
        ],
        ["optimizer=shampoo", "model=vit", "trainer.max_steps=8"],
    ],
)
def test_precision_and_loop_options_train_to_finite_metrics(tmp_path, overrides):
    trainer = run(compose_config("experiment=smoke", *overrides), tmp_path)
    rows = trainer.run_dir.metrics()
    assert rows and all(torch.isfinite(torch.tensor(r["val_loss"])) for r in rows)
    assert rows[-1]["step"] == trainer.total_steps
    state = optimizer_state_mib(trainer.optimizer)["optimizer_state_mib"]
    assert state > 0 and rows[-1]["optimizer_state_mib"] == state


def test_gradient_accumulation_equals_the_whole_batch(tmp_path):
    """Two accumulated micro-batches of 16 are one step on the batch of 32 (ViT: no BatchNorm)."""
    whole = run(
        compose_config("experiment=smoke", "model=vit", "dataset.batch_size=32"), tmp_path / "a"
    )
    accumulated = run(
        compose_config(
            "experiment=smoke", "model=vit", "dataset.batch_size=16", "trainer.accumulate=2"
        ),
        tmp_path / "b",
    )
    assert accumulated.optimizer.param_groups[0]["batch_size"] == 32, "B is the whole batch"
    assert accumulated.step == whole.step
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(accumulated.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    rows_a, rows_b = whole.run_dir.metrics(), accumulated.run_dir.metrics()
    assert rows_a[-1]["train_loss"] == pytest.approx(rows_b[-1]["train_loss"], rel=1e-5)


def test_imagefolder_vit_run_trains(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 2)):
        for label in ("a", "b"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(
                    tmp_path / "data" / split / label / f"{i}.png"
                )
    config = compose_config(
        "experiment=imagewoof_vit",
        "model=vit",
        f"dataset.root={tmp_path / 'data'}",
        "dataset.image_size=32",
        "dataset.batch_size=4",
        "trainer.epochs=2",
        "trainer.schedule.warmup_epochs=1",
        "trainer.progress=false",
        "trainer.amp=bf16",
    )
    trainer = run(config, tmp_path / "run")
    rows = trainer.run_dir.metrics()
    assert len(rows) == 2 and all(0 <= r["test_acc"] <= 1 for r in rows)


def test_wandb_logs_offline_into_the_run_directory_without_a_login(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    trainer = run(compose_config("experiment=smoke", "logger=wandb"), tmp_path)
    assert len(trainer.run_dir.metrics()) == 2
    offline_runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and offline_runs[0].name.endswith(tmp_path.name)


@pytest.mark.slow
def test_compiled_model_trains_like_eager(tmp_path):
    eager = run(compose_config("experiment=smoke", "trainer.device=cpu"), tmp_path / "eager")
    compiled = run(
        compose_config("experiment=smoke", "trainer.device=cpu", "trainer.compile=true"),
        tmp_path / "compiled",
    )
    for key, value in eager.model.state_dict().items():
        torch.testing.assert_close(compiled.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_rescaled_mse_matches_its_formula_and_trains(tmp_path):
    from rootfree.train.losses import rescaled_mse

    logits, labels = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([1])
    k, m = 15**0.5, 30.0
    expected = ((1.0**2) + (k * 2.0 - m * k) ** 2 + 0.5**2) / 3
    assert rescaled_mse(logits, labels, scale=m, weight=k).item() == pytest.approx(expected)
    trainer = run(
        compose_config(
            "experiment=smoke",
            "trainer.loss.kind=rescaled_mse",
            "optimizer=sgd",
            "optimizer.lr=0.001",
        ),
        tmp_path,
    )
    rows = trainer.run_dir.metrics()
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_csv_and_tensorboard_loggers_record_every_epochs_metrics(tmp_path):
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(compose_config("experiment=smoke", "logger=csv"), tmp_path / "csv")
    with open(tmp_path / "csv" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    val = [(int(r["step"]), float(r["value"])) for r in rows if r["name"] == "val_acc"]
    logged = [(m["step"], m["val_acc"]) for m in RunDir(tmp_path / "csv").metrics()]
    assert val == logged and len(val) == 2

    run(compose_config("experiment=smoke", "logger=tensorboard"), tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    scalars = [(e.step, e.value) for e in events.Scalars("val_acc")]
    logged = [(m["step"], m["val_acc"]) for m in RunDir(tmp_path / "tb").metrics()]
    assert [s for s, _ in scalars] == [s for s, _ in logged]
    assert [v for _, v in scalars] == pytest.approx([v for _, v in logged])


def test_the_final_model_is_evaluated_on_the_training_split_and_a_backfill_reproduces_it(tmp_path):
    """final_eval.json holds the finished model's eval-mode accuracy on the whole training split
    (checked by counting correct predictions here); rebuilt from the last checkpoint for a run
    that predates it, it comes out identical."""
    from rootfree.train.final_eval import backfill_final_eval
    from tests.train.helpers import train_py

    overrides = ("experiment=smoke", "trainer.device=cpu", "trainer.epochs=1", "optimizer.lr=1e-4")
    assert train_py(*overrides, runs=tmp_path).returncode == 0
    (path,) = [p.parent for p in tmp_path.glob("*/status.json")]
    written = RunDir(path).final_eval()
    record = read_run(path)
    assert record.final_eval == written and not record.problems
    trainer = Trainer(record.config, RunDir(path, writer=False))
    assert trainer.resume()
    images, labels = trainer.data.splits.train
    mean = torch.tensor(trainer.data.splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(trainer.data.splits.std).view(1, -1, 1, 1)
    trainer.model.eval()
    with torch.no_grad():
        predicted = trainer.model((images.float() / 255 - mean) / std).argmax(-1)
    assert written["train_eval_acc"] == pytest.approx((predicted == labels).float().mean().item())
    assert written["epoch"] == trainer.epochs and 0.1 < written["train_eval_acc"] < 0.9
    assert {"worst_acc_drop", "loss_spike"} <= set(written), "the run's stability, recorded"

    (path / "final_eval.json").unlink()  # as for a run that predates final_eval.json
    assert backfill_final_eval(path)
    assert RunDir(path).final_eval() == written
    assert not backfill_final_eval(path), "written once"


def test_kronecker_runs_record_their_final_factor_conditioning_and_a_backfill_adds_it(tmp_path):
    """final_eval.json of a RootFreeShampoo run holds factor_conditioning of the final state;
    for a run whose record lacks it, the backfill adds the same values and keeps the rest."""
    from rootfree.train.diagnostics import factor_conditioning
    from rootfree.train.final_eval import backfill_final_eval
    from tests.train.helpers import train_py

    overrides = ("experiment=smoke", "trainer.device=cpu", "trainer.epochs=1")
    assert train_py(*overrides, "optimizer=rootfree_shampoo", runs=tmp_path).returncode == 0
    (path,) = [p.parent for p in tmp_path.glob("*/status.json")]
    written = RunDir(path).final_eval()
    trainer = Trainer(read_run(path).config, RunDir(path, writer=False))
    assert trainer.resume()
    expected = factor_conditioning(trainer.optimizer)
    assert expected and {k: written[k] for k in expected} == pytest.approx(expected)

    older = {k: v for k, v in written.items() if k not in expected}
    RunDir(path).write_final_eval({**older, "train_eval_acc": -1.0})
    assert backfill_final_eval(path)
    assert RunDir(path).final_eval() == {**written, "train_eval_acc": -1.0}
    assert not backfill_final_eval(path), "nothing left to add"


def killed_at(config, path, step):
    """The trainer as a kill just before ``step`` leaves it (checkpoints on disk)."""
    KilledTrainer.kill_at = step
    trainer = KilledTrainer(config, RunDir(path))
    trainer.resume()
    with pytest.raises(Killed):
        trainer.fit()
    return trainer


def test_a_checkpoint_by_time_changes_no_number_and_a_relaunch_resumes_there(tmp_path, caplog):
    """Due by minutes, a checkpoint waits for a logging step, where the sums were just
    flushed: every logged number equals a run without it, and the resume is bitwise."""
    smoke = ("experiment=smoke", "trainer.device=cpu", "trainer.log_every=2")
    plain = compose_config(*smoke, "trainer.checkpoint_every_minutes=0")
    timed = compose_config(*smoke, "trainer.checkpoint_every_minutes=1e-9")
    plain_state, plain_rows = results(run(plain, tmp_path / "plain"))
    trainer = killed_at(timed, tmp_path / "timed", 9)
    assert trainer.saved_step == 8, "the last logging step before the kill, mid-epoch 2"
    assert trainer.relaunch_note() == (
        "a relaunch resumes from the checkpoint at step 8 and redoes 1 step"
    )
    with caplog.at_level(logging.INFO):
        timed_state, timed_rows = results(run(timed, tmp_path / "timed"))
    assert "resumed from the last checkpoint at step 8 of 12: epoch 2, 2 of its 6 steps done" in (
        caplog.text
    )
    assert timed_rows == plain_rows
    for key, value in plain_state.items():
        assert torch.equal(timed_state[key], value), key


def test_checkpoints_by_time_wait_for_a_logging_step_and_the_interval(tmp_path):
    config = compose_config("experiment=smoke", "trainer.device=cpu")
    trainer = Trainer(config, RunDir(tmp_path))
    assert not trainer.checkpoint_due(flushed=True), "five minutes have not passed"
    trainer.saved_at -= 5 * 60 + 1
    assert trainer.checkpoint_due(flushed=True) and not trainer.checkpoint_due(flushed=False)
    trainer.trainer["checkpoint_every_minutes"] = 0
    assert not trainer.checkpoint_due(flushed=True)


def test_before_the_first_checkpoint_a_relaunch_starts_over_and_says_so(tmp_path):
    config = compose_config("experiment=smoke", "trainer.device=cpu")
    trainer = killed_at(config, tmp_path, 3)
    assert trainer.saved_step is None
    assert trainer.relaunch_note() == "no checkpoint yet, so a relaunch starts over"


def test_a_runs_stability_is_its_worst_accuracy_fall_and_largest_loss_rise():
    from rootfree.train.diagnostics import training_stability

    rows = [
        {"epoch": 1, "train_acc": 0.5, "train_loss": 1.0},
        {"epoch": 2, "train_acc": 0.8, "train_loss": 0.5},
        {"epoch": 3, "train_acc": 0.6, "train_loss": 0.9},  # a fall of 0.2, a rise to 1.8x
        {"epoch": 4, "train_acc": 0.9, "train_loss": 0.4},
    ]
    assert training_stability(rows) == pytest.approx({"worst_acc_drop": 0.2, "loss_spike": 1.8})
    assert training_stability([]) == {}
