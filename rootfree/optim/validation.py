"""Hyperparameter checks shared by rootfree's optimizers.

Messages follow torch.optim's wording ("Invalid learning rate: -1") and add the valid range,
so a bad value from a config or a sweep is named together with what would have been accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr} (lr must be >= 0)")


def check_nonnegative(name: str, value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"Invalid {name} value: {value} ({name} must be >= 0)")


def check_unit_interval(name: str, value: float, *, open_low: bool, open_high: bool) -> None:
    """Check that ``value`` lies in the unit interval with the given open/closed ends."""
    low_ok = value > 0.0 if open_low else value >= 0.0
    high_ok = value < 1.0 if open_high else value <= 1.0
    if not (low_ok and high_ok):
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ValueError(f"Invalid {name} value: {value} ({name} must be in {interval})")


def check_betas(betas: tuple[float, float]) -> None:
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(
                f"Invalid beta parameter at index {index}: {beta} (betas must be in [0, 1))"
            )


def check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {name} value: {value!r} ({name} must be an integer >= 1)")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"Invalid {name}: {value!r}; choose one of {choices}")


def dtype_name(
    name: str, value: str | torch.dtype | None, choices: Iterable[str] = DTYPES
) -> str | None:
    """Normalise a dtype given as ``torch.float32``, ``"float32"`` or ``None`` to its name.

    Param groups keep the name, not the ``torch.dtype``, so optimizer state dicts stay plain data.
    """
    if value is None:
        return None
    choices = list(choices)
    text = str(value).removeprefix("torch.") if isinstance(value, torch.dtype) else value
    if text not in choices:
        raise ValueError(f"Invalid {name}: {value!r}; choose one of {choices} or None")
    return text


def resolve_dtype(name: str | None, default: torch.dtype) -> torch.dtype:
    """The ``torch.dtype`` for a name kept in a param group; ``None`` means ``default``."""
    return default if name is None else DTYPES[name]
