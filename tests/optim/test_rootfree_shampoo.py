"""RootFreeShampoo against a Kronecker-product re-derivation of docs/update_rules.md, the authors'
SIRFShampoo 0.0.1, its fixed points (docs/update_rules.md), and its matmul-only, bf16-safe claims."""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import math

import pytest
import torch

import rootfree.optim.kronecker
import rootfree.optim.rootfree_shampoo
import rootfree.optim.structures
from rootfree.optim import RootFreeShampoo, create_optimizer, structures
from tests.optim.helpers import BATCH, batches, run_on_gradients, small_cnn, train
from tests.optim.test_structures import least_squares_projection

SHAPES = [(5,), (4, 3), (3, 2, 4), (2, 3, 2, 2), (1, 4, 1, 3)]
ALL_STRUCTURES = [
    "dense",
    "diagonal",
    "block4diagonal",
    "hierarchical4_4",
    "triltoeplitz",
    "triutoeplitz",
]
SIRFSHAMPOO_STRUCTURES = ["block30diagonal", "hierarchical15_15", "triltoeplitz", "triutoeplitz"]


@pytest.fixture(autouse=True)
def pack_every_cache(monkeypatch):
    """Small test shapes would not pay for unpacking K K^T on every step (see
    ``Structure.unpacking_pays``); here every cache is packed, so the math of packing is tested.
    tests/optim/test_structures.py tests the rule itself."""
    monkeypatch.setattr(structures.Structure, "unpacking_pays", lambda self, numel: True)


def kron_all(matrices):
    return functools.reduce(torch.kron, matrices)


def reference(
    p,
    grads,
    *,
    lr,
    momentum,
    lr_cov,
    riemannian_momentum,
    damping,
    weight_decay,
    batch_size,
    update_every,
    diagonal=None,
    project=None,
    refresh=None,
):
    """The update written with explicit Kronecker products: vec(X x_n A_n) = (A_1 (x) ... ) vec(X).

    ``diagonal[n]`` projects factor n's update onto its diagonal (the diagonal structure),
    ``project[n]``, if given, onto another structure (a function of a dense matrix);
    ``refresh``: the steps (from 0) that update the factors, instead of every ``update_every``.
    """
    dims = [d for d in p.shape if d != 1] or [1]
    n_axes, numel = len(dims), math.prod(dims)
    diagonal = diagonal or [False] * n_axes
    factors = [torch.eye(d, dtype=p.dtype) for d in dims]
    momenta = [torch.zeros(d, d, dtype=p.dtype) for d in dims]
    buf = torch.zeros_like(p)
    trajectory = []
    for t, g in enumerate(grads):
        G = g.reshape(dims)
        if (t in refresh) if refresh is not None else (t % update_every == 0):
            g_hat = (kron_all([K.T for K in factors]) @ G.reshape(-1)).reshape(dims)
            new = []
            for n in range(n_axes):
                others = [j for j in range(n_axes) if j != n]
                trace_product = math.prod(
                    float(torch.trace(factors[j].T @ factors[j])) / dims[j] for j in others
                )
                gram = torch.tensordot(g_hat, g_hat, dims=(others, others))
                step = 0.5 * (
                    damping * trace_product * factors[n].T @ factors[n]
                    + batch_size / (numel / dims[n]) * gram
                    - torch.eye(dims[n], dtype=p.dtype)
                )
                if diagonal[n]:
                    step = torch.diag(torch.diag(step))
                if project is not None:
                    step = project[n](step)
                momenta[n] = riemannian_momentum * momenta[n] + (1 - riemannian_momentum) * step
                norm = max(1.0, float(torch.linalg.matrix_norm(momenta[n])))
                new.append(factors[n] - lr_cov / norm * factors[n] @ momenta[n])
            factors = new
        preconditioner = kron_all([K @ K.T for K in factors])
        update = (preconditioner @ G.reshape(-1)).reshape(p.shape) + weight_decay * p
        buf = momentum * buf + update
        p = p - lr * buf
        trajectory.append(p)
    return trajectory


HPARAMS = dict(
    lr=0.1,
    momentum=0.9,
    lr_cov=0.2,
    riemannian_momentum=0.5,
    damping=1e-2,
    weight_decay=1e-2,
    batch_size=16,
)


def check_against_reference(shape, steps=7, diagonal=None, project=None, **options):
    """Run RootFreeShampoo and the Kronecker reference on one random gradient sequence."""
    generator = torch.Generator().manual_seed(0)
    p0 = torch.randn(shape, dtype=torch.float64, generator=generator)
    grads = [torch.randn(shape, dtype=torch.float64, generator=generator) for _ in range(steps)]
    got, optimizer = run_on_gradients(RootFreeShampoo, p0, grads, **options, **HPARAMS)
    want = reference(
        p0,
        grads,
        update_every=options["update_every"],
        diagonal=diagonal,
        project=project,
        **HPARAMS,
    )
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    return optimizer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("update_every", [1, 3])
def test_matches_kronecker_reference(shape, update_every):
    check_against_reference(shape, update_every=update_every)


@pytest.mark.parametrize("shape", [(6,), (4, 3), (3, 2, 4)])
def test_diagonal_structure_is_the_diagonal_projection(shape):
    check_against_reference(
        shape, steps=5, diagonal=[True] * len(shape), update_every=1, structure="diagonal"
    )


def dense_projection(name, dim):
    """The structure's projection as a least-squares solve over its entries (test_structures)."""
    struct = structures.structure(name, dim)
    return lambda m: struct.to_dense(least_squares_projection(struct, m[None]))[0]


@pytest.mark.parametrize(
    "name", ["block2diagonal", "hierarchical2_3", "triltoeplitz", "triutoeplitz", "block4diagonal"]
)
@pytest.mark.parametrize("shape", [(7, 5), (3, 2, 6)])
@pytest.mark.parametrize("update_every", [1, 2])
def test_structured_update_is_the_dense_update_projected(name, shape, update_every):
    project = [dense_projection(name, d) for d in shape]
    check_against_reference(shape, project=project, update_every=update_every, structure=name)


def test_structures_may_differ_per_axis():
    shape, names = (7, 6, 3), ["hierarchical2_3", "block4diagonal", "dense"]
    project = [dense_projection(n, d) for n, d in zip(names, shape)]
    check_against_reference(shape, project=project, update_every=2, structure={3: names})


def test_axes_above_max_preconditioner_dim_get_diagonal_factors():
    optimizer = check_against_reference(
        (6, 3), steps=5, diagonal=[True, False], update_every=1, max_preconditioner_dim=4
    )
    (state,) = optimizer.state.values()
    assert [f.shape for f in state["factors"]] == [(6,), (3, 3)]


def authors_structures():
    """The structures the installed sirfshampoo offers: dense in 0.0.1 (PyPI), all six in its
    main branch (pip install git+https://github.com/f-dangel/sirfshampoo)."""
    try:
        from sirfshampoo import SIRFShampoo
    except ImportError:
        return set()
    return set(getattr(SIRFShampoo, "SUPPORTED_STRUCTURES", {"dense": None}))


def structured_model():
    """Axes of 3 to 40, so 30-blocks have a remainder and 15_15 hierarchies all five parts."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 40),
        torch.nn.Tanh(),
        torch.nn.Linear(40, 35),
    )


def transpose_singd_blocks(monkeypatch):
    """SINGD's block-diagonal matrix (singd 0.0.5) treats its blocks as symmetric in the two
    places sirfshampoo needs K^T: ``from_inner()`` returns K K^T and ``rmatmat`` applies K.
    Factors stop being symmetric at the second refresh; these are the transposed versions."""
    from singd.structures.blockdiagonal import BlockDiagonalMatrixTemplate as Blocks

    from_inner = Blocks.from_inner

    def inner(self, X=None):
        if X is not None:
            return from_inner(self, X)
        blocks = torch.einsum("nji,njk->nik", self._blocks, self._blocks)
        return self.__class__(blocks, self._last.T @ self._last)

    def transposed_apply(self, mat):
        return self.__class__(self._blocks.transpose(-2, -1), self._last.T) @ mat

    monkeypatch.setattr(Blocks, "from_inner", inner)
    monkeypatch.setattr(Blocks, "rmatmat", transposed_apply)


@pytest.mark.parametrize("structure", [*ALL_STRUCTURES[:2], *SIRFSHAMPOO_STRUCTURES])
def test_matches_authors_sirfshampoo(structure, monkeypatch):
    """The authors' SIRFShampoo on a conv + norm + linear model with biases (dense) or on axes
    of 3 to 40 (its other structures, where the installed version has them), T = 2. Block-
    diagonal factors are compared with SINGD's transposes corrected (docs/fidelity.md)."""
    if structure not in authors_structures():
        pytest.skip(f"the installed sirfshampoo has no {structure!r} structure")
    from sirfshampoo import SIRFShampoo

    if structure.startswith("block"):
        transpose_singd_blocks(monkeypatch)

    hp = dict(
        lr=0.05,
        momentum=0.9,
        lr_cov=0.1,
        riemannian_momentum=0.5,
        damping=1e-3,
        weight_decay=1e-3,
        update_every=2,
    )
    ours_model = small_cnn() if structure == "dense" else structured_model()
    theirs_model = copy.deepcopy(ours_model)
    ours = RootFreeShampoo(ours_model.parameters(), batch_size=BATCH, structure=structure, **hp)
    extra = {} if structure == "dense" else {"structures": structure}
    theirs = SIRFShampoo(
        theirs_model,
        lr=hp["lr"],
        alpha1=hp["momentum"],
        beta2=hp["lr_cov"],
        alpha2=hp["riemannian_momentum"],
        lam=hp["damping"],
        kappa=hp["weight_decay"],
        T=hp["update_every"],
        batch_size=BATCH,
        **extra,
    )
    data = batches(12)
    for step in range(len(data)):
        train(ours_model, ours, data[step : step + 1])
        train(theirs_model, theirs, data[step : step + 1])
        for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    group = ours.param_groups[0]
    for param, their_factors in zip(ours_model.parameters(), theirs.preconditioner):
        structs = rootfree.optim.rootfree_shampoo._structures(group, param)
        for struct, ours_factor, theirs in zip(
            structs, ours.state[param]["factors"], their_factors
        ):
            torch.testing.assert_close(
                struct.to_dense(ours_factor[None])[0], theirs.to_dense(), rtol=1e-5, atol=1e-6
            )


def converge(shape, grad, steps, **overrides):
    hp = dict(
        lr=0.0,
        momentum=0.0,
        lr_cov=0.2,
        riemannian_momentum=0.0,
        damping=1e-2,
        batch_size=4,
        **overrides,
    )
    param = torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64))
    optimizer = RootFreeShampoo([param], **hp)
    for _ in range(steps):
        param.grad = grad.clone()
        optimizer.step()
    return optimizer.state[param]["factors"], hp


def test_vector_factor_converges_to_damped_inverse_gop():
    """For a vector, K K^T -> (damping I + B g g^T)^-1: Newton's step on the GOP (P4)."""
    g = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    (K,), hp = converge((4,), g, 2000)
    expected = torch.linalg.inv(
        hp["damping"] * torch.eye(4, dtype=g.dtype) + hp["batch_size"] * torch.outer(g, g)
    )
    torch.testing.assert_close(K @ K.T, expected, rtol=1e-6, atol=1e-6)


def test_matrix_factors_converge_to_coupled_fixed_point():
    """KK^T = [(B G^T CC^T G + damping tr(CC^T) I)/d_o]^-1 and symmetrically for CC^T."""
    generator = torch.Generator().manual_seed(0)
    G = 0.5 * torch.randn(3, 4, dtype=torch.float64, generator=generator)
    (C, K), hp = converge((3, 4), G, 3000)
    B, lam = hp["batch_size"], hp["damping"]
    d_o, d_i = G.shape
    CC, KK = C @ C.T, K @ K.T
    S_K = (B * G.T @ CC @ G + lam * torch.trace(CC) * torch.eye(d_i, dtype=G.dtype)) / d_o
    S_C = (B * G @ KK @ G.T + lam * torch.trace(KK) * torch.eye(d_o, dtype=G.dtype)) / d_i
    torch.testing.assert_close(K.T @ S_K @ K, torch.eye(d_i, dtype=G.dtype), rtol=0, atol=1e-6)
    torch.testing.assert_close(C.T @ S_C @ C, torch.eye(d_o, dtype=G.dtype), rtol=0, atol=1e-6)


@pytest.mark.parametrize("structure", ALL_STRUCTURES)
def test_bf16_preconditioner_trains_without_non_finite_values(structure):
    losses = {}
    for dtype in ("bfloat16", "float32"):
        model = small_cnn()
        optimizer = RootFreeShampoo(
            model.parameters(),
            lr=0.02,
            lr_cov=0.1,
            batch_size=BATCH,
            update_every=2,
            preconditioner_dtype=dtype,
            structure=structure,
        )
        losses[dtype] = train(model, optimizer, batches(2) * 20)
        assert all(math.isfinite(v) for v in losses[dtype])
        assert all(torch.isfinite(p).all() for p in model.parameters())
        for state in optimizer.state.values():
            assert all(f.dtype == getattr(torch, dtype) for f in state["factors"])
            assert all(torch.isfinite(f).all() for f in state["factors"])
    assert losses["bfloat16"][-1] < 0.8 * losses["bfloat16"][0]
    assert abs(losses["bfloat16"][-1] - losses["float32"][-1]) < 0.1 * losses["float32"][0]


FORBIDDEN = {
    "eigh",
    "eig",
    "eigvals",
    "eigvalsh",
    "svd",
    "svdvals",
    "cholesky",
    "inv",
    "inverse",
    "pinv",
    "solve",
    "solve_triangular",
    "lstsq",
    "lu",
    "lu_factor",
    "qr",
    "matrix_power",
    "matrix_exp",
    "cholesky_inverse",
    "sqrtm",
}


def test_source_calls_no_decomposition_inverse_or_root():
    for module in (
        rootfree.optim.rootfree_shampoo,
        rootfree.optim.kronecker,
        rootfree.optim.structures,
    ):
        tree = ast.parse(inspect.getsource(module))
        called = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not called & FORBIDDEN, f"{module.__name__} calls {called & FORBIDDEN}"


def test_steps_run_with_decompositions_disabled(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("RootFreeShampoo called a decomposition")

    for name in FORBIDDEN:
        for namespace in (torch.linalg, torch):
            if hasattr(namespace, name):
                monkeypatch.setattr(namespace, name, forbidden)
    model = small_cnn()
    optimizer = RootFreeShampoo(model.parameters(), lr=0.01, batch_size=BATCH)
    train(model, optimizer, batches(3))


def test_log4_schedule_refreshes_108_times_in_200_steps_for_T2():
    """The authors' log4 schedule: every step for steps 0-15, then every 2nd step."""
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = RootFreeShampoo([param], batch_size=1, update_every=2, update_schedule="log4")
    refreshes = []
    for step in range(200):
        param.grad = torch.ones(3)
        before = optimizer.state[param]["factors"][0].clone() if optimizer.state else None
        optimizer.step()
        if before is None or not torch.equal(before, optimizer.state[param]["factors"][0]):
            refreshes.append(step)
    assert len(refreshes) == 108
    assert refreshes[:16] == list(range(16)) and refreshes[16:18] == [17, 19]


def repeated_shapes_model(dtype=torch.float64):
    """Blocks of equal shapes, as in ResNets and ViTs, so batching forms real buckets."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 2),
    ).to(dtype)


def inputs(n=9, dtype=torch.float64):
    generator = torch.Generator().manual_seed(3)
    return [torch.randn(BATCH, 6, generator=generator).to(dtype) for _ in range(n)]


def run_model(model, optimizer, xs):
    for x in xs:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize(
    "update_schedule,structure",
    [
        ("fixed", "dense"),
        ("log4", "dense"),
        ("fixed", "hierarchical2_2"),
        ("fixed", "block3diagonal"),
    ],
)
def test_batched_buckets_equal_per_parameter_steps(update_schedule, structure):
    results = []
    for batched in (False, True):
        model = repeated_shapes_model()
        optimizer = RootFreeShampoo(
            model.parameters(),
            batch_size=BATCH,
            foreach=batched,
            update_every=3,
            update_schedule=update_schedule,
            structure=structure,
            **{k: v for k, v in HPARAMS.items() if k != "batch_size"},
        )
        run_model(model, optimizer, inputs(7))
        results.append((model, optimizer))
    (loop_model, loop), (batch_model, batch) = results
    for a, b in zip(loop_model.parameters(), batch_model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
        for fa, fb in zip(loop.state[a]["factors"], batch.state[b]["factors"]):
            torch.testing.assert_close(fb, fa, rtol=1e-12, atol=1e-14)


def test_batched_state_survives_weights_only_checkpoint_bitwise(tmp_path):
    hp = dict(lr=0.05, lr_cov=0.2, batch_size=BATCH, update_every=2, foreach=True)
    xs = inputs(9, torch.float32)
    model = repeated_shapes_model(torch.float32)
    run_model(model, RootFreeShampoo(model.parameters(), **hp), xs)
    expected = [p.detach().clone() for p in model.parameters()]

    model = repeated_shapes_model(torch.float32)
    optimizer = RootFreeShampoo(model.parameters(), **hp)
    run_model(model, optimizer, xs[:4])
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "c.pt"
    )
    checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
    model = repeated_shapes_model(torch.float32)
    model.load_state_dict(checkpoint["model"])
    optimizer = RootFreeShampoo(model.parameters(), **hp)
    optimizer.load_state_dict(checkpoint["optimizer"])
    run_model(model, optimizer, xs[4:])
    for got, want in zip(model.parameters(), expected):
        assert torch.equal(got, want)


def authors_refresh_steps(steps, T):
    """LocalOptimizer_GGT's schedule: after refreshing at step s, next at s + min(max(int(log4(s + 1)), 1), T)."""
    refresh, next_step = set(), 0
    for s in range(steps):
        if s == next_step:
            refresh.add(s)
            next_step = s + min(max(int(math.log(s + 1, 4)), 1), T)
    return refresh


def test_authors_vit_setting_per_name_lr_cov_and_log4_schedule():
    """The authors' IF-Shampoo in the ViT runs: lr_cov x 0.25 for names containing norm, proj or
    bias, factors refreshed on the log4 schedule; 24 steps at T = 2 reach past the warm-up."""
    model = torch.nn.ModuleDict(
        {
            "norm": torch.nn.LayerNorm(4),
            "proj": torch.nn.Linear(4, 3),
            "fc": torch.nn.Linear(3, 2, bias=False),
        }
    ).double()
    scales = {"norm": 0.25, "proj": 0.25, "bias": 0.25}
    optimizer = create_optimizer(
        "rootfree_shampoo",
        model,
        update_every=2,
        update_schedule="log4",
        lr_cov_scales=scales,
        **HPARAMS,
    )
    generator = torch.Generator().manual_seed(3)
    named = dict(model.named_parameters())
    start = {n: p.detach().clone() for n, p in named.items()}
    grads = {
        n: [torch.randn(p.shape, dtype=p.dtype, generator=generator) for _ in range(24)]
        for n, p in named.items()
    }
    for t in range(24):
        for n, p in named.items():
            p.grad = grads[n][t]
        optimizer.step()
    refresh = authors_refresh_steps(24, 2)
    assert len(refresh) == 20 and 17 in refresh and 16 not in refresh
    for n, p in named.items():
        lr_cov = HPARAMS["lr_cov"] * (0.25 if n != "fc.weight" else 1.0)
        options = {**HPARAMS, "lr_cov": lr_cov}
        want = reference(start[n], grads[n], update_every=2, refresh=refresh, **options)[-1]
        torch.testing.assert_close(p.detach(), want, rtol=1e-10, atol=1e-12, msg=n)


def cached_state(riemannian_momentum, steps=3):
    param = torch.nn.Parameter(torch.randn(64, 3))
    optimizer = RootFreeShampoo(
        [param], lr=0.01, batch_size=BATCH, update_every=2, riemannian_momentum=riemannian_momentum
    )
    for _ in range(steps):
        param.grad = torch.randn_like(param)
        optimizer.step()
    return optimizer.state[param]


def test_cached_outer_products_share_the_factor_momentum_storage():
    """A (64, 3) weight at T = 2: 64^2 > 2 x 192 applies K itself; 3^2 <= 2 x 192 caches K K^T,
    in the strict lower triangle of the (symmetric) factor momentum: no d x d beyond K and m."""
    state = cached_state(riemannian_momentum=0.5)
    assert state["preconditioner_is_outer"] == [False, True]
    assert state["preconditioners"] == [None, None]
    tensors = [*state["factors"], *state["factor_momenta"], state["momentum_buffer"]]
    extra = [k for k, v in state.items() if torch.is_tensor(v) and v.numel() > 1]
    assert extra == ["momentum_buffer"]
    assert sum(t.numel() for t in tensors) == 2 * (64 * 64 + 3 * 3) + 64 * 3


@pytest.mark.parametrize("structure", ALL_STRUCTURES)
@pytest.mark.parametrize("update_every", [1, 2, 10])
def test_state_is_factors_momenta_and_buffer_alone(structure, update_every):
    """What sirfshampoo keeps: K_n and m_n in their structure, and the momentum buffer."""
    param = torch.nn.Parameter(torch.randn(12, 5, 3))
    optimizer = RootFreeShampoo(
        [param], lr=0.01, batch_size=BATCH, update_every=update_every, structure=structure
    )
    for _ in range(2 * update_every + 1):
        param.grad = torch.randn_like(param)
        optimizer.step()
    state = optimizer.state[param]
    kept = sum(
        t.numel()
        for value in state.values()
        for t in (value if isinstance(value, list) else [value])
        if torch.is_tensor(t)
    )
    factors = sum(structures.structure(structure, d).numel for d in param.shape)
    assert kept == 2 * factors + param.numel()


def test_without_riemannian_momentum_the_cache_is_kept_on_its_own():
    state = cached_state(riemannian_momentum=0.0)
    assert "factor_momenta" not in state
    assert state["preconditioners"][0] is None and state["preconditioners"][1].shape == (3, 3)


def test_state_written_before_packing_resumes_alike():
    """Checkpoints of earlier releases keep K K^T on its own and the momentum whole."""
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(6, 3, dtype=torch.float64, generator=generator) for _ in range(6)]
    results = []
    for convert in (False, True):
        param = torch.nn.Parameter(torch.ones(6, 3, dtype=torch.float64))
        optimizer = RootFreeShampoo([param], lr=0.1, lr_cov=0.2, batch_size=4, update_every=2)
        for t, g in enumerate(grads):
            param.grad = g.clone()
            optimizer.step()
            state = optimizer.state[param]
            if convert and t == 2:  # after a refresh: the old layout
                packed = state["factor_momenta"][1][None]
                struct = structures.structure("dense", 3)
                factor = state["factors"][1][None]
                scale = factor.abs().amax().sqrt().clamp(min=1.0).reshape(1)
                state["preconditioners"][1] = struct.unpack_outer(packed, factor, scale)[0]
                state["factor_momenta"][1] = struct.unpack_momentum(packed)[0]
        results.append(param.detach().clone())
    torch.testing.assert_close(results[1], results[0], rtol=1e-14, atol=1e-15)
