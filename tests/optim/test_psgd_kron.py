"""PSGD-Kron against trajectories recorded from the authors' code (github.com/lixilinx/psgd_torch).

tests/optim/data/psgd_kron/README.md says how the file was recorded: the authors' ``KronWhiten``
(and their torch.optim wrapper ``KWNS4`` for weight decay and momentum whitening) stepped the
models below in float64 on the batches below, the update's random draws seeded by
``torch.manual_seed``. The reference code is not part of rootfree (its repository has no
licence); only its trajectories are.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import rootfree.optim
from rootfree.optim import create_optimizer, optimizer_arguments, to_paper_hparams
from rootfree.optim.psgd_kron import PSGDKron, precondition, preconditioner_shape

DATA = Path(__file__).parent / "data" / "psgd_kron" / "trajectories.pt"
STEPS = 20
TOLERANCE = 1e-10
SEED = 2024  # torch.manual_seed before the first step: the update's random draws

# rootfree's arguments of each recorded run; the README gives the authors' names for them.
CASES = {
    "mlp_kronwhiten_defaults": dict(model="mlp", reference="KronWhiten", settings=dict(lr=0.02)),
    "cnn_kronwhiten_momentum": dict(
        model="cnn",
        reference="KronWhiten",
        settings=dict(
            lr=0.01,
            lr_preconditioner=0.3,
            damping=1e-6,
            momentum=0.9,
            beta_lipschitz=0.95,
            grad_clip_max_amps=(0.5, 1.0),
            preconditioner_update_probability=0.6,
            update_preconditioner_first=False,
            preconditioner_init_scale=0.5,
        ),
    ),
    "mlp_kwns4_weight_decay": dict(
        model="mlp",
        reference="KWNS4",
        settings=dict(
            lr=0.005,
            lr_preconditioner=0.5,
            damping=1e-9,
            momentum=0.9,
            weight_decay=0.05,
            whiten_grad=False,
            preconditioner_init_scale=1.0,
        ),
    ),
}


def build_model(name: str) -> nn.Module:
    """The float64 test models: an MLP (with a scalar bias) and a CNN (4-d conv, 1x1 conv, BN)."""
    torch.manual_seed(0)
    if name == "mlp":
        layers = [nn.Linear(4, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(6, 1)).double()
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.Tanh(),
        nn.Conv2d(3, 3, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 2),
    ).double()


def batches(name: str, steps: int = STEPS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One fixed batch per step, from their own generator (the global one is the optimizer's)."""
    generator = torch.Generator().manual_seed(7)
    if name == "mlp":
        x = torch.randn(steps, 16, 4, generator=generator, dtype=torch.float64)
        y = torch.randn(steps, 16, 1, generator=generator, dtype=torch.float64)
    else:
        x = torch.randn(steps, 8, 2, 6, 6, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 2, (steps, 8), generator=generator)
    return list(zip(x, y))


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error for the MLP, cross-entropy for the CNN."""
    out = model(x)
    if y.dtype == torch.int64:
        return nn.functional.cross_entropy(out, y)
    return nn.functional.mse_loss(out, y)


def probes(model: nn.Module) -> list[torch.Tensor]:
    """A fixed random tensor per parameter, in the squeezed shape the preconditioner acts on."""
    generator = torch.Generator().manual_seed(11)
    return [
        torch.randn(p.shape, generator=generator, dtype=torch.float64).squeeze()
        for p in model.parameters()
    ]


def factor_grams(factors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Q^T Q of each factor, its upper triangle (q * q for a diagonal): what P depends on, not
    Q's rotation."""
    grams = []
    for q in factors:
        if q.ndim < 2:
            grams.append((q * q).reshape(-1))
        else:
            rows, columns = torch.triu_indices(*q.shape)
            grams.append((q.T @ q)[rows, columns])
    return grams


def record(model, step, factors_of, precondition_of, lipschitz_of, data) -> dict:
    """Step ``model`` through ``data`` and stack, per step, the loss, each parameter, each
    factor's Q^T Q, each P applied to its probe and the Lipschitz estimates.

    ``step(x, y)`` makes one optimizer step and returns the loss; for the i-th parameter,
    ``factors_of(i)`` gives its factors, ``precondition_of(i, v)`` P v and ``lipschitz_of(i)``
    its Lipschitz estimates, one per factor.
    """
    params = list(model.parameters())
    probe = probes(model)
    rows: dict[str, list] = {"loss": [], "params": [], "grams": [], "probes": [], "lipschitz": []}
    for x, y in data:
        rows["loss"].append(step(x, y).detach().reshape(1))
        rows["params"].append([p.detach().reshape(-1).clone() for p in params])
        grams = [factor_grams(factors_of(i)) for i in range(len(params))]
        rows["grams"].append([g for gs in grams for g in gs])
        rows["probes"].append([precondition_of(i, v).reshape(-1) for i, v in enumerate(probe)])
        lipschitz = [ell for i in range(len(params)) for ell in lipschitz_of(i)]
        rows["lipschitz"].append([torch.stack([torch.as_tensor(e).double() for e in lipschitz])])
    return {
        "loss": torch.cat(rows["loss"]),
        **{
            key: [torch.stack(column) for column in zip(*rows[key])]
            for key in ("params", "grams", "probes", "lipschitz")
        },
    }


@pytest.fixture(scope="module")
def recorded() -> dict:
    return torch.load(DATA, weights_only=True)


def run_rootfree(case: str, initial: list[torch.Tensor], **changes) -> dict:
    """Our PSGDKron through the case's steps, recorded as the reference was."""
    spec = CASES[case]
    model = build_model(spec["model"])
    with torch.no_grad():
        for p, value in zip(model.parameters(), initial):
            p.copy_(value)
    params = list(model.parameters())
    optimizer = PSGDKron(params, **{**spec["settings"], **changes})

    def step(x, y):
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        optimizer.step()
        return loss

    def factors(i):
        return optimizer.state[params[i]]["factors"]

    torch.manual_seed(SEED)
    return record(
        model,
        step,
        factors,
        lambda i, v: precondition(factors(i), v.reshape(preconditioner_shape(params[i].shape))),
        lambda i: list(optimizer.state[params[i]]["lipschitz"]),
        batches(spec["model"]),
    )


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """The largest, over steps, of ||got - want|| / ||want||."""
    scale = torch.linalg.vector_norm(want, dim=-1).clamp(min=torch.finfo(want.dtype).tiny)
    return (torch.linalg.vector_norm(got - want, dim=-1) / scale).max().item()


def trajectory_errors(got: dict, want: dict) -> dict[str, float]:
    """The largest relative error of each recorded quantity (parameters also as displacements)."""
    errors = {"loss": relative_error(got["loss"][:, None], want["loss"][:, None])}
    for key in ("params", "grams", "probes", "lipschitz"):
        assert len(got[key]) == len(want[key]), key
        errors[key] = max(relative_error(g, w) for g, w in zip(got[key], want[key]))
    errors["displacement"] = max(
        relative_error(g[1:] - g[:1], w[1:] - w[:1]) for g, w in zip(got["params"], want["params"])
    )
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectory_matches_the_authors_code(recorded, case):
    want = recorded[case]
    assert want["steps"] == STEPS and want["seed"] == SEED
    assert dict(want["settings"]) == {
        k: list(v) if isinstance(v, tuple) else v for k, v in CASES[case]["settings"].items()
    }
    got = run_rootfree(case, want["initial"])
    errors = trajectory_errors(got, want)
    assert max(errors.values()) < TOLERANCE, errors
    assert errors["displacement"] < TOLERANCE


def test_a_changed_setting_leaves_the_recorded_trajectory(recorded):
    """The comparison is sharp: a slightly different preconditioner step is caught."""
    want = recorded["mlp_kronwhiten_defaults"]
    got = run_rootfree("mlp_kronwhiten_defaults", want["initial"], lr_preconditioner=0.1001)
    assert trajectory_errors(got, want)["grams"] > 1e-6


def test_the_recorded_runs_cover_every_branch(recorded):
    """Between them the runs rebalance factors, clip steps and skip refits (README)."""
    keys = recorded[next(iter(CASES))]["events"]
    counts = {key: sum(recorded[case]["events"][key] for case in CASES) for key in keys}
    assert all(n > 0 for n in counts.values()), counts


def test_the_update_is_matmul_only():
    """No decomposition, solve, inverse or root of a matrix: steps call matmuls, elementwise
    ops and vector norms; a square root only of the step's mean square (a scalar)."""
    from torch.overrides import TorchFunctionMode, resolve_name

    class Calls(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names: list[tuple[str, tuple[int, ...]]] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            shape = tuple(args[0].shape) if args and torch.is_tensor(args[0]) else ()
            self.names.append((resolve_name(func) or repr(func), shape))
            return func(*args, **(kwargs or {}))

    model = build_model("cnn")
    optimizer = PSGDKron(model.parameters(), momentum=0.9)
    data = batches("cnn", 3)
    for x, y in data[:1]:
        loss_of(model, x, y).backward()
        optimizer.step()
    calls = Calls()
    for x, y in data[1:]:
        optimizer.zero_grad()
        loss_of(model, x, y).backward()
        with calls:
            optimizer.step()
    names = {name for name, _ in calls.names}
    assert "torch.Tensor.matmul" in names
    linalg = {n for n in names if "linalg" in n} - {"torch.linalg.vector_norm"}
    forbidden = {"eig", "eigh", "svd", "qr", "cholesky", "cholesky_solve", "lu", "lu_solve"}
    forbidden |= {"triangular_solve", "solve_triangular", "inverse", "pinverse", "matrix_power"}
    assert not linalg and not {n for n in names if n.split(".")[-1] in forbidden}
    roots = [(n, s) for n, s in calls.names if n.split(".")[-1] in {"sqrt", "rsqrt", "pow"}]
    assert roots and all(shape == () for _, shape in roots), roots


def test_factors_follow_the_authors_shape_rules():
    model = build_model("cnn")
    optimizer = PSGDKron(model.parameters())
    loss_of(model, *batches("cnn", 1)[0]).backward()
    optimizer.step()
    shapes = [[tuple(q.shape) for q in optimizer.state[p]["factors"]] for p in model.parameters()]
    assert shapes == [
        [(3, 3), (2, 2), (3, 3), (3, 3)],  # conv weight (3, 2, 3, 3): all dense
        [(3,)],  # biases and BN scales: diagonal
        [(3,)],
        [(3,)],
        [(3, 3), (3, 3)],  # 1x1 conv weight, its size-1 axes squeezed
        [(3,)],
        [(2, 2), (12,)],  # linear (2, 12): 12^2 > 24, diagonal
        [(2,)],
    ]


def test_registry_factory_and_vocabulary():
    spec = rootfree.optim.get_optimizer_spec("psgd_kron")
    assert spec.family == "kronecker" and spec.root_free and spec.counterpart is None
    arguments = optimizer_arguments(
        "psgd_kron",
        dict(lr=0.01, momentum=0.9, lr_cov=0.2, damping=1e-8, weight_decay=0.01, whiten_grad=False),
    )
    assert arguments == dict(
        lr=0.01,
        momentum=0.9,
        lr_preconditioner=0.2,
        damping=1e-8,
        weight_decay=0.01,
        whiten_grad=False,
    )
    paper = to_paper_hparams("psgd_kron", arguments)
    assert paper == dict(lr=0.01, momentum=0.9, lr_cov=0.2, damping=1e-8, weight_decay=0.01)
    defaults = to_paper_hparams("psgd_kron", {})
    assert defaults == {k: spec.defaults[k] for k in defaults}

    model = build_model("mlp")
    optimizer = create_optimizer("psgd_kron", model, batch_size=16, **arguments)
    assert isinstance(optimizer, PSGDKron)
    assert optimizer.param_groups[0]["lr_preconditioner"] == 0.2
    x, y = batches("mlp", 1)[0]
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0]


def test_bf16_preconditioner_and_resume_keep_their_dtypes():
    model = build_model("mlp").float()
    optimizer = create_optimizer("psgd_kron", model, preconditioner_dtype="bfloat16", momentum=0.9)
    for x, y in batches("mlp", 3):
        optimizer.zero_grad()
        loss_of(model, x.float(), y.float()).backward()
        optimizer.step()
    state = optimizer.state[model[0].weight]
    assert {q.dtype for q in state["factors"]} == {torch.bfloat16}
    assert state["lipschitz"].dtype == torch.float32
    fresh = create_optimizer("psgd_kron", model, preconditioner_dtype="bfloat16", momentum=0.9)
    fresh.load_state_dict(optimizer.state_dict())
    assert fresh.state[model[0].weight]["factors"][1].dtype == torch.bfloat16


def test_resume_is_bitwise_when_the_global_generator_is_restored():
    """The update draws from torch's default generator, so a bitwise resume restores its state
    beside the optimizer's (rootfree's trainer checkpoints both)."""
    data = batches("cnn", 6)

    def train(model, optimizer, steps):
        for x, y in steps:
            optimizer.zero_grad()
            loss_of(model, x, y).backward()
            optimizer.step()

    def fresh():
        model = build_model("cnn")
        return model, PSGDKron(model.parameters(), lr=0.01, momentum=0.9)

    model, optimizer = fresh()
    torch.manual_seed(SEED)
    train(model, optimizer, data)
    expected = [p.detach().clone() for p in model.parameters()]

    model, optimizer = fresh()
    torch.manual_seed(SEED)
    train(model, optimizer, data[:3])
    buffer = io.BytesIO()
    saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    torch.save({**saved, "rng": torch.get_rng_state()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    model, optimizer = fresh()  # reseeds the default generator, as a new process would differ
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"])
    train(model, optimizer, data[3:])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), expected))


@pytest.mark.parametrize(
    "arguments,message",
    [
        (dict(lr_preconditioner=0.0), "lr_preconditioner"),
        (dict(grad_clip_max_amps=(3.0, 2.0)), "grad_clip_max_amps"),
        (dict(whiten_grad=False), "needs momentum > 0"),
        (dict(preconditioner_init_scale=0.0), "preconditioner_init_scale"),
        (dict(preconditioner_dtype="int8"), "preconditioner_dtype"),
    ],
)
def test_bad_settings_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        PSGDKron([nn.Parameter(torch.zeros(2, 2))], **arguments)
