"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "multistep", "cosine")


def lr_factor(
    step: int,
    total_steps: int,
    kind: str,
    warmup_steps: int = 0,
    milestones: tuple[float, ...] = (0.5, 0.75),
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``.

    multistep: times gamma at each milestone (fractions of training), as in the paper's CNN runs;
    cosine: linear warm-up, then cosine decay to ``min_factor``, as in its ViT runs.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {kind!r}; choose one of {list(SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    if kind == "multistep":
        return gamma ** sum(step >= m * total_steps for m in milestones)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
