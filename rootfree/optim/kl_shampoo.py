"""KL-Shampoo and KL-SOAP (Lin et al., 2025, arXiv 2509.03378), as the authors' ``KLOpt`` runs
them (github.com/yorkerlin/KL-Methods, ``optim/kl_opt.py``; docs/update_rules.md).

A parameter whose squeezed gradient G has shape (k_1, ..., k_N) keeps per axis n an eigenbasis
Q_n and eigenvalue estimates lambda_n, stored as s_n = lambda_n^(-1/2), so that
S_n ~ Q_n diag(lambda_n) Q_n^T; an axis with a dense factor also keeps the factor S_n itself.
Vectors (and axes longer than ``max_preconditioner_dim``) keep no factor: their basis is the
identity. With beta = betas[1] (KL-SOAP: ``shampoo_beta`` if given) and c_n = numel / k_n, every
step after the first, all from the previous Q and s,

    W_n = G x_{j!=n} diag(s_j) Q_j^T                       (G whitened along the other axes)
    S_n <- beta S_n + (1 - beta) W_(n) W_(n)^T / c_n
    lambda_n <- beta lambda_n + (1 - beta) diag(Q_n^T W_(n) W_(n)^T Q_n) / c_n
    s_n = min(lambda_n^(-1/2), max(10, min(k_n, inverse_root_clamp)))   (the clamp feeds back)

and every ``update_every`` steps the bases take one power iteration, Q_n <- qr(S_n Q_n).Q (in
``basis_dtype``), after the factors' update. The first step only sets
S_n = (1 - beta) G_(n) G_(n)^T / c_n, Q_n from its eigendecomposition (eigenvalues descending)
and lambda_n = init_factor: it moves no parameter. The steps, with X^ = X x_n Q_n^T,

    KL-Shampoo: m <- betas[0] m + (1 - betas[0]) G;   U = m^ * s / (1 + eps s), s = (x)_n s_n
    KL-SOAP:    m^ <- betas[0] m^ + (1 - betas[0]) G^;  v <- betas[1] v + (1 - betas[1]) G^^2;
                U = m^ / (sqrt(v) + eps)     (m^ and v live in the eigenbasis; on a refresh m^ is
                                              carried to the new basis, v is not)
    p <- (p - lr U x_n Q_n) (1 - lr weight_decay)

There is no bias correction. The inverse square root is elementwise on the tracked eigenvalues,
but the bases come from an eigendecomposition and QR: a root-based method.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from rootfree.optim import kronecker
from rootfree.optim.base import PreconditionedOptimizer, grad_or_raise
from rootfree.optim.spec import ADAM_PAPER_NAMES, OptimizerSpec, PaperName, SearchRange
from rootfree.optim.validation import (
    check_betas,
    check_lr,
    check_nonnegative,
    check_positive_int,
    dtype_name,
    resolve_dtype,
)

BASIS_DTYPES = ("float32", "float64")
MIN_CLAMP = 10.0  # the clamp on s_n is never below this, whatever the axis length
Bases = Sequence[torch.Tensor | None]


# ---- the functional core: one parameter's tensors in, new tensors out (or updated in place) ----


def rotate(x: torch.Tensor, bases: Bases, transpose: bool) -> torch.Tensor:
    """x with Q_n (or Q_n^T) applied to each axis n; a None basis leaves its axis as it is."""
    stacked = x.unsqueeze(0)
    for basis in bases:
        if basis is None:
            stacked = stacked.movedim(1, -1)
        else:
            stacked = kronecker.multiply_axis_and_move(stacked, basis.unsqueeze(0), transpose)
    return stacked[0]


def project(x: torch.Tensor, bases: Bases) -> torch.Tensor:
    """x in the eigenbasis: x x_n Q_n^T."""
    return rotate(x, bases, transpose=True)


def project_back(x: torch.Tensor, bases: Bases) -> torch.Tensor:
    """x from the eigenbasis back to the parameter's coordinates: x x_n Q_n."""
    return rotate(x, bases, transpose=False)


def along(vector: torch.Tensor, axis: int, order: int) -> torch.Tensor:
    """A vector viewed along ``axis`` of an order-``order`` tensor, to broadcast against it."""
    return vector.view(*([1] * axis), -1, *([1] * (order - axis - 1)))


def kron_scale(inverse_roots: Sequence[torch.Tensor], skip: int | None = None) -> torch.Tensor:
    """(x)_{n != skip} s_n as a broadcastable tensor (a 0-d one if no axis is left)."""
    order = len(inverse_roots)
    scale = torch.ones((), dtype=inverse_roots[0].dtype, device=inverse_roots[0].device)
    for n, s in enumerate(inverse_roots):
        if n != skip:
            scale = scale * along(s, n, order)
    return scale


def mean_except(x: torch.Tensor, axis: int) -> torch.Tensor:
    """The mean over every axis but ``axis``."""
    dims = tuple(j for j in range(x.ndim) if j != axis)
    return x.mean(dim=dims) if dims else x


def gram_statistics(grad: torch.Tensor, dense: Sequence[bool]) -> list[torch.Tensor | None]:
    """G_(n) G_(n)^T per ``dense`` axis (None elsewhere): the first step's statistics."""
    stacked = grad.unsqueeze(0)
    return [
        kronecker.gram(stacked, n, diagonal=False)[0] if keep else None
        for n, keep in enumerate(dense)
    ]


def whitened_statistics(
    grad: torch.Tensor, bases: Bases, inverse_roots: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor | None], list[torch.Tensor]]:
    """Per axis n, W_(n) W_(n)^T with W_n = G x_{j!=n} diag(s_j) Q_j^T (None where the axis keeps
    no factor), and diag(Q_n^T W_(n) W_(n)^T Q_n) / (numel / k_n); all from the given Q and s."""
    order = grad.ndim
    grams: list[torch.Tensor | None] = []
    projected = None
    for n in range(order):
        others = [None if j == n else basis for j, basis in enumerate(bases)]
        half = rotate(grad, others, transpose=True)
        if n == 0:
            projected = rotate(half, [bases[0], *[None] * (order - 1)], transpose=True)
        if bases[n] is None:
            grams.append(None)
            continue
        whitened = half * kron_scale(inverse_roots, skip=n)
        grams.append(kronecker.gram(whitened.unsqueeze(0), n, diagonal=False)[0])
    diagonals = [
        mean_except((projected * kron_scale(inverse_roots, skip=n)).square(), n)
        for n in range(order)
    ]
    return grams, diagonals


def updated_inverse_root(
    inverse_root: torch.Tensor, diagonal: torch.Tensor, beta: float, bound: float | None
) -> torch.Tensor:
    """s_n after lambda_n <- beta lambda_n + (1 - beta) diagonal, with lambda_n = s_n^-2 (0 where
    s_n is 0) and s_n = lambda_n^(-1/2) (0 where lambda_n is 0), clamped at ``bound``."""
    estimate = (1.0 / inverse_root.square()).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    estimate.lerp_(diagonal, 1.0 - beta)
    new = (1.0 / torch.sqrt(estimate)).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return new if bound is None else new.clamp(max=bound)


def clamp_bound(dim: int, inverse_root_clamp: int | None) -> float | None:
    """The largest s_n an axis of length ``dim`` may keep: max(10, min(dim, clamp))."""
    if inverse_root_clamp is None:
        return None
    return max(MIN_CLAMP, min(dim, inverse_root_clamp))


def curvature_damping_terms(inverse_roots: Sequence[torch.Tensor], damping: float) -> list:
    """damping * prod_{j!=n} mean(s_j^2) per axis n: the damping the authors' ``using_damping``
    adds to each eigenvalue estimate (tr(S_j^-1) / d_j of the other axes)."""
    traces = [s.square().mean() for s in inverse_roots]
    terms = []
    for n in range(len(traces)):
        term = torch.ones_like(traces[0]) * damping
        for j, trace in enumerate(traces):
            if j != n:
                term = term * trace
        terms.append(term)
    return terms


def eigenbasis(factor: torch.Tensor, basis_dtype: torch.dtype) -> torch.Tensor:
    """The eigenvectors of a symmetric factor, eigenvalues descending, computed in
    ``basis_dtype`` (retried in fp64 if eigh fails), in the factor's dtype."""
    matrix = factor.to(basis_dtype)
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    try:
        _, vectors = torch.linalg.eigh(matrix + 1e-30 * eye)
    except torch.linalg.LinAlgError:
        _, vectors = torch.linalg.eigh(matrix.double() + 1e-30 * eye.double())
    return vectors.flip(-1).to(factor.dtype)


def power_iteration(
    factor: torch.Tensor, basis: torch.Tensor, basis_dtype: torch.dtype
) -> torch.Tensor:
    """One step of power iteration from ``basis``: qr(S_n Q_n).Q, computed in ``basis_dtype``."""
    vectors, _ = torch.linalg.qr(factor.to(basis_dtype) @ basis.to(basis_dtype))
    return vectors.to(basis.dtype)


def initial_inverse_root(
    dim: int, init_factor: float, basis_dtype: torch.dtype, like: torch.Tensor
) -> torch.Tensor:
    """s_n = init_factor^(-1/2) for every direction, rounded through ``basis_dtype`` as the
    authors' code computes it beside the eigendecomposition."""
    start = torch.full((dim,), init_factor, dtype=basis_dtype, device=like.device)
    return (1.0 / torch.sqrt(start)).to(like.dtype)


def start_preconditioner(
    grad: torch.Tensor,
    dense: Sequence[bool],
    beta: float,
    init_factor: float,
    basis_dtype: torch.dtype,
) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None], list[torch.Tensor]]:
    """The first step's factors (1 - beta) G_(n) G_(n)^T / (numel / k_n), their eigenbases and
    s_n = init_factor^(-1/2), for the axes marked ``dense`` (the others keep none)."""
    numel = grad.numel()
    factors: list[torch.Tensor | None] = []
    for dim, gram in zip(grad.shape, gram_statistics(grad, dense)):
        if gram is None:
            factors.append(None)
        else:
            factors.append(torch.zeros_like(gram).add_(gram, alpha=(1.0 - beta) / (numel / dim)))
    bases = [None if f is None else eigenbasis(f, basis_dtype) for f in factors]
    roots = [initial_inverse_root(d, init_factor, basis_dtype, grad) for d in grad.shape]
    return factors, bases, roots


def update_preconditioner_(
    grad: torch.Tensor,
    factors: list[torch.Tensor | None],
    bases: Bases,
    inverse_roots: list[torch.Tensor],
    beta: float,
    damping: float,
    inverse_root_clamp: int | None,
) -> None:
    """One step of the factors' and eigenvalue estimates' EMAs, all from the current Q and s
    (``damping`` > 0 adds the curvature damping); ``factors`` and ``inverse_roots`` in place."""
    numel = grad.numel()
    grams, diagonals = whitened_statistics(grad, bases, inverse_roots)
    terms = curvature_damping_terms(inverse_roots, damping) if damping > 0 else None
    for n, (dim, gram, diagonal) in enumerate(zip(grad.shape, grams, diagonals)):
        if gram is not None:
            factors[n].mul_(beta).add_(gram, alpha=(1.0 - beta) / (numel / dim))
        if terms is not None:
            diagonal = diagonal + terms[n]
        bound = clamp_bound(dim, inverse_root_clamp)
        inverse_roots[n] = updated_inverse_root(inverse_roots[n], diagonal, beta, bound)


def refresh_bases(
    factors: Sequence[torch.Tensor | None], bases: Bases, basis_dtype: torch.dtype
) -> list[torch.Tensor | None]:
    """Every basis after one power iteration on its factor."""
    return [
        None if basis is None else power_iteration(factor, basis, basis_dtype)
        for factor, basis in zip(factors, bases)
    ]


def kl_shampoo_direction(
    exp_avg: torch.Tensor, bases: Bases, inverse_roots: Sequence[torch.Tensor], eps: float
) -> torch.Tensor:
    """KL-Shampoo's step: m^ * s / (1 + eps s) with s = (x)_n s_n, back in the parameter's
    coordinates."""
    scale = kron_scale(inverse_roots)
    scale = scale / (1.0 + scale * eps)
    return project_back(project(exp_avg, bases) * scale, bases)


def kl_soap_direction(
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    bases: Bases,
    betas: tuple[float, float],
    eps: float,
) -> torch.Tensor:
    """KL-SOAP's step: Adam without bias correction in the eigenbasis (m^ and v updated in
    place), back in the parameter's coordinates."""
    projected = project(grad, bases)
    exp_avg.lerp_(projected, 1.0 - betas[0])
    exp_avg_sq.lerp_(projected.square(), 1.0 - betas[1])
    return project_back(exp_avg / exp_avg_sq.sqrt().add_(eps), bases)


# ---- the optimizers ----


class _KLOptimizer(PreconditionedOptimizer):
    """What KL-Shampoo and KL-SOAP share: state, preconditioner updates and the parameter step."""

    soap = False

    def _check_and_build(self, params: Iterable[Any], **settings: Any) -> None:
        check_lr(settings["lr"])
        check_betas(settings["betas"])
        check_nonnegative("eps", settings["eps"])
        check_nonnegative("weight_decay", settings["weight_decay"])
        check_positive_int("update_every", settings["update_every"])
        if not settings["init_factor"] > 0.0:
            raise ValueError(f"Invalid init_factor value: {settings['init_factor']} (must be > 0)")
        for name in ("inverse_root_clamp", "max_preconditioner_dim"):
            if settings[name] is not None:
                check_positive_int(name, settings[name])
        settings["betas"] = tuple(settings["betas"])
        settings["curvature_damping"] = bool(settings["curvature_damping"])
        settings["preconditioner_dtype"] = dtype_name(
            "preconditioner_dtype", settings["preconditioner_dtype"]
        )
        settings["basis_dtype"] = dtype_name("basis_dtype", settings["basis_dtype"], BASIS_DTYPES)
        if settings["basis_dtype"] is None:
            raise ValueError("Invalid basis_dtype: None; choose float32 or float64")
        super().__init__(params, settings)

    @staticmethod
    def _factor_beta(group: dict[str, Any]) -> float:
        return group["betas"][1]

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            dtype = resolve_dtype(group["preconditioner_dtype"], param.dtype)
            shape = kronecker.squeezed_shape(param.shape)
            state["step"] = 0
            state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=param.device)
            if self.soap:
                state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=param.device)
        return state

    def _dense_axes(self, group: dict[str, Any], shape: torch.Size) -> list[bool]:
        """Which axes keep a factor and a basis: every axis of a tensor of order >= 2 up to
        ``max_preconditioner_dim`` long (a vector keeps none, as in the authors' layout)."""
        limit = group["max_preconditioner_dim"]
        return [len(shape) > 1 and (limit is None or d <= limit) for d in shape]

    def _step_group(self, group: dict[str, Any]) -> None:
        beta = self._factor_beta(group)
        basis_dtype = getattr(torch, group["basis_dtype"])
        damping = group["eps"] if group["curvature_damping"] else 0.0
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self._init_state(group, param)
            grad = grad_or_raise(param, type(self).__name__)
            grad = grad.reshape(state["exp_avg"].shape).to(state["exp_avg"].dtype)
            state["step"] += 1
            if state["step"] == 1:
                dense = self._dense_axes(group, grad.shape)
                factors, bases, roots = start_preconditioner(
                    grad, dense, beta, group["init_factor"], basis_dtype
                )
                state.update(factors=factors, bases=bases, inverse_roots=roots)
                continue  # the authors' first step only starts the preconditioner
            direction = self._direction(group, state, grad)
            refresh = (state["step"] - 1) % group["update_every"] == 0
            if refresh and self.soap:
                state["exp_avg"] = project_back(state["exp_avg"], state["bases"])
            update_preconditioner_(
                grad,
                state["factors"],
                state["bases"],
                state["inverse_roots"],
                beta,
                damping,
                group["inverse_root_clamp"],
            )
            if refresh:
                state["bases"] = refresh_bases(state["factors"], state["bases"], basis_dtype)
                if self.soap:
                    state["exp_avg"] = project(state["exp_avg"], state["bases"])
            param.add_(direction.view(param.shape), alpha=-group["lr"])
            if group["weight_decay"] > 0.0:
                param.add_(param, alpha=-group["lr"] * group["weight_decay"])

    def _direction(
        self, group: dict[str, Any], state: dict[str, Any], grad: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


class KLShampoo(_KLOptimizer):
    """KL-Shampoo: Kronecker factors fitted by KL minimisation, eigenvalues tracked every step
    in a basis refreshed by power iteration, numerically the authors' ``KLOpt`` on matrices.

    Args:
        lr: step size.
        betas: (momentum on the gradient, the factors' and eigenvalues' EMA beta); the paper
            vocabulary's lr_cov is 1 - betas[1].
        eps: damping of the step, s / (1 + eps s) (the paper vocabulary's damping).
        weight_decay: decay applied after the step, p <- p (1 - lr weight_decay).
        update_every: T, steps between the bases' power iterations (the authors'
            ``precondition_frequency``).
        init_factor: the eigenvalue estimates' start.
        curvature_damping: also add eps to the eigenvalue estimates (the authors'
            ``using_damping``).
        inverse_root_clamp: s_n is clamped at max(10, min(k_n, this)) for an axis of length k_n;
            ``None``: no clamping (the authors' ``using_clamping=False``).
        preconditioner_dtype: dtype of the state and of the preconditioner's arithmetic (the
            authors' ``cast_dtype``); ``None``: the parameter's.
        basis_dtype: dtype of the eigendecomposition and the QR (the authors': float32).
        max_preconditioner_dim: axes longer than this keep no factor (identity basis);
            ``None``: no limit, as the authors'.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        update_every: int = 10,
        *,
        init_factor: float = 0.1,
        curvature_damping: bool = False,
        inverse_root_clamp: int | None = 4000,
        preconditioner_dtype: str | torch.dtype | None = "bfloat16",
        basis_dtype: str | torch.dtype = "float32",
        max_preconditioner_dim: int | None = None,
    ) -> None:
        self._check_and_build(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            update_every=update_every,
            init_factor=init_factor,
            curvature_damping=curvature_damping,
            inverse_root_clamp=inverse_root_clamp,
            preconditioner_dtype=preconditioner_dtype,
            basis_dtype=basis_dtype,
            max_preconditioner_dim=max_preconditioner_dim,
        )

    def _direction(
        self, group: dict[str, Any], state: dict[str, Any], grad: torch.Tensor
    ) -> torch.Tensor:
        exp_avg = state["exp_avg"].lerp_(grad, 1.0 - group["betas"][0])
        return kl_shampoo_direction(exp_avg, state["bases"], state["inverse_roots"], group["eps"])


class KLSOAP(_KLOptimizer):
    """KL-SOAP: Adam in the eigenbasis of KL-Shampoo's factors, numerically the authors'
    ``KLOpt(using_klsoap=True)`` on matrices.

    Args are KL-Shampoo's, except:
        betas: (Adam's beta1, Adam's beta2), beta2 also the factors' EMA beta unless
            ``shampoo_beta`` is given; the paper vocabulary's lr_cov is 1 - betas[1].
        eps: Adam's epsilon, sqrt(v) + eps (the paper vocabulary's damping).
        shampoo_beta: the factors' and eigenvalues' EMA beta; ``None``: betas[1].
    """

    soap = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        update_every: int = 10,
        *,
        shampoo_beta: float | None = None,
        init_factor: float = 0.1,
        curvature_damping: bool = False,
        inverse_root_clamp: int | None = 4000,
        preconditioner_dtype: str | torch.dtype | None = "bfloat16",
        basis_dtype: str | torch.dtype = "float32",
        max_preconditioner_dim: int | None = None,
    ) -> None:
        if shampoo_beta is not None:
            check_betas((0.0, shampoo_beta))
        self._check_and_build(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            update_every=update_every,
            shampoo_beta=shampoo_beta,
            init_factor=init_factor,
            curvature_damping=curvature_damping,
            inverse_root_clamp=inverse_root_clamp,
            preconditioner_dtype=preconditioner_dtype,
            basis_dtype=basis_dtype,
            max_preconditioner_dim=max_preconditioner_dim,
        )

    @staticmethod
    def _factor_beta(group: dict[str, Any]) -> float:
        beta = group["shampoo_beta"]
        return group["betas"][1] if beta is None else beta

    def _direction(
        self, group: dict[str, Any], state: dict[str, Any], grad: torch.Tensor
    ) -> torch.Tensor:
        return kl_soap_direction(
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["bases"],
            group["betas"],
            group["eps"],
        )


PAPER_NAMES = {**ADAM_PAPER_NAMES, "damping": PaperName("eps")}
DEFAULTS = {
    "lr": 1.0e-4,
    "momentum": 0.9,
    "lr_cov": 0.02,
    "damping": 1.0e-8,
    "weight_decay": 0.01,
    "update_every": 10,
    "init_factor": 0.1,
    "curvature_damping": False,
    "inverse_root_clamp": 4000,
    "preconditioner_dtype": "bfloat16",
    "basis_dtype": "float32",
    "max_preconditioner_dim": None,
}
SEARCH = {
    "lr": SearchRange(1e-5, 0.1),
    "momentum": SearchRange(0.1, 0.99),
    "lr_cov": SearchRange(1e-3, 0.3),
    "damping": SearchRange(1e-12, 1e-4),
    "weight_decay": SearchRange(1e-5, 0.1),
}
BENCH = {"lr": 1e-3, "update_every": 10, "preconditioner_dtype": "float32"}
NOTES = (
    "Defaults are the authors' KLOpt defaults (github.com/yorkerlin/KL-Methods, optim/kl_opt.py "
    "at a02e622): lr 1e-4, betas (0.9, 0.98), eps 1e-8, weight_decay 0.01, precondition "
    "frequency 10, init_factor 0.1, eigenvalue clamping at 4000, no curvature damping, the "
    "state and arithmetic in bf16 and the eigendecomposition and QR in fp32. Their repository "
    "names no tuned settings or ranges; the stage-1 ranges here are wide ones. Their code has a "
    "path for matrices and 3-tensors only: here vectors (and axes past max_preconditioner_dim) "
    "keep no factor, their eigenvalue estimates following the same rule in the identity basis, "
    "and tensors of every order update each axis from the previous state, as the authors' "
    "matrix path does (their 3-tensor path reads two estimates mid-update; "
    "docs/update_rules.md)."
)

SPECS = (
    OptimizerSpec(
        "kl_shampoo",
        KLShampoo,
        family="kronecker",
        paper_names=PAPER_NAMES,
        defaults=DEFAULTS,
        search=SEARCH,
        dtype_arguments=("preconditioner_dtype", "basis_dtype"),
        bench=BENCH,
        description="KL-Shampoo: Kronecker factors fitted by KL minimisation, eigenvalues "
        "tracked in a power-iterated eigenbasis (Lin et al., 2025)",
        notes=NOTES,
    ),
    OptimizerSpec(
        "kl_soap",
        KLSOAP,
        family="kronecker",
        paper_names=PAPER_NAMES,
        defaults={**DEFAULTS, "shampoo_beta": None},
        search=SEARCH,
        dtype_arguments=("preconditioner_dtype", "basis_dtype"),
        bench=BENCH,
        description="KL-SOAP: Adam in the eigenbasis of KL-Shampoo's factors (Lin et al., 2025)",
        notes=NOTES + " KL-SOAP's betas[1] is both Adam's beta2 and the factors' EMA beta "
        "unless shampoo_beta is set.",
    ),
)
