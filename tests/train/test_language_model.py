"""The trainer on the language-modelling task: bitwise resume, metrics that match their formulas,
the vocabulary check on resume, and the sweep objective's direction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rootfree.record import RunDir
from rootfree.tasks import CLASSIFICATION, LANGUAGE_MODEL
from rootfree.train.app import objective
from rootfree.train.loop import OtherData, Trainer
from tests.data.test_text import write_ptb
from tests.train.helpers import NEEDS_BF16_LSTM, compose_config, train_py
from tests.train.test_trainer import results, run


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_an_interrupted_language_model_resumes_bitwise(tmp_path, model):
    config = compose_config(
        "experiment=lm_smoke",
        f"model={model}",
        "dataset.characters=4000",  # 7 steps an epoch
        "trainer.checkpoint_every_steps=3",
    )
    straight_state, straight_rows = results(run(config, tmp_path / "straight"))
    assert run(config, tmp_path / "resumed", kill_at=10) is None  # in epoch 2, after a save
    resumed_state, resumed_rows = results(run(config, tmp_path / "resumed"))
    assert resumed_rows == straight_rows and [r["epoch"] for r in resumed_rows] == [1, 2]
    for key, value in straight_state.items():
        assert torch.equal(resumed_state[key], value), key


def test_evaluation_is_the_mean_next_token_loss_and_its_ppl_and_bpc(tmp_path):
    """Every validation token after the first, predicted once from at most ``context`` tokens
    before it, in windows cut here by hand; perplexity and bpc from the loss."""
    config = compose_config("experiment=lm_smoke", "trainer.epochs=1", "dataset.eval_batch_size=7")
    trainer = Trainer(config, RunDir(tmp_path / "run"))
    trainer.fit()
    row = trainer.run_dir.metrics()[-1]
    tokens, context = trainer.data.splits.val.long(), config["dataset"]["context"]
    trainer.model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(tokens) - 1, context):
            window = tokens[start : min(start + context + 1, len(tokens))]
            logits = trainer.model(window[None, :-1])[0].double()
            total += F.cross_entropy(logits, window[1:], reduction="sum").item()
            correct += (logits.argmax(-1) == window[1:]).sum().item()
    n = len(tokens) - 1
    assert row["val_loss"] == pytest.approx(total / n, rel=1e-5)
    assert row["val_acc"] == correct / n
    assert row["val_ppl"] == pytest.approx(math.exp(row["val_loss"]), rel=1e-12)
    assert row["val_bpc"] == pytest.approx(row["val_loss"] / math.log(2), rel=1e-12)
    assert row["tokens_per_second"] > 0 and "images_per_second" not in row


def test_word_level_runs_report_perplexity_but_no_bits_per_character(tmp_path):
    write_ptb(tmp_path / "ptb")
    config = compose_config(
        "dataset=ptb",
        "model=lstm",
        f"dataset.root={tmp_path / 'ptb'}",
        "dataset.context=4",
        "dataset.batch_size=2",
        "trainer.epochs=1",
    )
    trainer = Trainer(config, RunDir(tmp_path / "run"))
    row = trainer.fit()
    assert math.isfinite(row["val_ppl"]) and "val_bpc" not in row


def test_resuming_on_a_corpus_with_another_vocabulary_is_refused_in_one_line(tmp_path):
    for name, extra in (("a", ""), ("b", " zebra")):
        lines = {"train": [" the cat sat on the mat ", f" a dog ran{extra} "]}
        write_ptb(tmp_path / name, {**lines, "val": [" the cat ran "], "test": [" a dog sat "]})
    overrides = ["dataset=ptb", "model=lstm", "dataset.context=3", "dataset.batch_size=2"]
    first = compose_config(*overrides, f"dataset.root={tmp_path / 'a'}", "trainer.epochs=1")
    Trainer(first, RunDir(tmp_path / "run")).fit()
    other = compose_config(*overrides, f"dataset.root={tmp_path / 'b'}", "trainer.epochs=1")
    with pytest.raises(OtherData) as error:
        Trainer(other, RunDir(tmp_path / "run")).resume()
    message = str(error.value)
    assert message.startswith(f"Invalid dataset.root: '{tmp_path / 'b'}'; the corpus's vocabulary")
    assert "the checkpoint has 9 symbols, the data 10" in message and "\n" not in message


def test_a_context_too_long_is_refused_before_a_run_directory_is_written(tmp_path):
    done = train_py("experiment=lm_smoke", "dataset.context=5000", runs=tmp_path / "runs")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "rootfree: Invalid dataset.context: 5000; the validation split has 1000 tokens; "
        "choose at most 999"
    )
    assert not any((tmp_path / "runs").glob("*/*"))


def test_the_sweep_objective_is_higher_for_a_better_run_of_either_task():
    lm = compose_config("experiment=lm_smoke")
    images = compose_config("experiment=smoke")
    assert objective(lm, {"val_loss": 1.0}) > objective(lm, {"val_loss": 2.0})
    assert objective(images, {"val_acc": 0.9}) > objective(images, {"val_acc": 0.8})
    assert math.isnan(objective(lm, {"val_acc": 0.9}))
    assert (LANGUAGE_MODEL.primary.name, CLASSIFICATION.primary.name) == ("loss", "acc")


def test_epoch_tokens_set_the_evaluation_period_and_the_final_train_block(tmp_path):
    config = compose_config("experiment=lm_smoke", "dataset.epoch_tokens=1100")
    trainer = Trainer(config, RunDir(tmp_path / "run"))
    assert trainer.steps_per_epoch == 1100 // 32 // 16  # windows of 32 tokens, 16 a batch
    trainer.fit()
    assert [r["step"] for r in trainer.run_dir.metrics()] == [2, 4]
    final = trainer.run_dir.final_eval()
    assert trainer.eval_loaders["train"].targets == len(trainer.data.splits.val) - 1
    assert final["train_eval_ppl"] == pytest.approx(math.exp(final["train_eval_loss"]))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(["trainer.amp=bf16", "model=lstm"], marks=NEEDS_BF16_LSTM),
        ["trainer.amp=bf16", "trainer.channels_last=true", "optimizer=rootfree_shampoo"],
        pytest.param(["trainer.compile=true"], marks=pytest.mark.slow),
    ],
)
def test_precision_and_compile_options_train_a_language_model(tmp_path, overrides):
    config = compose_config("experiment=lm_smoke", "dataset.characters=4000", *overrides)
    trainer = Trainer(config, RunDir(tmp_path / "run"))
    trainer.fit()
    first, last = trainer.run_dir.metrics()
    assert math.isfinite(last["val_loss"]) and last["val_loss"] < first["val_loss"]
