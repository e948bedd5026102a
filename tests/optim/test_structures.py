"""Factor structures against dense matrices: every structured operation equals its dense
counterpart, and every projection equals a least-squares solve over the structure's entries."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import structures

# small blocks so that every piece (full blocks, a remainder, A, C, E) shows up at these dims
NAMES = ["dense", "diagonal", "block3diagonal", "hierarchical2_3", "triltoeplitz", "triutoeplitz"]
DIMS = [1, 2, 4, 7, 9]
CASES = [(name, dim) for name in NAMES for dim in DIMS]


def least_squares_projection(struct: structures.Structure, sym: torch.Tensor) -> torch.Tensor:
    """argmin over the structure's free entries p of ||(M(p) + M(p)^T) / 2 - S||_F, solved
    directly: M is linear in p, so each free entry contributes one column."""
    basis = torch.eye(struct.numel, dtype=sym.dtype).view(struct.numel, *struct.shape)
    dense = struct.to_dense(basis)
    columns = ((dense + dense.transpose(-2, -1)) / 2).flatten(start_dim=1).T
    solution = torch.linalg.lstsq(columns, sym.flatten(start_dim=1).T).solution
    return solution.T.reshape(sym.shape[0], *struct.shape)


def random_member(struct, generator, batch=2):
    return torch.randn(batch, *struct.shape, dtype=torch.float64, generator=generator)


def random_symmetric(dim, generator, batch=2):
    x = torch.randn(batch, dim, dim, dtype=torch.float64, generator=generator)
    return x + x.transpose(-2, -1)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("name,dim", CASES)
def test_projection_is_the_least_squares_fit_of_the_symmetric_part(name, dim, generator):
    struct = structures.structure(name, dim)
    sym = random_symmetric(dim, generator)
    want = least_squares_projection(struct, sym)
    torch.testing.assert_close(struct.project(sym), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,dim", CASES)
def test_structure_is_closed_under_products(name, dim, generator):
    struct = structures.structure(name, dim)
    a, b = random_member(struct, generator), random_member(struct, generator)
    product = struct.to_dense(a) @ struct.to_dense(b)
    torch.testing.assert_close(struct.to_dense(struct.matmul(a, b)), product)


@pytest.mark.parametrize("name,dim", CASES)
def test_inner_and_gram_are_projected_dense_products(name, dim, generator):
    struct = structures.structure(name, dim)
    f = random_member(struct, generator)
    rows = torch.randn(2, dim, 5, dtype=torch.float64, generator=generator)
    dense = struct.to_dense(f)
    inner = dense.transpose(-2, -1) @ dense
    torch.testing.assert_close(struct.inner(f), least_squares_projection(struct, inner))
    gram = rows @ rows.transpose(-2, -1)
    torch.testing.assert_close(struct.gram(rows), least_squares_projection(struct, gram))


@pytest.mark.parametrize("name,dim", CASES)
@pytest.mark.parametrize("per_dim", [1, 3])  # at most 2d rows, and over 2d (dense's R^T R first)
def test_inner_of_rows_is_the_projected_sandwich(name, dim, per_dim, generator):
    struct = structures.structure(name, dim)
    f = random_member(struct, generator)
    rows = torch.randn(2, per_dim * dim, dim, dtype=torch.float64, generator=generator)
    projected = rows @ struct.to_dense(f)
    want = least_squares_projection(struct, projected.transpose(-2, -1) @ projected)
    torch.testing.assert_close(struct.inner_of_rows(f, rows), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,dim", CASES)
@pytest.mark.parametrize("transpose", [False, True])
def test_application_equals_the_dense_product(name, dim, transpose, generator):
    struct = structures.structure(name, dim)
    f = random_member(struct, generator)
    x = torch.randn(2, dim, 3, 2, dtype=torch.float64, generator=generator)
    dense = struct.to_dense(f)
    dense = dense.transpose(-2, -1) if transpose else dense
    want = torch.einsum("bij,bjkl->bikl", dense, x)
    torch.testing.assert_close(struct.apply_axis(f, x, transpose), want)
    torch.testing.assert_close(struct.apply_moved(f, x, transpose), want.movedim(1, -1))


@pytest.mark.parametrize("name,dim", CASES)
def test_outer_is_cached_only_where_it_stays_in_the_structure(name, dim, generator):
    struct = structures.structure(name, dim)
    f = random_member(struct, generator)
    outer = struct.outer(f)
    dense = struct.to_dense(f)
    if outer is None:
        assert not struct.caches(10**9)
    else:
        torch.testing.assert_close(struct.to_dense(outer), dense @ dense.transpose(-2, -1))


@pytest.mark.parametrize("name,dim", CASES)
def test_scalar_summaries_and_identity_match_the_dense_matrix(name, dim, generator):
    struct = structures.structure(name, dim)
    f = random_member(struct, generator)
    dense = struct.to_dense(f)
    torch.testing.assert_close(struct.diagonal(f), dense.diagonal(dim1=-2, dim2=-1))
    torch.testing.assert_close(struct.average_trace(f), dense.diagonal(dim1=-2, dim2=-1).mean(-1))
    torch.testing.assert_close(struct.frobenius_norm(f), torch.linalg.matrix_norm(dense))
    torch.testing.assert_close(struct.max_abs(f), dense.abs().flatten(1).amax(-1))
    shifted = struct.to_dense(struct.add_to_diagonal_(f.clone(), 0.5))
    torch.testing.assert_close(shifted, dense + 0.5 * torch.eye(dim, dtype=f.dtype))
    eye = struct.to_dense(struct.identity(torch.float64, torch.device("cpu"))[None])[0]
    torch.testing.assert_close(eye, torch.eye(dim, dtype=torch.float64))


@pytest.mark.parametrize(
    "name,per_axis",
    [
        ("dense", 64 * 64),
        ("diagonal", 64),
        ("block30diagonal", 2 * 30 * 30 + 4 * 4),
        ("hierarchical15_15", 15 * 15 + 15 * 49 + 34 + 15 * 34 + 15 * 15),
        ("triltoeplitz", 64),
        ("triutoeplitz", 64),
    ],
)
def test_storage_is_the_free_entries(name, per_axis):
    assert structures.structure(name, 64).numel == per_axis


SINGD = {
    "block30diagonal": "singd.structures.blockdiagonal.Block30DiagonalMatrix",
    "hierarchical15_15": "singd.structures.hierarchical.Hierarchical15_15Matrix",
    "triltoeplitz": "singd.structures.triltoeplitz.TrilToeplitzMatrix",
    "triutoeplitz": "singd.structures.triutoeplitz.TriuToeplitzMatrix",
}


@pytest.mark.parametrize("name", sorted(SINGD))
@pytest.mark.parametrize("dim", [7, 40, 70])
def test_projection_matches_the_authors_singd(name, dim, generator):
    """SINGD (f-dangel/singd, which sirfshampoo's structures come from) projects alike."""
    pytest.importorskip("singd")
    module, _, cls_name = SINGD[name].rpartition(".")
    cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
    sym = random_symmetric(dim, generator, batch=1)
    theirs = cls.from_dense(sym[0]).to_dense()
    struct = structures.structure(name, dim)
    torch.testing.assert_close(struct.to_dense(struct.project(sym))[0], theirs)


@pytest.mark.parametrize(
    "spec,shape,want",
    [
        ("block30diagonal", (64, 3), ("block30diagonal", "block30diagonal")),
        ({2: ["dense", "diagonal"]}, (64, 3), ("dense", "diagonal")),
        ({2: "triltoeplitz"}, (4, 1, 5), ("triltoeplitz", "triltoeplitz")),
        ({4: "diagonal"}, (4, 5), ("dense", "dense")),
        ("hierarchical15_15", (10000, 3), ("diagonal", "hierarchical15_15")),
    ],
)
def test_axis_names_follow_the_spec_and_the_length_cap(spec, shape, want):
    dims = [d for d in shape if d != 1]
    assert structures.axis_names(spec, dims, max_dense_dim=8192) == want


@pytest.mark.parametrize(
    "spec,message",
    [
        ("block0diagonal", "Invalid structure: 'block0diagonal'; choose one of dense"),
        ({2: ["dense"] * 3}, r"Invalid structure\[2\]: \['dense', 'dense', 'dense'\]; give one"),
        ({"two": "dense"}, "Invalid structure: key 'two'; keys are tensor dimensions"),
        (["dense"], r"Invalid structure: \['dense'\]; give a structure name or"),
    ],
)
def test_bad_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        structures.check_spec(spec)


def test_caches_are_packed_only_where_unpacking_costs_less_than_the_product_it_saves():
    """A ViT's 768 x 192 weight at T = 2 caches K K^T on its 192-axis alone."""
    from rootfree.optim import RootFreeShampoo

    param = torch.nn.Parameter(torch.randn(768, 192))
    optimizer = RootFreeShampoo([param], lr=1e-3, batch_size=8, update_every=2)
    param.grad = torch.randn_like(param)
    optimizer.step()
    assert optimizer.state[param]["preconditioner_is_outer"] == [False, True]
    assert structures.structure("diagonal", 768).unpacking_pays(1)
