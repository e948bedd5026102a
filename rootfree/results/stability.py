"""Stability of runs from their per-epoch records: the worst fall of the running training
accuracy below its best so far, and the largest rise of the training loss above its lowest so
far. A setting that collapses mid-training and recovers can still end well; these make it show,
and let selection prefer the best setting that does not."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

COLLAPSE = 0.10  # a fall of running train accuracy this large (10 points) is a collapse


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


def run_stability(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run of a tidy frame: worst_acc_drop and loss_spike over its logged epochs."""
    logged = frame.dropna(subset=["epoch"]).sort_values(["run", "epoch"])
    rows = [
        {
            "run": run,
            "worst_acc_drop": worst_drop(epochs["train_acc"].astype(float).tolist()),
            "loss_spike": largest_spike(epochs["train_loss"].astype(float).tolist()),
        }
        for run, epochs in logged.groupby("run")
        if "train_acc" in epochs and "train_loss" in epochs
    ]
    return pd.DataFrame(rows, columns=["run", "worst_acc_drop", "loss_spike"])
