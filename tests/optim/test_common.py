"""The contract every registered optimizer keeps as a plain torch optimizer."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from rootfree.optim import FAMILIES, OPTIMIZERS, create_optimizer, get_optimizer_spec
from rootfree.optim.spec import accepted_arguments
from rootfree.optim.vocabulary import from_paper_hparams, to_paper_hparams
from tests.optim.helpers import BATCH, batches, loss_fn, small_cnn, snapshot, train

NAMES = sorted(OPTIMIZERS)


def settings(name: str) -> dict:
    """The spec's bench settings (sane on a toy), with weight decay on where the method has it,
    so every piece of state is exercised."""
    spec = get_optimizer_spec(name)
    decay = {"weight_decay": 1e-3} if "weight_decay" in accepted_arguments(spec) else {}
    return {**decay, **spec.bench}


def make(name, model, **overrides):
    return create_optimizer(name, model, batch_size=BATCH, **{**settings(name), **overrides})


def frozen(name: str) -> dict:
    """A group's settings that stop every parameter in it: each learning rate at 0 (a method
    with a second optimizer inside, like Muon's AdamW, has one per half)."""
    keys = accepted_arguments(get_optimizer_spec(name))
    return {key: 0.0 for key in keys if key == "lr" or key.endswith("_lr")}


@pytest.mark.parametrize("name", NAMES)
def test_training_reduces_loss(name):
    model = small_cnn()
    data = batches(1) * 30
    losses = train(model, make(name, model), data)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_resume_from_weights_only_checkpoint_equals_uninterrupted(name):
    data = batches(12)
    model = small_cnn()
    optimizer = make(name, model)
    train(model, optimizer, data)
    expected = snapshot(model)

    model = small_cnn()
    optimizer = make(name, model)
    train(model, optimizer, data[:5])
    buffer = io.BytesIO()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    torch.save({**state, "rng": torch.get_rng_state()}, buffer)  # as the trainer saves it
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    resumed_model = small_cnn(seed=123)
    torch.set_rng_state(checkpoint["rng"])  # a method that draws (PSGD) draws alike
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = make(name, resumed_model)
    resumed.load_state_dict(checkpoint["optimizer"])
    train(resumed_model, resumed, data[5:])
    for got, want in zip(resumed_model.parameters(), expected):
        assert torch.equal(got, want)


STATE_DTYPES = ("state_dtype", "preconditioner_dtype")  # the names of a state's precision


@pytest.mark.parametrize(
    "name", [n for n in NAMES if set(OPTIMIZERS[n].dtype_arguments) & set(STATE_DTYPES)]
)
def test_resume_keeps_low_precision_state_dtype(name):
    (key,) = [k for k in OPTIMIZERS[name].dtype_arguments if k in STATE_DTYPES][:1]
    model = small_cnn()
    optimizer = make(name, model, **{key: "bfloat16"})
    train(model, optimizer, batches(3))
    fresh = make(name, model, **{key: "bfloat16"})
    fresh.load_state_dict(copy.deepcopy(optimizer.state_dict()))

    def dtypes(opt):
        found = set()
        for state in opt.state.values():
            for value in state.values():
                for t in value if isinstance(value, list) else [value]:
                    if torch.is_tensor(t) and t.is_floating_point() and t.ndim > 0:
                        found.add(t.dtype)
        return found

    assert torch.bfloat16 in dtypes(optimizer)
    assert dtypes(fresh) == dtypes(optimizer)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_keep_their_own_lr_and_weight_decay(name):
    model = small_cnn()
    still = list(model[0].parameters())
    decayed = list(model[5].parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in still + decayed)]
    groups = [
        {"params": still, **frozen(name)},
        {"params": decayed, "weight_decay": 0.5},
        {"params": rest},
    ]
    optimizer = make(name, groups)
    assert [g["lr"] for g in optimizer.param_groups][0] == 0.0
    before = snapshot(model)
    train(model, optimizer, batches(3))
    for p, old in zip(model[0].parameters(), before[:2]):
        assert torch.equal(p, old), "a group with lr=0 must not move"

    # The same run with the default weight decay on the middle group ends elsewhere.
    other = small_cnn()
    groups = [
        {"params": list(other[0].parameters()), **frozen(name)},
        {"params": list(other[5].parameters())},
        {"params": [p for i, m in enumerate(other) if i not in (0, 5) for p in m.parameters()]},
    ]
    other_optimizer = make(name, groups)
    train(other, other_optimizer, batches(3))
    assert not torch.allclose(model[5].weight, other[5].weight)


@pytest.mark.parametrize("name", NAMES)
def test_closure_is_evaluated_and_its_loss_returned(name):
    model = small_cnn()
    optimizer = make(name, model)
    x, y = batches(1)[0]
    calls = []

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model, x, y)
        loss.backward()
        calls.append(loss.item())
        return loss

    returned = optimizer.step(closure)
    assert calls and returned.item() == calls[0]

    reference = small_cnn()
    reference_optimizer = make(name, reference)
    train(reference, reference_optimizer, [(x, y)])
    for got, want in zip(model.parameters(), reference.parameters()):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_step_under_bf16_autocast_equals_plain_step(name):
    data = batches(4)

    def run(autocast_step):
        model = small_cnn()
        optimizer = make(name, model)
        for x, y in data:
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = loss_fn(model, x, y)
            loss.backward()
            if autocast_step:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    optimizer.step()
            else:
                optimizer.step()
        return snapshot(model)

    plain, under_autocast = run(False), run(True)
    assert all(p.dtype == torch.float32 for p in under_autocast)
    for got, want in zip(under_autocast, plain):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_without_grad_are_left_alone(name):
    model = small_cnn()
    optimizer = make(name, model)
    model[5].weight.requires_grad_(False)
    before = model[5].weight.clone()
    train(model, optimizer, batches(2))
    assert torch.equal(model[5].weight, before)
    assert model[5].weight not in optimizer.state


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_survives_deepcopy_and_repr(name):
    model = small_cnn()
    optimizer = make(name, model)
    train(model, optimizer, batches(1))
    assert type(optimizer).__name__ in repr(optimizer)
    copy.deepcopy(optimizer)


def settled_step(name: str, momentum: float, steps: int = 400) -> torch.Tensor:
    """The mean parameter step over the last 10 of ``steps`` on a linear loss, whose gradient
    (and curvature) never changes: a heavy-ball sum settles at lr u / (1 - momentum), an EMA
    at lr u."""
    torch.manual_seed(0)
    model, x, c = nn.Linear(6, 4, bias=False), torch.randn(BATCH, 6), torch.randn(BATCH, 4)
    arguments = {**settings(name), "weight_decay": 0.0}
    arguments.update(from_paper_hparams(name, momentum=momentum, **paper_lr_cov(name)))
    optimizer = make(name, model, **arguments)
    for step in range(steps):
        if step == steps - 10:
            before = model.weight.detach().clone()
        optimizer.zero_grad()
        (model(x) * c).sum().div(BATCH).backward()
        optimizer.step()
    return (model.weight.detach() - before) / 10


def paper_lr_cov(name: str) -> dict:
    """The bench's lr_cov in paper terms, so setting momentum keeps it (Adam's betas hold both)."""
    return {k: v for k, v in to_paper_hparams(name, settings(name)).items() if k == "lr_cov"}


@pytest.mark.parametrize(
    "name", [n for n in NAMES if "momentum" in get_optimizer_spec(n).paper_names]
)
def test_a_declared_heavy_ball_momentum_scales_the_settled_step_by_one_over_one_minus_it(name):
    """Momentum 0.9 against 0.5 at the same lr: the settled step grows (1 - 0.5) / (1 - 0.9) = 5
    times where the spec declares momentum heavy-ball, and stays where it does not."""
    low, high = settled_step(name, 0.5), settled_step(name, 0.9)
    ratio = float((high * low).sum() / (low * low).sum())
    declared = "momentum" in get_optimizer_spec(name).heavy_ball
    assert ratio == pytest.approx(5.0 if declared else 1.0, rel=0.1)


def test_spec_metadata_is_consistent():
    for spec in OPTIMIZERS.values():
        assert spec.family in FAMILIES
        if spec.counterpart is not None:  # a root-free method against its root-based form
            counterpart = get_optimizer_spec(spec.counterpart)
            assert spec.root_free and not counterpart.root_free
            assert counterpart.family == spec.family


def test_renamed_arguments_still_work_for_a_release_with_a_warning_and_old_checkpoints_load():
    from rootfree.optim import PreconditionedOptimizer, RootFreeShampoo, Shampoo
    from rootfree.optim.base import RootfreeOptimizer

    assert RootfreeOptimizer is PreconditionedOptimizer
    assert all(issubclass(c, PreconditionedOptimizer) for c in (RootFreeShampoo, Shampoo))
    params = [torch.nn.Parameter(torch.randn(3, 2))]
    with pytest.warns(DeprecationWarning, match="batched= is now foreach="):
        old = RootFreeShampoo(params, batch_size=4, batched=True)
    assert old.param_groups[0]["foreach"] is True and "batched" not in old.param_groups[0]
    with pytest.warns(DeprecationWarning, match="use_bias_correction= is now bias_correction="):
        shampoo = Shampoo(params, use_bias_correction=True)
    assert shampoo.param_groups[0]["bias_correction"] is True
    saved = old.state_dict()
    saved["param_groups"][0]["batched"] = saved["param_groups"][0].pop("foreach")
    fresh = RootFreeShampoo(params, batch_size=4)
    fresh.load_state_dict(saved)  # a checkpoint written before the rename
    assert fresh.param_groups[0]["foreach"] is True
