"""Behaviour every rootfree optimizer shares: closures, autocast-free steps, dtype-keeping resume."""

from __future__ import annotations

import contextlib
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.optim import Optimizer

_AUTOCAST_DEVICES = ("cpu", "cuda")


@contextlib.contextmanager
def autocast_disabled() -> Iterator[None]:
    """Run optimizer math in the dtypes we chose, even when step() is called under autocast.

    Autocast would silently turn the Kronecker methods' matmuls into bf16/fp16 matmuls.
    """
    with contextlib.ExitStack() as stack:
        for device in _AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device):
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
        yield


def _restore_dtypes(value: Any, saved: Any) -> Any:
    """Cast ``value`` (possibly nested in lists) back to the dtypes of the ``saved`` state."""
    if torch.is_tensor(value) and torch.is_tensor(saved):
        return value if value.dtype == saved.dtype else value.to(saved.dtype)
    if isinstance(value, list) and isinstance(saved, list):
        return [_restore_dtypes(v, s) for v, s in zip(value, saved)]
    return value


class PreconditionedOptimizer(Optimizer):
    """Base class of rootfree's optimizers, root-free and root-based alike: subclasses implement
    ``_init_state(group, param)`` and ``_step_group(group)`` for one param group."""

    def _init_state(self, group: dict[str, Any], param: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with autocast_disabled():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    # group keys renamed since a checkpoint may have been written: {old: new}
    RENAMED_GROUP_KEYS = {"batched": "foreach", "use_bias_correction": "bias_correction"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load like torch does, but keep each state tensor's saved dtype (and read checkpoints
        written before a group key was renamed).

        torch casts all floating state to the parameter's dtype, which would turn a bf16
        second moment or preconditioner into fp32 on resume and break bitwise continuation.
        """
        groups = [
            {self.RENAMED_GROUP_KEYS.get(k, k): v for k, v in group.items()}
            for group in state_dict["param_groups"]
        ]
        super().load_state_dict({**state_dict, "param_groups": groups})
        saved_ids = [pid for group in state_dict["param_groups"] for pid in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for pid, param in zip(saved_ids, params):
            saved_state = state_dict["state"].get(pid)
            if saved_state is None or param not in self.state:
                continue
            state = self.state[param]
            for key, value in state.items():
                state[key] = _restore_dtypes(value, saved_state.get(key))


RootfreeOptimizer = PreconditionedOptimizer  # the former name, kept for one release


def renamed(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """A renamed argument's value: the old name still works for one release, with a warning."""
    if old_value is None:
        return new_value
    warnings.warn(
        f"{old}= is now {new}=; the old name goes in the next release", DeprecationWarning, 3
    )
    return old_value


def grad_or_raise(param: torch.Tensor, name: str) -> torch.Tensor:
    grad = param.grad
    if grad.is_sparse:
        raise RuntimeError(f"{name} does not support sparse gradients")
    return grad


def group_by_device_and_dtypes(*columns: list[Any]) -> list[tuple[list[Any], ...]]:
    """Split parallel lists into sublists whose tensors share device and dtype, column by column.

    Unlike torch's helper, state may have another dtype than its parameter (bf16 state).
    """
    groups: dict[tuple[Any, ...], list[list[Any]]] = defaultdict(lambda: [[] for _ in columns])
    for row in zip(*columns):
        key = tuple((t.device, t.dtype) if torch.is_tensor(t) else None for t in row)
        for column, value in zip(groups[key], row):
            column.append(value)
    return [tuple(group) for group in groups.values()]


def foreach_scale_(tensors: list[torch.Tensor], factor: float) -> None:
    """tensors *= factor, rounding like ``Tensor.mul_(factor)``.

    ``torch._foreach_mul_`` with a Python scalar rounds the scalar to the tensors' dtype first on
    CPU (0.99 becomes 0.98828125 in bf16: lr_cov 0.01 would act as 0.0117). A 0-d tensor in the
    op-math dtype keeps the factor as the for-loop does, so the foreach path stays bitwise equal.
    """
    opmath = torch.promote_types(tensors[0].dtype, torch.float32)
    torch._foreach_mul_(tensors, torch.tensor(factor, dtype=opmath))
