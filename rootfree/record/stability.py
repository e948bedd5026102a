"""A run's stability from its per-epoch records, in plain Python (the trainer records it without
importing the results module): the worst fall of running training accuracy below its best so
far, and the largest rise of the training loss above its lowest so far."""

from __future__ import annotations

import math
from collections.abc import Sequence


def worst_drop(accuracy: Sequence[float]) -> float:
    """The largest fall of a series below its running maximum (0 for a rising one)."""
    best, worst = -math.inf, 0.0
    for value in accuracy:
        if math.isnan(value):
            continue
        best = max(best, value)
        worst = max(worst, best - value)
    return worst


def largest_spike(loss: Sequence[float]) -> float:
    """The largest ratio of a loss to the lowest loss before it (1: it never rose)."""
    lowest, spike = math.inf, 1.0
    for value in loss:
        if math.isnan(value):
            continue
        if lowest < math.inf and lowest > 0:
            spike = max(spike, value / lowest)
        lowest = min(lowest, value)
    return spike
