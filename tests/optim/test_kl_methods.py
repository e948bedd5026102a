"""KL-Shampoo and KL-SOAP against trajectories recorded from the authors' ``KLOpt``
(github.com/yorkerlin/KL-Methods, ``optim/kl_opt.py`` at a02e622), and their registry entries.

The recordings (tests/optim/data/kl_methods/README.md) hold, per call, the gradient fed, the
parameter after the call and basis-invariant state: each factor S_n, Q_n diag(s_n^2) Q_n^T, the
momentum in the parameter's coordinates and, for KL-SOAP, the second moment applied to a fixed
probe. Refreshes (T = 3) fall at calls 4, 7, ..., 19 of 21, so steps on both sides of each are
compared. Everything runs in float64 with the eigendecomposition and QR in float64.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import rootfree.optim.kl_shampoo as kl
from rootfree.optim import (
    OPTIMIZERS,
    create_optimizer,
    from_paper_hparams,
    get_optimizer_spec,
    to_paper_hparams,
)
from rootfree.optim.kl_shampoo import KLSOAP, KLShampoo, project, project_back
from rootfree.optim.spec import argument_defaults
from tests.optim.helpers import batches, small_cnn, snapshot, train

DATA = Path(__file__).parent / "data" / "kl_methods"
TOLERANCE = 1e-10
RECORDINGS = [
    "mlp_kl_shampoo",
    "mlp_kl_soap",
    "mlp_kl_shampoo_variant",
    "cnn_kl_shampoo",
    "cnn_kl_soap",
]


def load(name: str) -> tuple[dict, dict]:
    record = torch.load(DATA / f"{name}.pt", weights_only=True)
    return record, json.loads(record["meta"])


def build(record: dict, meta: dict) -> tuple[dict[str, nn.Parameter], torch.optim.Optimizer]:
    """The recording's parameters and our optimizer with its settings, everything in float64."""
    settings = meta["settings"]
    params = {n: nn.Parameter(record[f"{n}/param0"].clone()) for n in meta["names"]}
    optimizer = create_optimizer(
        meta["method"],
        list(params.values()),
        lr=settings["lr"],
        betas=tuple(settings["betas"]),
        eps=settings["eps"],
        weight_decay=settings["weight_decay"],
        update_every=settings["precondition_frequency"],
        init_factor=settings.get("init_factor", 0.1),
        curvature_damping=settings.get("using_damping", False),
        preconditioner_dtype="float64",
        basis_dtype="float64",
    )
    return params, optimizer


def invariants(state: dict, soap: bool, probe: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The recording's keys from our state: nothing that depends on the eigenvectors' signs."""
    out = {}
    for n, (factor, basis, root) in enumerate(
        zip(state["factors"], state["bases"], state["inverse_roots"])
    ):
        if basis is None:
            out[f"inverse{n}"] = root.square()
        else:
            out[f"factor{n}"] = factor
            out[f"inverse{n}"] = (basis * root.square()) @ basis.T
    bases = state["bases"]
    out["momentum"] = project_back(state["exp_avg"], bases) if soap else state["exp_avg"]
    if soap:
        out["second_moment"] = project_back(project(probe, bases) * state["exp_avg_sq"], bases)
    return out


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp(min=1e-300)).item()


def replay_and_compare(name: str, calls: range | None = None) -> None:
    record, meta = load(name)
    params, optimizer = build(record, meta)
    soap = meta["method"] == "kl_soap"
    for call in range(meta["calls"]) if calls is None else calls:
        for n, p in params.items():
            p.grad = record[f"{n}/grad"][call].clone()
        optimizer.step()
        for n, p in params.items():
            got = {"param": p.detach()}
            got.update(invariants(optimizer.state[p], soap, record.get(f"{n}/probe")))
            for key, value in got.items():
                error = relative_error(value, record[f"{n}/{key}"][call])
                assert error <= TOLERANCE, f"{name}, call {call + 1}, {n}/{key}: {error:.2e}"


@pytest.mark.parametrize("name", RECORDINGS)
def test_trajectory_matches_the_authors_recording(name):
    record, meta = load(name)
    assert meta["calls"] >= 21 and meta["settings"]["precondition_frequency"] == 3
    replay_and_compare(name)


def authors_order_3(grad, factors, bases, roots, beta, damping, inverse_root_clamp):
    """The authors' order-3 path composed from the public core: S_3, S_2 and d_3 from the old
    s, then d_2 with the new s_3, then S_1 and d_1 with the new s_2 and the old s_3."""
    assert damping == 0.0
    numel, old = grad.numel(), list(roots)

    def factor(n, gram):
        factors[n].mul_(beta).add_(gram, alpha=(1.0 - beta) / (numel / grad.shape[n]))

    def eigenvalues(n, diagonal):
        bound = kl.clamp_bound(grad.shape[n], inverse_root_clamp)
        roots[n] = kl.updated_inverse_root(roots[n], diagonal, beta, bound)

    grams, diagonals = kl.whitened_statistics(grad, bases, old)
    factor(2, grams[2])
    factor(1, grams[1])
    eigenvalues(2, diagonals[2])
    _, diagonals = kl.whitened_statistics(grad, bases, [old[0], old[1], roots[2]])
    eigenvalues(1, diagonals[1])
    grams, diagonals = kl.whitened_statistics(grad, bases, [old[0], roots[1], old[2]])
    factor(0, grams[0])
    eigenvalues(0, diagonals[0])


def test_order_3_statistics_match_the_authors_order_3_path(monkeypatch):
    """Our contractions on a 3-tensor (nn.Bilinear's weight), put in the authors' order, give
    their recording: the order-3 arithmetic is theirs."""
    monkeypatch.setattr(kl, "update_preconditioner_", authors_order_3)
    replay_and_compare("bilinear_kl_shampoo")


def test_order_3_updates_every_axis_from_the_previous_state_unlike_the_authors():
    """The authors' order-3 path reads s_3 and s_2 after updating them, in part (their order-2
    path and their own comments do not); ours updates every axis from the previous state. At
    the first update only S_3, S_2 and d_3 agree; after 20 steps the parameters differ by about
    20% of their norm in this recording."""
    record, meta = load("bilinear_kl_shampoo")
    params, optimizer = build(record, meta)
    (name, param), keys = next(iter(params.items())), {}
    for call in range(2):
        param.grad = record[f"{name}/grad"][call].clone()
        optimizer.step()
    got = invariants(optimizer.state[param], False, None)
    for key in ("factor2", "factor1", "inverse2", "factor0", "inverse0", "inverse1"):
        keys[key] = relative_error(got[key], record[f"{name}/{key}"][1])
    assert max(keys[k] for k in ("factor2", "factor1", "inverse2")) <= TOLERANCE
    assert min(keys[k] for k in ("factor0", "inverse0", "inverse1")) > 1e-6


def test_a_vector_keeps_no_factor_and_follows_the_diagonal_rule():
    """A vector has the identity as its basis: KL-Shampoo is then RMSProp-like with its
    eigenvalue estimate started at init_factor and clamped; KL-SOAP is Adam without bias
    correction. Both skip the first step."""
    generator = torch.Generator().manual_seed(0)
    p0 = torch.randn(12, generator=generator, dtype=torch.float64)
    scales = torch.linspace(0.01, 0.3, 12, dtype=torch.float64)
    grads = [scales * torch.randn(12, generator=generator, dtype=torch.float64) for _ in range(8)]
    lr, (beta1, beta2), eps, wd = 0.1, (0.9, 0.7), 1e-3, 0.05
    for cls in (KLShampoo, KLSOAP):
        param = nn.Parameter(p0.clone())
        optimizer = cls([param], lr, (beta1, beta2), eps, wd, update_every=2, init_factor=0.02,
                        preconditioner_dtype="float64", basis_dtype="float64")  # fmt: skip
        p, m, v = p0.clone(), torch.zeros(12, dtype=torch.float64), torch.zeros_like(p0)
        s = torch.full((12,), 0.02, dtype=torch.float64).rsqrt()
        for call, g in enumerate(grads):
            param.grad = g.clone()
            optimizer.step()
            if call > 0:
                m = beta1 * m + (1 - beta1) * g
                if cls is KLShampoo:
                    direction = m * s / (1 + eps * s)
                else:
                    v = beta2 * v + (1 - beta2) * g * g
                    direction = m / (v.sqrt() + eps)
                d = beta2 / s**2 + (1 - beta2) * g * g
                s = d.rsqrt().clamp(max=12.0)
                p = p - lr * direction
                p = p - lr * wd * p
            state = optimizer.state[param]
            assert state["factors"] == [None] and state["bases"] == [None]
            torch.testing.assert_close(param.detach(), p, rtol=1e-13, atol=0)
            torch.testing.assert_close(state["inverse_roots"][0], s, rtol=1e-13, atol=0)
        assert (s == 12.0).any() and (s < 12.0).any()  # the clamp at max(10, min(12, 4000))


def test_an_axis_past_max_preconditioner_dim_keeps_the_identity_basis():
    """A (3, 6) matrix with max_preconditioner_dim=4: axis 0 keeps a factor, axis 1 none; the
    first update's statistics are G diag(s_1^2) G^T / 6 and diag(Q_0^T G diag(s_1^2) G^T Q_0)
    for axis 0 and the column means of (diag(s_0) Q_0^T G)^2 for axis 1."""
    generator = torch.Generator().manual_seed(1)
    g0, g1 = (torch.randn(3, 6, generator=generator, dtype=torch.float64) for _ in range(2))
    param = nn.Parameter(torch.zeros(3, 6, dtype=torch.float64))
    optimizer = KLShampoo([param], max_preconditioner_dim=4, preconditioner_dtype="float64",
                          basis_dtype="float64", inverse_root_clamp=None)  # fmt: skip
    beta = 0.98
    param.grad = g0
    optimizer.step()
    state = optimizer.state[param]
    assert state["bases"][1] is None and state["factors"][1] is None
    factor0, q0 = state["factors"][0].clone(), state["bases"][0].clone()
    torch.testing.assert_close(factor0, (1 - beta) * g0 @ g0.T / 6, rtol=1e-14, atol=0)
    s0, s1 = (r.clone() for r in state["inverse_roots"])
    param.grad = g1
    optimizer.step()
    gram = g1 @ torch.diag(s1**2) @ g1.T
    torch.testing.assert_close(
        state["factors"][0], beta * factor0 + (1 - beta) * gram / 6, rtol=1e-13, atol=0
    )
    d0 = beta / s0**2 + (1 - beta) * torch.diag(q0.T @ gram @ q0) / 6
    d1 = beta / s1**2 + (1 - beta) * ((s0[:, None] * (q0.T @ g1)) ** 2).mean(dim=0)
    torch.testing.assert_close(state["inverse_roots"][0], d0.rsqrt(), rtol=1e-13, atol=0)
    torch.testing.assert_close(state["inverse_roots"][1], d1.rsqrt(), rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", ["kl_shampoo", "kl_soap"])
def test_create_optimizer_builds_it_with_the_authors_defaults_and_it_trains(name):
    spec = get_optimizer_spec(name)
    assert spec.family == "kronecker" and not spec.root_free and spec.counterpart is None
    assert spec.reference is None
    defaults = argument_defaults(spec)
    paper = {k: v for k, v in spec.defaults.items() if k in spec.paper_names}
    assert from_paper_hparams(name, **paper) == {
        "lr": defaults["lr"],
        "betas": defaults["betas"],
        "eps": defaults["eps"],
        "weight_decay": defaults["weight_decay"],
    }
    assert defaults["betas"] == (0.9, 0.98) and defaults["update_every"] == 10
    for key, value in spec.defaults.items():
        assert key in spec.paper_names or defaults[key] == value, key

    model = small_cnn()
    optimizer = create_optimizer(name, model, lr=0.02, update_every=2)
    losses = train(model, optimizer, batches(1) * 12)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.9 * losses[0]
    dtypes = {t.dtype for s in optimizer.state.values() for t in s["inverse_roots"]}
    assert dtypes == {torch.bfloat16}  # the authors' cast_dtype


def test_paper_vocabulary_maps_both_ways():
    arguments = dict(lr=3e-3, betas=(0.95, 0.99), eps=1e-10, weight_decay=0.1)
    paper = dict(lr=3e-3, momentum=0.95, lr_cov=0.01, damping=1e-10, weight_decay=0.1)
    for name in ("kl_shampoo", "kl_soap"):
        assert to_paper_hparams(name, arguments) == pytest.approx(paper)
        assert set(OPTIMIZERS[name].search) == set(paper)


@pytest.mark.parametrize("cls", [KLShampoo, KLSOAP])
def test_first_step_moves_nothing_and_resume_continues_bitwise(cls):
    model = small_cnn()
    before = snapshot(model)
    optimizer = cls(model.parameters(), lr=0.01, update_every=2, preconditioner_dtype="float32")
    data = batches(7)
    train(model, optimizer, data[:1])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    train(model, optimizer, data[1:4])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    train(model, optimizer, data[4:])
    expected = snapshot(model)

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed = small_cnn(seed=5)
    resumed.load_state_dict(checkpoint["model"])
    fresh = cls(resumed.parameters(), lr=0.01, update_every=2, preconditioner_dtype="float32")
    fresh.load_state_dict(checkpoint["optimizer"])
    train(resumed, fresh, data[4:])
    assert all(torch.equal(p, q) for p, q in zip(resumed.parameters(), expected))
    copy.deepcopy(fresh)


@pytest.mark.parametrize(
    "arguments,message",
    [
        (dict(update_every=0), "update_every"),
        (dict(betas=(0.9, 1.0)), "beta parameter at index 1"),
        (dict(init_factor=0.0), "init_factor"),
        (dict(basis_dtype="bfloat16"), "basis_dtype"),
        (dict(inverse_root_clamp=0), "inverse_root_clamp"),
        (dict(eps=-1.0), "eps"),
    ],
)
def test_invalid_settings_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        KLShampoo([nn.Parameter(torch.zeros(2, 2))], **arguments)
