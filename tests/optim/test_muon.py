"""Muon against its authors' code (PyPI muon-optimizer 0.1.0, the repository's muon.py at 7a93fd1),
its parameter split, and its place in the registry and the paper's vocabulary.

The authors run Newton-Schulz in bfloat16 (``G.bfloat16()`` inside their function). For the
float64 comparisons their step runs with ``Tensor.bfloat16`` made the identity, so their own code
iterates in float64; ours runs with ``ns_dtype="float64"``. Their 0.1.0 cannot step a 4-D weight
(it adds the flattened update to it; fixed in the repository at c33a468), so the CNN is compared
at the level of their functions ``muon_update`` and ``adam_update``, stepped as their class does.
"""

from __future__ import annotations

import contextlib
import copy
import io

import pytest
import torch
from torch import nn

from rootfree.optim import (
    OPTIMIZERS,
    config_keys,
    create_optimizer,
    get_optimizer_spec,
    optimizer_arguments,
    to_paper_hparams,
)
from rootfree.optim.muon import Muon, hidden_matrices, muon_param_groups, newton_schulz

authors = pytest.importorskip("muon")  # pip install muon-optimizer==0.1.0

STEPS = 25
TOLERANCE = 1e-10
SETTINGS = dict(lr=0.02, momentum=0.95, weight_decay=0.1, adam_lr=3e-3, adam_weight_decay=0.05)


@contextlib.contextmanager
def authors_newton_schulz_in_input_dtype():
    """Run the authors' step with ``Tensor.bfloat16`` as the identity: their NS in float64."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


def mlp(dtype: torch.dtype) -> nn.Module:
    """Input layer, two hidden matrices (one tall, one wide), a head; biases everywhere."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(12, 16),
        nn.Tanh(),
        nn.Linear(16, 24),
        nn.Tanh(),
        nn.Linear(24, 8),
        nn.Tanh(),
        nn.Linear(8, 4),
    ).to(dtype)


def cnn(dtype: torch.dtype) -> nn.Module:
    """Conv weights (3x3 and 1x1), biases, a GroupNorm, a hidden Linear and a head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3),
        nn.GroupNorm(2, 6),
        nn.Tanh(),
        nn.Conv2d(6, 8, 3),
        nn.Tanh(),
        nn.Conv2d(8, 12, 1),  # tall once flattened: the authors scale by the kernel's axes
        nn.Flatten(),
        nn.Linear(48, 5),
        nn.Tanh(),
        nn.Linear(5, 3),
    ).to(dtype)


def batches(model: nn.Module, dtype: torch.dtype, n: int = STEPS):
    """n seeded (input, label) batches for ``model``."""
    generator = torch.Generator().manual_seed(1)
    shape = (8, 12) if isinstance(model[0], nn.Linear) else (8, 3, 6, 6)
    classes = model[-1].out_features
    return [
        (
            torch.randn(*shape, generator=generator, dtype=dtype),
            torch.randint(0, classes, (8,), generator=generator),
        )
        for _ in range(n)
    ]


def authors_groups(model: nn.Module, settings: dict) -> list[dict]:
    """The authors' MuonWithAuxAdam groups for our split, with ``settings`` in their names."""
    hidden = hidden_matrices(model)
    rest = [p for p in model.parameters() if all(p is not q for q in hidden)]
    return [
        dict(
            params=hidden,
            use_muon=True,
            lr=settings["lr"],
            momentum=settings["momentum"],
            weight_decay=settings["weight_decay"],
        ),
        dict(
            params=rest,
            use_muon=False,
            lr=settings["adam_lr"],
            betas=(0.9, 0.95),
            eps=1e-10,
            weight_decay=settings["adam_weight_decay"],
        ),
    ]


@torch.no_grad()
def authors_step(groups: list[dict], state: dict) -> None:
    """One step of the authors' SingleDeviceMuonWithAuxAdam through their own update functions;
    the Muon update is reshaped to the weight, as their repository does since c33a468."""
    for group in groups:
        for p in group["params"]:
            slot = state.setdefault(p, {})
            if group["use_muon"]:
                buffer = slot.setdefault("momentum_buffer", torch.zeros_like(p))
                update = authors.muon_update(p.grad, buffer, beta=group["momentum"])
            else:
                slot.setdefault("exp_avg", torch.zeros_like(p))
                slot.setdefault("exp_avg_sq", torch.zeros_like(p))
                slot["step"] = slot.get("step", 0) + 1
                update = authors.adam_update(
                    p.grad, slot["exp_avg"], slot["exp_avg_sq"], slot["step"], group["betas"],
                    group["eps"],
                )  # fmt: skip
            p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(update.reshape(p.shape), alpha=-group["lr"])


def gaps_against_authors(make, dtype, ns_dtype, step_authors) -> list[float]:
    """Per step, the largest relative parameter difference between our Muon and the authors'
    code fed the same gradients (our model's, cloned: their Nesterov overwrites p.grad)."""
    ours_model, their_model = make(dtype), make(dtype)
    ours = create_optimizer("muon", ours_model, ns_dtype=ns_dtype, **SETTINGS)
    step = step_authors(authors_groups(their_model, SETTINGS))
    gaps = []
    for x, y in batches(ours_model, dtype):
        ours.zero_grad()
        nn.functional.cross_entropy(ours_model(x), y).backward()
        for mine, theirs in zip(ours_model.parameters(), their_model.parameters()):
            theirs.grad = mine.grad.clone()
        ours.step()
        step()
        gaps.append(
            max(
                ((mine - theirs).norm() / theirs.norm()).item()
                for mine, theirs in zip(ours_model.parameters(), their_model.parameters())
            )
        )
    return gaps


def authors_class(float64: bool):
    """A stepper over the authors' installed SingleDeviceMuonWithAuxAdam."""

    def build(groups):
        optimizer = authors.SingleDeviceMuonWithAuxAdam(groups)

        def step():
            with authors_newton_schulz_in_input_dtype() if float64 else contextlib.nullcontext():
                optimizer.step()

        return step

    return build


def authors_functions(float64: bool):
    """A stepper over the authors' installed muon_update and adam_update."""

    def build(groups):
        state: dict = {}

        def step():
            with authors_newton_schulz_in_input_dtype() if float64 else contextlib.nullcontext():
                authors_step(groups, state)

        return step

    return build


def test_mlp_matches_the_authors_optimizer_in_float64():
    gaps = gaps_against_authors(mlp, torch.float64, "float64", authors_class(float64=True))
    assert len(gaps) >= 20 and max(gaps) < TOLERANCE, gaps


def test_cnn_matches_the_authors_update_functions_in_float64():
    gaps = gaps_against_authors(cnn, torch.float64, "float64", authors_functions(float64=True))
    assert len(gaps) >= 20 and max(gaps) < TOLERANCE, gaps


@pytest.mark.parametrize(
    "make,step_authors", [(mlp, authors_class(False)), (cnn, authors_functions(False))]
)
def test_the_authors_bfloat16_default_is_reproduced_bitwise(make, step_authors):
    """Newton-Schulz in bfloat16 on float32 weights: the same operations, so the same bits."""
    gaps = gaps_against_authors(make, torch.float32, "bfloat16", step_authors)
    assert max(gaps) == 0.0, gaps


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (4, 3, 3, 3), (8, 3, 1, 1), (2, 3, 5)])
@pytest.mark.parametrize("nesterov,ns_steps", [(True, 5), (False, 5), (True, 3)])
def test_one_update_equals_the_authors_muon_update(shape, nesterov, ns_steps):
    """Our functional core against theirs for tall, wide, square, conv and batched tensors."""
    from rootfree.optim.muon import orthogonalized_update

    generator = torch.Generator().manual_seed(2)
    grad = torch.randn(shape, generator=generator, dtype=torch.float64)
    buffer = torch.randn(shape, generator=generator, dtype=torch.float64)
    ours_buffer, their_buffer = buffer.clone(), buffer.clone()
    ours = orthogonalized_update(
        grad, ours_buffer, momentum=0.9, nesterov=nesterov, ns_steps=ns_steps, dtype="float64"
    )
    with authors_newton_schulz_in_input_dtype():
        theirs = authors.muon_update(
            grad.clone(), their_buffer, beta=0.9, ns_steps=ns_steps, nesterov=nesterov
        )
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12 * theirs.abs().max())
    assert torch.equal(ours_buffer, their_buffer)


def test_newton_schulz_lands_singular_values_near_one():
    """The quintic pushes a well-conditioned input's singular values near 1, not onto it."""
    matrix = torch.randn(64, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = torch.linalg.svdvals(newton_schulz(matrix * 1e-3, 5, torch.float64))
    assert 0.6 < values.min() and values.max() < 1.2


def test_step_leaves_the_gradients_alone():
    model = mlp(torch.float64)
    optimizer = create_optimizer("muon", model, ns_dtype="float64")
    x, y = batches(model, torch.float64, 1)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    optimizer.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


# --- the parameter split -------------------------------------------------------------------


class TinyTransformerLike(nn.Module):
    """Embedding, position embedding, hidden Linears, a norm, a head (tied or not)."""

    def __init__(self, tied: bool = False):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 6))
        self.qkv = nn.Linear(6, 18)
        self.proj = nn.Linear(18, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 10, bias=False)
        if tied:
            self.head.weight = self.embed.weight


def split_names(optimizer: torch.optim.Optimizer, model: nn.Module) -> tuple[set, set]:
    """(names Muon steps, names the AdamW steps)."""
    names = {id(p): n for n, p in model.named_parameters()}
    kinds: dict[bool, set] = {True: set(), False: set()}
    for group in optimizer.param_groups:
        kinds[group["use_muon"]] |= {names[id(p)] for p in group["params"]}
    return kinds[True], kinds[False]


def test_hidden_matrices_go_to_muon_embeddings_head_and_the_rest_to_adamw():
    model = TinyTransformerLike()
    muon, adam = split_names(create_optimizer("muon", model), model)
    assert muon == {"qkv.weight", "proj.weight"}
    assert adam == {
        "embed.weight",
        "pos_embed",
        "qkv.bias",
        "proj.bias",
        "norm.weight",
        "norm.bias",
        "head.weight",
    }
    tied = TinyTransformerLike(tied=True)
    assert split_names(create_optimizer("muon", tied), tied)[0] == {"qkv.weight", "proj.weight"}


def test_a_convnet_keeps_its_first_convolution_and_head_on_adamw():
    """The authors' README: Muon for every convolution filter except the first one."""
    model = cnn(torch.float32)
    muon, adam = split_names(create_optimizer("muon", model), model)
    assert muon == {"3.weight", "5.weight", "7.weight"}
    biases = {"0.bias", "3.bias", "5.bias", "7.bias", "9.bias"}
    assert adam == {"0.weight", "1.weight", "1.bias", "9.weight"} | biases


def test_bare_params_split_by_ndim_and_groups_keep_their_own_settings():
    model = cnn(torch.float32)
    frozen, rest = list(model[0].parameters()), list(model[1:].parameters())
    optimizer = Muon(
        [{"params": frozen, "lr": 0.0, "adam_lr": 0.0}, {"params": rest, "weight_decay": 0.0}],
        weight_decay=0.1,
        adam_weight_decay=0.05,
    )
    settings = [(g["use_muon"], g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    assert settings == [(True, 0.0, 0.1), (False, 0.0, 0.05), (True, 0.02, 0.0), (False, 3e-4, 0.0)]
    assert optimizer.param_groups[2]["params"] == [p for p in rest if p.ndim >= 2]
    before = [p.clone() for p in frozen]
    for x, y in batches(model, torch.float32, 3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(frozen, before))


def test_groups_in_the_authors_layout_are_taken_as_they_are():
    model = mlp(torch.float32)
    optimizer = Muon(authors_groups(model, SETTINGS))
    muon_group, adam_group = optimizer.param_groups
    assert {k: v for k, v in muon_group.items() if k != "params"} == {
        "use_muon": True,
        "lr": 0.02,
        "momentum": 0.95,
        "weight_decay": 0.1,
        "nesterov": True,
        "ns_steps": 5,
        "ns_dtype": "bfloat16",
    }
    assert {k: v for k, v in adam_group.items() if k != "params"} == {
        "use_muon": False,
        "lr": 3e-3,
        "betas": (0.9, 0.95),
        "eps": 1e-10,
        "weight_decay": 0.05,
    }
    with pytest.raises(ValueError, match=r"Muon takes tensors of two or more axes"):
        Muon([{"params": [model[0].bias], "use_muon": True}])


def test_decay_1d_false_turns_the_adamw_decay_off_for_biases_and_norms_only():
    model = cnn(torch.float32)
    optimizer = create_optimizer(
        "muon", model, decay_1d=False, weight_decay=0.1, adam_weight_decay=0.01
    )
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay["3.weight"] == 0.1 and decay["0.weight"] == decay["9.weight"] == 0.01
    assert decay["0.bias"] == decay["1.weight"] == decay["9.bias"] == 0.0


# --- the registry, the vocabulary, the reference factory ------------------------------------


def test_the_spec_registers_muon_in_the_orthogonal_family():
    spec = get_optimizer_spec("muon")
    assert "muon" in OPTIMIZERS and spec.family == "orthogonal" and not spec.root_free
    assert spec.counterpart is None and spec.dtype_arguments == ("ns_dtype",)
    assert spec.param_groups is muon_param_groups
    assert {"lr", "momentum", "weight_decay", "adam_lr"} <= set(spec.search)
    assert {"adam_lr", "adam_momentum", "adam_lr_cov", "adam_damping"} <= set(config_keys("muon"))


def test_paper_names_and_adam_names_become_constructor_arguments():
    settings = dict(lr=0.05, momentum=0.9, weight_decay=0.01, adam_lr=1e-3, adam_lr_cov=0.01)
    arguments = optimizer_arguments("muon", settings)
    assert arguments == settings
    assert to_paper_hparams("muon", arguments) == dict(lr=0.05, momentum=0.9, weight_decay=0.01)
    optimizer = create_optimizer("muon", mlp(torch.float32), batch_size=8, **arguments)
    muon_group, adam_group = optimizer.param_groups
    assert (muon_group["lr"], muon_group["momentum"], muon_group["weight_decay"]) == (
        0.05,
        0.9,
        0.01,
    )
    assert adam_group["lr"] == 1e-3 and adam_group["betas"] == (0.9, 0.99)


@pytest.mark.parametrize(
    "arguments,message",
    [
        (dict(ns_dtype="float8"), "Invalid ns_dtype: 'float8'"),
        (dict(momentum=1.0), r"Invalid momentum value: 1.0 \(momentum must be in \[0, 1\)\)"),
        (dict(ns_steps=0), "Invalid ns_steps value: 0"),
        (dict(adam_lr_cov=0.0), "Invalid beta parameter at index 1: 1.0"),
    ],
)
def test_bad_settings_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        create_optimizer("muon", mlp(torch.float32), **arguments)


def test_the_reference_factory_builds_the_authors_optimizer_on_the_same_split():
    spec = get_optimizer_spec("muon")
    ours_model, their_model = mlp(torch.float32), mlp(torch.float32)
    ours = create_optimizer("muon", ours_model, **SETTINGS)
    theirs = spec.reference(their_model, **SETTINGS)
    assert type(theirs).__name__ == "SingleDeviceMuonWithAuxAdam"
    for x, y in batches(ours_model, torch.float32, 5):
        for model, optimizer in ((ours_model, ours), (their_model, theirs)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(ours_model.parameters(), their_model.parameters()))
    with pytest.raises(ValueError, match=r"no counterpart of \['nesterov'\]"):
        spec.reference(mlp(torch.float32), nesterov=False)


def test_the_reference_factory_names_the_fix_a_convnet_needs():
    """PyPI's 0.1.0 cannot step conv weights: the factory says so instead of failing mid-step."""
    from rootfree.optim.muon import _steps_conv_weights

    reference = get_optimizer_spec("muon").reference
    if _steps_conv_weights(authors.SingleDeviceMuonWithAuxAdam):
        assert type(reference(cnn(torch.float32))).__name__ == "SingleDeviceMuonWithAuxAdam"
    else:
        with pytest.raises(ValueError, match="cannot step 4-D weights.*c33a468"):
            reference(cnn(torch.float32))


# --- the contract of a rootfree optimizer --------------------------------------------------


def train(model, optimizer, data):
    for x, y in data:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_resume_from_a_weights_only_checkpoint_equals_the_uninterrupted_run():
    data = batches(cnn(torch.float32), torch.float32, 8)
    model = cnn(torch.float32)
    train(model, create_optimizer("muon", model, **SETTINGS), data)

    first = cnn(torch.float32)
    optimizer = create_optimizer("muon", first, **SETTINGS)
    train(first, optimizer, data[:3])
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed = cnn(torch.float32)
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = create_optimizer("muon", resumed, **SETTINGS)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    train(resumed, resumed_optimizer, data[3:])
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), model.parameters()))
    copy.deepcopy(resumed_optimizer)
    assert "Muon" in repr(resumed_optimizer)


def test_parameters_without_grad_are_left_alone_and_training_reduces_the_loss():
    model = cnn(torch.float32)
    optimizer = create_optimizer("muon", model, lr=0.05, adam_lr=1e-2)
    model[3].weight.requires_grad_(False)
    before = model[3].weight.clone()
    x, y = batches(model, torch.float32, 1)[0]
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert torch.equal(model[3].weight, before) and model[3].weight not in optimizer.state
    assert losses[-1] < 0.9 * losses[0]
