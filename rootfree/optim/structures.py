"""What a RootFreeShampoo Kronecker factor may be: dense, diagonal, block-diagonal, hierarchical or
triangular Toeplitz, and the operations the root-free update needs, on stacks of equal factors.

Every structure is a linear space of d x d matrices closed under multiplication, so K <- K (I - b m)
stays in it when m does. A symmetric matrix S enters a structure by the projection

    P(S) = argmin over M in the structure of || (M + M^T) / 2 - S ||_F,

which keeps the first-order change of K K^T that the dense update would make: an entry whose
mirror is free too is copied, one whose mirror is fixed at zero is doubled, entries a structure
ties together (Toeplitz diagonals) are averaged. Names follow sirfshampoo's (f-dangel/sirfshampoo).

A factor is kept as one tensor: (d, d) dense, (d,) diagonal, and the free entries, flat, for the
others. Helpers take stacks of them (a leading batch axis b), as ``kronecker`` does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from rootfree.optim import kronecker

StructureSpec = str | Mapping[int, str | Sequence[str]]


@dataclass(frozen=True)
class Structure:
    """A structure of d x d matrices; these defaults go through dense matrices (right for the
    dense structure), and each subclass overrides what its shape makes cheaper."""

    dim: int

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim, self.dim)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def identity(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return self.project(torch.eye(self.dim, dtype=dtype, device=device)[None])[0]

    def to_dense(self, f: torch.Tensor) -> torch.Tensor:
        return f

    def project(self, s: torch.Tensor) -> torch.Tensor:
        """P(S) of a stack of symmetric (b, d, d) matrices."""
        return s

    def apply(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        """F @ X (or F^T @ X) for a stack X of shape (b, d, c)."""
        return torch.bmm(self._dense(f, transpose), x)

    def apply_axis(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        """F (or F^T) onto axis 1 of a stack (b, d, ...)."""
        return self.apply(f, x.reshape(x.shape[0], self.dim, -1), transpose).view(x.shape)

    def apply_moved(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        """F (or F^T) onto axis 1 of a stack, that axis moved to the end (see ``kronecker``)."""
        rows = self.apply(f, x.reshape(x.shape[0], self.dim, -1), transpose)
        return rows.view(x.shape).movedim(1, -1).contiguous()

    def inner(self, f: torch.Tensor) -> torch.Tensor:
        """P(F^T F)."""
        dense = self.to_dense(f)
        return self.project(dense.transpose(-2, -1) @ dense)

    def gram(self, rows: torch.Tensor) -> torch.Tensor:
        """P(R R^T) for a stack of (b, d, c) rows."""
        return self.project(torch.bmm(rows, rows.transpose(-2, -1)))

    def inner_of_rows(self, f: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """P(F^T R^T R F) for a stack of factors F and of rows R, (b, n, d)."""
        return self.gram(self.apply(f, rows.transpose(1, 2), transpose=True))

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """A @ B, which stays in the structure."""
        return a @ b

    def outer(self, f: torch.Tensor) -> torch.Tensor | None:
        """F F^T where it stays in the structure (so it can be cached), else None."""
        return f @ f.transpose(-2, -1)

    def caches(self, applications: int) -> bool:
        """Whether to cache F F^T (see ``outer``) when it is applied to ``applications`` entries
        before the next refresh: it costs d^3 and saves one product, d per entry."""
        return applications >= self.dim * self.dim

    def squares(self, f: torch.Tensor) -> list[torch.Tensor]:
        """Views of the square matrices a stack is made of (see ``pack_``)."""
        return [f]

    def outer_needs_storage(self, has_momentum: bool) -> bool:
        """Whether a cached F F^T needs storage of its own; if not, ``pack_`` keeps it in the
        symmetric momentum m's storage, or (diagonal) it is cheap enough to recompute."""
        return not has_momentum

    def unpacking_pays(self, numel: int) -> bool:
        """Whether unpacking F F^T on every step (about ten passes over its storage) costs less
        than the product it saves (2 numel d flops): numel >= 256 d, measured on CPU, where a
        ViT's 768 x 192 weight lost 3 ms a step on its 768-axis."""
        return numel >= 256 * self.dim

    def pack_(self, momentum: torch.Tensor, outer: torch.Tensor) -> torch.Tensor:
        """Keep the symmetric F F^T in the strict lower triangle of the symmetric momentum's
        storage (its upper triangle and diagonal stay); ``unpack_outer`` recomputes the
        diagonal of F F^T from F."""
        for m, p in zip(self.squares(momentum), self.squares(outer)):
            m.triu_().add_(p.tril(-1))
        return momentum

    def unpack_momentum(self, packed: torch.Tensor) -> torch.Tensor:
        """The symmetric momentum kept in ``packed``'s upper triangle."""
        out = torch.empty_like(packed)
        for o, b in zip(self.squares(out), self.squares(packed)):
            o.copy_(b.triu() + b.triu(1).transpose(-2, -1))
        return out

    def unpack_outer(
        self, packed: torch.Tensor | None, factor: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        """(F / s)(F / s)^T, packed with s = ``scale`` (shape (b,)), from ``packed``'s strict
        lower triangle and F's row norms."""
        out = torch.empty_like(packed)
        for o, b, f in zip(self.squares(out), self.squares(packed), self.squares(factor)):
            lower = b.tril(-1)
            torch.add(lower, lower.transpose(-2, -1), out=o)
            rows = torch.linalg.vector_norm(f, dim=-1).square()
            o.diagonal(dim1=-2, dim2=-1).copy_(rows / kronecker.per_element(scale.square(), rows))
        return out

    def diagonal(self, f: torch.Tensor) -> torch.Tensor:
        return f.diagonal(dim1=-2, dim2=-1)

    def add_to_diagonal_(self, f: torch.Tensor, value: float) -> torch.Tensor:
        self.diagonal(f).add_(value)
        return f

    def average_trace(self, f: torch.Tensor) -> torch.Tensor:
        return self.diagonal(f).mean(dim=-1)

    def frobenius_norm(self, f: torch.Tensor) -> torch.Tensor:
        """||F||_F of each represented matrix: shape (b,)."""
        return kronecker.frobenius_norm(f)

    def max_abs(self, f: torch.Tensor) -> torch.Tensor:
        return kronecker.max_abs(f)

    def _dense(self, f: torch.Tensor, transpose: bool) -> torch.Tensor:
        dense = self.to_dense(f)
        return dense.transpose(-2, -1) if transpose else dense


class Dense(Structure):
    """Any d x d matrix."""

    def apply_moved(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        return kronecker.multiply_axis_and_move(x, f, transpose)

    def inner_of_rows(self, f: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """F^T (R^T R) F once R has over 2d rows: n d^2 + 2 d^3 flops where (R F)^T (R F) costs
        2 n d^2 (a ViT's 8320 token rows against d = 769: about 40% fewer)."""
        if rows.shape[1] <= 2 * self.dim:
            return super().inner_of_rows(f, rows)
        return f.transpose(1, 2) @ torch.bmm(rows.transpose(1, 2), rows) @ f


@dataclass(frozen=True)
class Diagonal(Structure):
    """Diagonal matrices, kept as their diagonal."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def identity(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return torch.ones(self.dim, dtype=dtype, device=device)

    def to_dense(self, f: torch.Tensor) -> torch.Tensor:
        return torch.diag_embed(f)

    def project(self, s: torch.Tensor) -> torch.Tensor:
        return s.diagonal(dim1=-2, dim2=-1).clone()

    def apply(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        return x * f.unsqueeze(-1)

    def apply_moved(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        return kronecker.multiply_axis_and_move(x, f, transpose)

    def inner(self, f: torch.Tensor) -> torch.Tensor:
        return f * f

    def gram(self, rows: torch.Tensor) -> torch.Tensor:
        return (rows * rows).sum(dim=-1)

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b

    def outer(self, f: torch.Tensor) -> torch.Tensor:
        return f * f

    def caches(self, applications: int) -> bool:
        return True

    def outer_needs_storage(self, has_momentum: bool) -> bool:
        return False

    def unpacking_pays(self, numel: int) -> bool:
        return True

    def pack_(self, momentum: torch.Tensor, outer: torch.Tensor) -> torch.Tensor:
        return momentum

    def unpack_momentum(self, packed: torch.Tensor) -> torch.Tensor:
        return packed

    def unpack_outer(
        self, packed: torch.Tensor | None, factor: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        return self.outer(factor / kronecker.per_element(scale, factor))

    def diagonal(self, f: torch.Tensor) -> torch.Tensor:
        return f


@dataclass(frozen=True)
class BlockDiagonal(Structure):
    """Dense blocks of size ``block`` on the diagonal; a smaller last block takes the remainder."""

    block: int = 30

    @property
    def shape(self) -> tuple[int, ...]:
        count, last = divmod(self.dim, self.block)
        return (count * self.block**2 + last**2,)

    def _split(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (b, n, k, k) of the full blocks and (b, r, r) of the last one."""
        count, last = divmod(self.dim, self.block)
        k2 = count * self.block**2
        blocks = f[:, :k2].view(f.shape[0], count, self.block, self.block)
        return blocks, f[:, k2:].view(f.shape[0], last, last)

    def _join(self, blocks: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        return torch.cat([blocks.flatten(start_dim=1), last.flatten(start_dim=1)], dim=1)

    def _rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A (b, d, c) stack's rows as (b, n, k, c) per block and (b, r, c) for the last."""
        count = self.dim // self.block
        top = x[:, : count * self.block].reshape(x.shape[0], count, self.block, x.shape[-1])
        return top, x[:, count * self.block :]

    def to_dense(self, f: torch.Tensor) -> torch.Tensor:
        blocks, last = self._split(f)
        return torch.stack(
            [torch.block_diag(*bs, tail) for bs, tail in zip(blocks.unbind(0), last.unbind(0))]
        )

    def project(self, s: torch.Tensor) -> torch.Tensor:
        count = self.dim // self.block
        end = count * self.block
        top = s[:, :end, :end].reshape(s.shape[0], count, self.block, count, self.block)
        blocks = top.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)
        return self._join(blocks, s[:, end:, end:])

    def apply(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        blocks, last = self._split(f)
        if transpose:
            blocks, last = blocks.transpose(-2, -1), last.transpose(-2, -1)
        top, rest = self._rows(x)
        return torch.cat([(blocks @ top).flatten(1, 2), last @ rest], dim=1)

    def inner(self, f: torch.Tensor) -> torch.Tensor:
        blocks, last = self._split(f)
        return self._join(blocks.transpose(-2, -1) @ blocks, last.transpose(-2, -1) @ last)

    def gram(self, rows: torch.Tensor) -> torch.Tensor:
        top, rest = self._rows(rows)
        return self._join(top @ top.transpose(-2, -1), rest @ rest.transpose(-2, -1))

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        (a_blocks, a_last), (b_blocks, b_last) = self._split(a), self._split(b)
        return self._join(a_blocks @ b_blocks, a_last @ b_last)

    def outer(self, f: torch.Tensor) -> torch.Tensor:
        blocks, last = self._split(f)
        return self._join(blocks @ blocks.transpose(-2, -1), last @ last.transpose(-2, -1))

    def caches(self, applications: int) -> bool:
        return applications >= self.dim * min(self.block, self.dim)

    def squares(self, f: torch.Tensor) -> list[torch.Tensor]:
        return list(self._split(f))

    def diagonal(self, f: torch.Tensor) -> torch.Tensor:
        blocks, last = self._split(f)
        diagonals = [blocks.diagonal(dim1=-2, dim2=-1).flatten(1), last.diagonal(dim1=-2, dim2=-1)]
        return torch.cat(diagonals, dim=1)

    def add_to_diagonal_(self, f: torch.Tensor, value: float) -> torch.Tensor:
        blocks, last = self._split(f)
        blocks.diagonal(dim1=-2, dim2=-1).add_(value)
        last.diagonal(dim1=-2, dim2=-1).add_(value)
        return f


@dataclass(frozen=True)
class Hierarchical(Structure):
    """[[A, B], [0, C, 0], [0, D, E]]: dense A (k1 x k1) and E (k2 x k2), B the rest of A's rows,
    C diagonal, D the part of E's rows under C. SINGD's hierarchical matrix (f-dangel/singd)."""

    k1: int = 15
    k2: int = 15

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Rows of A, C and E: A fills first, then E, then C (as SINGD does)."""
        a = min(self.dim, self.k1)
        e = min(self.dim - a, self.k2)
        return a, self.dim - a - e, e

    @property
    def shape(self) -> tuple[int, ...]:
        a, c, e = self.sizes
        return (a * a + a * (self.dim - a) + c + e * c + e * e,)

    def _split(self, f: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Views of A, B (a x (d - a)), C (c,), D (e x c), E."""
        (a, c, e), b = self.sizes, f.shape[0]
        shapes = [(a, a), (a, self.dim - a), (c,), (e, c), (e, e)]
        parts = f.split([math.prod(s) for s in shapes], dim=1)
        return tuple(p.view(b, *s) for p, s in zip(parts, shapes))

    @staticmethod
    def _join(*parts: torch.Tensor) -> torch.Tensor:
        return torch.cat([p.flatten(start_dim=1) for p in parts], dim=1)

    def to_dense(self, f: torch.Tensor) -> torch.Tensor:
        A, B, C, D, E = self._split(f)
        a, c, _ = self.sizes
        out = f.new_zeros(f.shape[0], self.dim, self.dim)
        out[:, :a, :a], out[:, :a, a:] = A, B
        out[:, a : a + c, a : a + c] = torch.diag_embed(C)
        out[:, a + c :, a : a + c], out[:, a + c :, a + c :] = D, E
        return out

    def project(self, s: torch.Tensor) -> torch.Tensor:
        a, c, _ = self.sizes
        mid, low = slice(a, a + c), slice(a + c, None)
        diagonal = s[:, mid, mid].diagonal(dim1=-2, dim2=-1)
        return self._join(
            s[:, :a, :a], 2 * s[:, :a, a:], diagonal, 2 * s[:, low, mid], s[:, low, low]
        )

    def apply(self, f: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
        A, B, C, D, E = self._split(f)
        a, c, _ = self.sizes
        top, mid, low = x[:, :a], x[:, a : a + c], x[:, a + c :]
        if transpose:
            rest = B.transpose(-2, -1) @ top
            rest[:, :c] += C.unsqueeze(-1) * mid + D.transpose(-2, -1) @ low
            rest[:, c:] += E.transpose(-2, -1) @ low
            return torch.cat([A.transpose(-2, -1) @ top, rest], dim=1)
        upper = A @ top + B @ x[:, a:]
        return torch.cat([upper, C.unsqueeze(-1) * mid, D @ mid + E @ low], dim=1)

    def inner(self, f: torch.Tensor) -> torch.Tensor:
        A, B, C, D, E = self._split(f)
        c = C.shape[-1]
        B1, B2 = B[..., :c], B[..., c:]
        At = A.transpose(-2, -1)
        diagonal = (B1 * B1).sum(dim=-2) + C * C + (D * D).sum(dim=-2)
        lower = 2 * (B2.transpose(-2, -1) @ B1 + E.transpose(-2, -1) @ D)
        last = B2.transpose(-2, -1) @ B2 + E.transpose(-2, -1) @ E
        return self._join(At @ A, 2 * (At @ B), diagonal, lower, last)

    def gram(self, rows: torch.Tensor) -> torch.Tensor:
        a, c, _ = self.sizes
        top, mid, low = rows[:, :a], rows[:, a : a + c], rows[:, a + c :]

        def outer(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return u @ v.transpose(-2, -1)

        return self._join(
            outer(top, top),
            2 * outer(top, rows[:, a:]),
            (mid * mid).sum(dim=-1),
            2 * outer(low, mid),
            outer(low, low),
        )

    def matmul(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        (A, B, C, D, E), (Ag, Bg, Cg, Dg, Eg) = self._split(f), self._split(g)
        c = C.shape[-1]
        B1, B2 = B[..., :c], B[..., c:]
        right = torch.cat([B1 * Cg.unsqueeze(-2) + B2 @ Dg, B2 @ Eg], dim=-1)
        return self._join(A @ Ag, A @ Bg + right, C * Cg, D * Cg.unsqueeze(-2) + E @ Dg, E @ Eg)

    def outer(self, f: torch.Tensor) -> None:
        return None

    def caches(self, applications: int) -> bool:
        return False

    def diagonal(self, f: torch.Tensor) -> torch.Tensor:
        A, _, C, _, E = self._split(f)
        return torch.cat([A.diagonal(dim1=-2, dim2=-1), C, E.diagonal(dim1=-2, dim2=-1)], dim=-1)

    def add_to_diagonal_(self, f: torch.Tensor, value: float) -> torch.Tensor:
        A, _, C, _, E = self._split(f)
        for part in (A.diagonal(dim1=-2, dim2=-1), C, E.diagonal(dim1=-2, dim2=-1)):
            part.add_(value)
        return f


@dataclass(frozen=True)
class TriangularToeplitz(Structure):
    """Lower (or upper) triangular Toeplitz: t_0 on the diagonal, t_k on the k-th one below
    (above). Such matrices are polynomials in the shift matrix, so products commute and stay."""

    upper: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @functools.cached_property
    def _offsets(self) -> torch.Tensor:
        """|i - j| for every entry (i, j): which t_k a dense entry belongs to."""
        index = torch.arange(self.dim)
        return (index[:, None] - index[None, :]).abs()

    def to_dense(self, f: torch.Tensor) -> torch.Tensor:
        offsets = self._offsets.to(f.device)
        dense = f[:, offsets]
        return dense.triu() if self.upper else dense.tril()

    def project(self, s: torch.Tensor) -> torch.Tensor:
        offsets = self._offsets.to(s.device).flatten()
        sums = s.new_zeros(s.shape[0], self.dim).index_add_(1, offsets, s.flatten(start_dim=1))
        return sums / torch.arange(self.dim, 0, -1, dtype=s.dtype, device=s.device)

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lower = self.to_dense(a).transpose(-2, -1) if self.upper else self.to_dense(a)
        return (lower @ b.unsqueeze(-1)).squeeze(-1)

    def outer(self, f: torch.Tensor) -> None:
        return None

    def caches(self, applications: int) -> bool:
        return False

    def diagonal(self, f: torch.Tensor) -> torch.Tensor:
        return f[:, :1].expand(f.shape[0], self.dim)

    def add_to_diagonal_(self, f: torch.Tensor, value: float) -> torch.Tensor:
        f[:, 0].add_(value)
        return f

    def average_trace(self, f: torch.Tensor) -> torch.Tensor:
        return f[:, 0]

    def frobenius_norm(self, f: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(self.dim, 0, -1, dtype=f.dtype, device=f.device)
        return torch.linalg.vector_norm(f * counts.sqrt(), dim=-1)


def apply_factors(
    x: torch.Tensor, structs: Sequence[Structure], factors: Sequence[torch.Tensor], transpose: bool
) -> torch.Tensor:
    """x x_1 F_1 ... x_N F_N for each stack element (each F_n or its transpose)."""
    for s, factor in zip(structs, factors):
        x = s.apply_moved(factor, x, transpose)
    return x


def apply_outer_products(
    x: torch.Tensor,
    structs: Sequence[Structure],
    factors: Sequence[torch.Tensor],
    is_outer: Sequence[bool],
) -> torch.Tensor:
    """x x_n (F_n F_n^T) for every axis n, where F_n F_n^T is given (``is_outer[n]``) or F_n is
    (then F_n^T and F_n are applied in turn)."""
    for s, factor, outer_given in zip(structs, factors, is_outer):
        if not outer_given:
            x = s.apply_axis(factor, x, transpose=True)
        x = s.apply_moved(factor, x, transpose=False)
    return x


_BUILDERS: dict[str, Callable[[re.Match, int], Structure]] = {
    "dense": lambda m, d: Dense(d),
    "diagonal": lambda m, d: Diagonal(d),
    r"block([1-9]\d*)diagonal": lambda m, d: BlockDiagonal(d, int(m[1])),
    r"hierarchical([1-9]\d*)_([1-9]\d*)": lambda m, d: Hierarchical(d, int(m[1]), int(m[2])),
    "triltoeplitz": lambda m, d: TriangularToeplitz(d, upper=False),
    "triutoeplitz": lambda m, d: TriangularToeplitz(d, upper=True),
}
CHOICES = (
    "dense, diagonal, block<k>diagonal (e.g. block30diagonal), "
    "hierarchical<k1>_<k2> (e.g. hierarchical15_15), triltoeplitz, triutoeplitz"
)


@functools.cache
def structure(name: str, dim: int) -> Structure:
    """The structure ``name`` (sirfshampoo's spellings) for an axis of length ``dim``."""
    for pattern, build in _BUILDERS.items():
        match = re.fullmatch(pattern, name)
        if match:
            return build(match, dim)
    raise ValueError(f"Invalid structure: {name!r}; choose one of {CHOICES}")


def check_spec(spec: object, key: str = "structure") -> None:
    """Raise a one-line ValueError unless ``spec`` is a structure name or {ndim: name(s)}."""
    if isinstance(spec, str):
        entries = {None: [spec]}
    elif isinstance(spec, Mapping):
        entries = {n: [v] if isinstance(v, str) else v for n, v in spec.items()}
    else:
        raise ValueError(f"Invalid {key}: {spec!r}; give a structure name or {{ndim: name(s)}}")
    for ndim, names in entries.items():
        if ndim is not None and not (isinstance(ndim, int) and ndim >= 1):
            raise ValueError(f"Invalid {key}: key {ndim!r}; keys are tensor dimensions (ints >= 1)")
        if not isinstance(names, Sequence) or (ndim is not None and len(names) not in (1, ndim)):
            raise ValueError(
                f"Invalid {key}[{ndim}]: {names!r}; give one name or {ndim}, one per axis"
            )
        for name in names:
            if not isinstance(name, str) or not any(re.fullmatch(p, name) for p in _BUILDERS):
                raise ValueError(f"Invalid {key}: {name!r}; choose one of {CHOICES}")


def axis_names(
    spec: StructureSpec, dims: Sequence[int], max_dense_dim: int | None
) -> tuple[str, ...]:
    """One structure name per axis of a (squeezed) shape: ``spec`` is a name for every axis, or
    {ndim: name or names per axis} (tensors of other ndims get dense factors); axes longer than
    ``max_dense_dim`` get diagonal ones."""
    chosen = spec if isinstance(spec, str) else spec.get(len(dims), "dense")
    names = [chosen] * len(dims) if isinstance(chosen, str) else list(chosen)
    if len(names) == 1:
        names *= len(dims)
    too_long = lambda d: max_dense_dim is not None and d > max_dense_dim  # noqa: E731
    return tuple("diagonal" if too_long(d) else n for n, d in zip(names, dims))
