"""Root-based Shampoo against SciPy's matrix powers, and its reductions to torch's AdamW / SGD."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from rootfree.optim import Shampoo
from tests.optim.helpers import batches, run_on_gradients, small_cnn, train

scipy_linalg = pytest.importorskip("scipy.linalg")


def matrix_power(matrix: torch.Tensor, exponent: float) -> torch.Tensor:
    """A^exponent by SciPy's Schur-Pade algorithm: independent of our eigh path."""
    result = scipy_linalg.fractional_matrix_power(matrix.numpy(), exponent)
    return torch.from_numpy(result.real.copy()).to(matrix.dtype)


def test_matrix_step_is_inverse_fourth_roots_around_gradient():
    """One step on a matrix: -lr (L + eps I)^(-1/4) G (R + eps I)^(-1/4), L = (1-b2) G G^T."""
    generator = torch.Generator().manual_seed(0)
    G = torch.randn(4, 3, dtype=torch.float64, generator=generator)
    lr, beta2, eps = 0.5, 0.9, 1e-2
    (after,), _ = run_on_gradients(
        Shampoo,
        torch.zeros(4, 3, dtype=torch.float64),
        [G],
        lr=lr,
        betas=(0.0, beta2),
        eps=eps,
        start_preconditioning_step=1,
        preconditioner_dtype="float64",
        root_dtype="float64",
    )
    L = (1 - beta2) * G @ G.T + eps * torch.eye(4, dtype=G.dtype)
    R = (1 - beta2) * G.T @ G + eps * torch.eye(3, dtype=G.dtype)
    expected = -lr * matrix_power(L, -0.25) @ G @ matrix_power(R, -0.25)
    torch.testing.assert_close(after, expected, rtol=1e-9, atol=1e-12)


def reference(p, grads, *, lr, betas, eps, weight_decay, update_every, grafting=None, squeeze=True):
    """Factors, filtered gradient, roots every T steps from step T, decoupled weight decay.
    ``squeeze=False``: a factor for every axis, size-1 ones included (Meta's convention)."""
    beta1, beta2 = betas
    dims = ([d for d in p.shape if d != 1] or [1]) if squeeze else list(p.shape)
    exponent = -1.0 / (2 * len(dims))
    factors = [torch.zeros(d, d, dtype=p.dtype) for d in dims]
    roots = [torch.eye(d, dtype=p.dtype) for d in dims]
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    trajectory = []
    for t, g in enumerate(grads, start=1):
        G = g.reshape(dims)
        for n in range(len(dims)):
            others = [j for j in range(len(dims)) if j != n]
            factors[n] = beta2 * factors[n] + (1 - beta2) * torch.tensordot(
                G, G, dims=(others, others)
            )
        m = beta1 * m + (1 - beta1) * g
        v = 0.999 * v + 0.001 * g**2
        p = p * (1 - lr * weight_decay)
        adam = m / (v.sqrt() + 1e-8)
        if t < update_every:  # before preconditioning starts: the grafted method's step
            p = p - lr * (adam if grafting == "adam" else m)
            trajectory.append(p)
            continue
        if t % update_every == 0:
            roots = [
                matrix_power(F + eps * torch.eye(F.shape[0], dtype=p.dtype), exponent)
                for F in factors
            ]
        step = (functools.reduce(torch.kron, roots) @ m.reshape(-1)).reshape(p.shape)
        if grafting == "adam":
            step = step * adam.norm() / step.norm()
        p = p - lr * step
        trajectory.append(p)
    return trajectory


HP = dict(lr=0.1, betas=(0.9, 0.95), eps=1e-2, weight_decay=1e-2)


def shampoo_and_reference(shape, update_every, seed=0, squeeze=True, grafting="none"):
    """Our trajectory and the reference's over 6 steps of one random gradient sequence."""
    generator = torch.Generator().manual_seed(seed)
    p0 = torch.randn(shape, dtype=torch.float64, generator=generator)
    grads = [torch.randn(shape, dtype=torch.float64, generator=generator) for _ in range(6)]
    hp = dict(HP, update_every=update_every)
    got, _ = run_on_gradients(
        Shampoo,
        p0,
        grads,
        grafting=grafting,
        squeeze_size_one_axes=squeeze,
        root_dtype="float64",
        preconditioner_dtype="float64",
        **hp,
    )
    return got, reference(p0, grads, grafting=grafting, squeeze=squeeze, **hp), (p0, grads, hp)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 2, 4), (2, 3, 2, 2), (1, 4, 1, 3)])
@pytest.mark.parametrize("update_every,grafting", [(1, "none"), (2, "none"), (2, "adam")])
def test_matches_reference_over_several_steps(shape, update_every, grafting):
    got, want, _ = shampoo_and_reference(shape, update_every, grafting=grafting)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)


def test_without_preconditioning_adam_grafting_is_torch_adamw_exactly():
    model, reference_model = small_cnn(), small_cnn()
    hp = dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.05)
    ours = Shampoo(
        model.parameters(),
        start_preconditioning_step=math.inf,
        grafting="adam",
        grafting_beta2=hp["betas"][1],
        grafting_eps=1e-8,
        bias_correction=True,
        **hp,
    )
    adamw = torch.optim.AdamW(reference_model.parameters(), eps=1e-8, foreach=False, **hp)
    data = batches(8)
    assert train(model, ours, data) == train(reference_model, adamw, data)
    for a, b in zip(model.parameters(), reference_model.parameters()):
        assert torch.equal(a, b)


def test_without_preconditioning_or_grafting_is_torch_sgd_exactly():
    model, reference_model = small_cnn(), small_cnn()
    ours = Shampoo(
        model.parameters(), lr=0.05, betas=(0.0, 0.9), start_preconditioning_step=math.inf
    )
    sgd = torch.optim.SGD(reference_model.parameters(), lr=0.05, foreach=False)
    data = batches(8)
    assert train(model, ours, data) == train(reference_model, sgd, data)
    for a, b in zip(model.parameters(), reference_model.parameters()):
        assert torch.equal(a, b)


def test_bf16_parameters_get_fp32_factors_and_fp32_or_fp64_roots(monkeypatch):
    seen = []
    eigh = torch.linalg.eigh

    def spy(matrix, *args, **kwargs):
        seen.append(matrix.dtype)
        return eigh(matrix, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigh", spy)
    model = small_cnn(dtype=torch.bfloat16)
    optimizer = Shampoo(model.parameters(), lr=0.01, eps=1e-6, update_every=2)
    losses = train(model, optimizer, batches(2, dtype=torch.bfloat16) * 10)
    assert seen and set(seen) <= {torch.float32, torch.float64}
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    for state in optimizer.state.values():
        assert all(f.dtype == torch.float32 for f in state["factors"])
        assert all(torch.isfinite(r).all() for r in state["roots"])
        assert int(state["root_failures"]) == 0


def test_bf16_factors_stay_finite_through_the_spectrum_shift():
    """bf16-rounded factors can be indefinite; the shift keeps roots finite."""
    model = small_cnn()
    optimizer = Shampoo(model.parameters(), lr=0.01, eps=1e-12, preconditioner_dtype="bfloat16")
    train(model, optimizer, batches(2) * 5)
    for state in optimizer.state.values():
        assert all(r.dtype == torch.bfloat16 and torch.isfinite(r).all() for r in state["roots"])


def test_failed_fp32_eigendecomposition_is_retried_in_fp64(monkeypatch):
    eigh = torch.linalg.eigh
    dtypes = []

    def flaky(matrix, *args, **kwargs):
        dtypes.append(matrix.dtype)
        if matrix.dtype == torch.float32:
            raise torch.linalg.LinAlgError("simulated cusolver failure")
        return eigh(matrix, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigh", flaky)
    param = torch.nn.Parameter(torch.zeros(4, 3))
    optimizer = Shampoo([param], lr=0.1, eps=1e-3, start_preconditioning_step=1)
    param.grad = torch.randn(4, 3)
    optimizer.step()
    assert dtypes == [torch.float32, torch.float64] * 2
    roots = optimizer.state[param]["roots"]
    assert all(r.dtype == torch.float32 and torch.isfinite(r).all() for r in roots)
    L = (1 - 0.999) * param.grad.double() @ param.grad.double().T + 1e-3 * torch.eye(
        4, dtype=torch.float64
    )
    torch.testing.assert_close(roots[0].double(), matrix_power(L, -0.25), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("root_dtype", ["float32", "float64"])
def test_non_finite_factor_keeps_previous_root_and_counts_the_failure(root_dtype):
    param = torch.nn.Parameter(torch.zeros(3, 2))
    optimizer = Shampoo(
        [param], lr=0.1, eps=1e-3, start_preconditioning_step=1, root_dtype=root_dtype
    )
    param.grad = torch.randn(3, 2)
    optimizer.step()
    state = optimizer.state[param]
    previous = [r.clone() for r in state["roots"]]
    state["factors"][0][0, 0] = float("nan")
    param.grad = torch.randn(3, 2)
    optimizer.step()
    assert torch.equal(state["roots"][0], previous[0])
    assert not torch.equal(state["roots"][1], previous[1])
    assert int(state["root_failures"]) == 1


@pytest.mark.parametrize(
    "bad",
    [
        dict(root_dtype="bfloat16"),
        dict(grafting="adagrad"),
        dict(update_every=0),
        dict(start_preconditioning_step=0),
        dict(preconditioner_dtype=None),
    ],
)
def test_invalid_settings_name_the_argument(bad):
    (name,) = bad
    with pytest.raises(ValueError, match=name):
        Shampoo([torch.nn.Parameter(torch.zeros(2))], **bad)


def test_default_eps_in_fp32_gives_a_finite_root_of_a_low_rank_factor_every_refresh():
    """A 16x3 parameter's 16x16 factor has rank <= 3: fp32 eigh returns eigenvalues slightly
    below zero, which raised to -1/4 at eps 1e-12 are NaN unless the spectrum is shifted."""
    torch.manual_seed(0)
    param = torch.nn.Parameter(torch.randn(16, 3))
    optimizer = Shampoo([param], lr=1e-3, update_every=1)  # default eps, fp32 roots
    assert optimizer.defaults["eps"] == 1e-12
    previous = None
    for _ in range(6):
        param.grad = torch.randn(16, 3)
        optimizer.step()
        state = optimizer.state[param]
        assert int(state["root_failures"]) == 0
        assert all(torch.isfinite(r).all() for r in state["roots"])
        assert previous is None or not torch.equal(state["roots"][0], previous)
        previous = state["roots"][0].clone()
    assert torch.isfinite(param).all()


@pytest.mark.parametrize("shape", [(4, 3, 1, 1), (1, 6), (1, 4, 1, 3)])
@pytest.mark.parametrize("update_every", [1, 2])
def test_meta_convention_keeps_a_factor_for_every_axis(shape, update_every):
    """DistributedShampoo (the paper's Shampoo) gives size-1 axes their own scalar factors and
    the exponent -1/(2 * ndim): squeeze_size_one_axes=False reproduces it."""
    got, want, (p0, grads, hp) = shampoo_and_reference(shape, update_every, seed=1, squeeze=False)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)
    squeezed = reference(p0, grads, squeeze=True, **hp)
    assert (want[-1] - squeezed[-1]).abs().max() > 1e-3, "the conventions differ on this shape"


def test_one_meta_step_on_a_1x1_convolution():
    """(out, in, 1, 1): L^(-1/8) G R^(-1/8) times (s + eps)^(-1/8) twice, s = (1 - b2) |G|^2."""
    G = torch.randn(4, 3, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lr, beta2, eps = 0.5, 0.9, 1e-2
    (after,), _ = run_on_gradients(
        Shampoo,
        torch.zeros_like(G),
        [G],
        lr=lr,
        betas=(0.0, beta2),
        eps=eps,
        start_preconditioning_step=1,
        squeeze_size_one_axes=False,
        preconditioner_dtype="float64",
        root_dtype="float64",
    )
    M = G[:, :, 0, 0]
    L = (1 - beta2) * M @ M.T + eps * torch.eye(4, dtype=G.dtype)
    R = (1 - beta2) * M.T @ M + eps * torch.eye(3, dtype=G.dtype)
    scalar = ((1 - beta2) * M.square().sum() + eps) ** (-1 / 8)
    expected = -lr * scalar**2 * matrix_power(L, -1 / 8) @ M @ matrix_power(R, -1 / 8)
    torch.testing.assert_close(after[:, :, 0, 0], expected, rtol=1e-9, atol=1e-12)
