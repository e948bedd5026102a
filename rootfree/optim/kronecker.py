"""Kronecker factors and mode products, shared by Shampoo and RootFreeShampoo.

A parameter of (squeezed) shape (d_1, ..., d_N) gets one factor per axis. A factor is a tensor:
a (d, d) matrix for the dense structure, a (d,) vector holding the diagonal for the diagonal one.
Every helper reads the structure from the factor's ndim, so no structure tags are stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

STRUCTURES = ("dense", "diagonal")


def squeezed_shape(shape: torch.Size) -> tuple[int, ...]:
    """Drop size-1 axes; a tensor with no axis left is treated as a vector of length 1."""
    squeezed = tuple(d for d in shape if d != 1)
    return squeezed or (1,)


def factor_is_diagonal(dim: int, structure: str, max_dense_dim: int | None) -> bool:
    return structure == "diagonal" or (max_dense_dim is not None and dim > max_dense_dim)


def identity_factor(
    dim: int, diagonal: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    if diagonal:
        return torch.ones(dim, dtype=dtype, device=device)
    return torch.eye(dim, dtype=dtype, device=device)


def zeros_factor(
    dim: int, diagonal: bool, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    shape = (dim,) if diagonal else (dim, dim)
    return torch.zeros(shape, dtype=dtype, device=device)


def apply_factors(
    x: torch.Tensor, factors: Sequence[torch.Tensor], transpose: bool = False
) -> torch.Tensor:
    """x x_1 F_1 x_2 F_2 ... x_N F_N: multiply factor n (or its transpose) onto axis n.

    Each round contracts axis 0 and appends the result as the last axis, so after N rounds
    the axes are back in order and no permutation of x is ever materialised.
    """
    for factor in factors:
        if factor.ndim == 1:
            x = (x * factor.view((-1,) + (1,) * (x.ndim - 1))).movedim(0, -1)
        else:
            x = torch.tensordot(x, factor, dims=([0], [0] if transpose else [1]))
    return x


def unfold(x: torch.Tensor, axis: int) -> torch.Tensor:
    """The mode-``axis`` unfolding X_(n): shape (d_n, numel / d_n)."""
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def gram(x: torch.Tensor, axis: int, diagonal: bool) -> torch.Tensor:
    """X_(n) X_(n)^T, or only its diagonal."""
    rows = unfold(x, axis)
    if diagonal:
        return (rows * rows).sum(dim=1)
    return rows @ rows.T


def inner(factor: torch.Tensor) -> torch.Tensor:
    """F^T F."""
    return factor * factor if factor.ndim == 1 else factor.T @ factor


def outer(factor: torch.Tensor) -> torch.Tensor:
    """F F^T."""
    return factor * factor if factor.ndim == 1 else factor @ factor.T


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a * b if a.ndim == 1 else a @ b


def average_trace(matrix: torch.Tensor) -> torch.Tensor:
    return matrix.mean() if matrix.ndim == 1 else matrix.diagonal().mean()


def add_to_diagonal_(matrix: torch.Tensor, value: float) -> torch.Tensor:
    (matrix if matrix.ndim == 1 else matrix.diagonal()).add_(value)
    return matrix
