"""Kronecker factors and mode products, shared by Shampoo and RootFreeShampoo (whose other
structures are in ``structures``).

A parameter of (squeezed) shape (d_1, ..., d_N) gets one factor per axis. A factor is a tensor:
a (d, d) matrix for the dense structure, a (d,) vector holding the diagonal for the diagonal one.
Every helper works on a *stack* of same-shape parameters: tensors carry a leading batch axis
(x: (b, d_1, ..., d_N), a dense factor: (b, d, d), a diagonal one: (b, d)), so a bucket of equal
shapes costs one batched kernel instead of b small ones. The structure is read from the ndim.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def squeezed_shape(shape: torch.Size) -> tuple[int, ...]:
    """Drop size-1 axes; a tensor with no axis left is treated as a vector of length 1."""
    squeezed = tuple(d for d in shape if d != 1)
    return squeezed or (1,)


def factor_is_diagonal(dim: int, structure: str, max_dense_dim: int | None) -> bool:
    return structure == "diagonal" or (max_dense_dim is not None and dim > max_dense_dim)


def is_diagonal(factor: torch.Tensor) -> bool:
    """A stacked factor is diagonal when it holds vectors, (b, d), not matrices, (b, d, d)."""
    return factor.ndim == 2


def identity_factor(
    dim: int, diagonal: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """One unstacked identity factor, as kept in a parameter's state."""
    if diagonal:
        return torch.ones(dim, dtype=dtype, device=device)
    return torch.eye(dim, dtype=dtype, device=device)


def zeros_factor(
    dim: int, diagonal: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    shape = (dim,) if diagonal else (dim, dim)
    return torch.zeros(shape, dtype=dtype, device=device)


def _multiply_axis(x: torch.Tensor, factor: torch.Tensor, transpose: bool) -> torch.Tensor:
    """F (or F^T) onto axis 1 of a stack, axes left in place."""
    batch, dim = x.shape[0], x.shape[1]
    if is_diagonal(factor):
        return x * factor.view(batch, dim, *([1] * (x.ndim - 2)))
    matrix = factor.transpose(-2, -1) if transpose else factor
    return torch.bmm(matrix, x.reshape(batch, dim, -1)).view(x.shape)


def multiply_axis_and_move(x: torch.Tensor, factor: torch.Tensor, transpose: bool) -> torch.Tensor:
    """F (or F^T) onto axis 1, that axis moved to the end.

    Computes (F X_(1))^T = X_(1)^T F^T, which BLAS reads from X's memory without a copy and
    which comes out with the axis already moved.
    """
    batch, dim = x.shape[0], x.shape[1]
    moved_shape = (batch, *x.shape[2:], dim)
    if is_diagonal(factor):
        return _multiply_axis(x, factor, transpose).movedim(1, -1).contiguous()
    rows_t = x.reshape(batch, dim, -1).transpose(1, 2)
    return torch.bmm(rows_t, factor if transpose else factor.transpose(1, 2)).view(moved_shape)


def apply_factors(
    x: torch.Tensor, factors: Sequence[torch.Tensor], transpose: bool = False
) -> torch.Tensor:
    """x x_1 F_1 ... x_N F_N for each stack element: factor n (or its transpose) onto axis n.

    Each round works on axis 1 and moves it to the end, so after N rounds the axes are back
    in order.
    """
    for factor in factors:
        x = multiply_axis_and_move(x, factor, transpose)
    return x


def unfold(x: torch.Tensor, axis: int) -> torch.Tensor:
    """The mode-``axis`` unfolding X_(n) of each stack element: shape (b, d_n, numel / d_n)."""
    rows = x.movedim(axis + 1, 1).reshape(x.shape[0], x.shape[axis + 1], -1)
    if rows.stride(-1) != 1 and rows.element_size() < 4:
        # Half-precision GEMM has no fast path for strided rows (10x slower on CPU).
        rows = rows.contiguous()
    return rows


def gram(x: torch.Tensor, axis: int, diagonal: bool) -> torch.Tensor:
    """X_(n) X_(n)^T for the mode-``axis`` unfolding of each stack element (or its diagonal)."""
    rows = unfold(x, axis)
    if diagonal:
        return (rows * rows).sum(dim=-1)
    return torch.bmm(rows, rows.transpose(-2, -1))


def frobenius_norm(matrix: torch.Tensor) -> torch.Tensor:
    """||M||_F for each stack element: shape (b,)."""
    return torch.linalg.vector_norm(matrix.flatten(start_dim=1), dim=-1)


def max_abs(matrix: torch.Tensor) -> torch.Tensor:
    """max |M_ij| for each stack element: shape (b,)."""
    low, high = torch.aminmax(matrix.flatten(start_dim=1), dim=-1)
    return torch.maximum(-low, high)


def per_element(scalars: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape (b,) scalars as (b, 1, ..., 1) in ``like``'s dtype, to scale a stacked ``like``.

    Rounding the scalars to a half-precision ``like`` costs no more than the product's own
    rounding, and a mixed-dtype in-place product would materialise fp32 copies of ``like``.
    """
    return scalars.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))
