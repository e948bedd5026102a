"""Stability of runs from their per-epoch records: the worst fall of the running training
accuracy below its best so far, and the largest rise of the training loss above its lowest so
far. A setting that collapses mid-training and recovers can still end well; these make it show,
and let selection prefer the best setting that does not."""

from __future__ import annotations

import pandas as pd

from rootfree.record.stability import largest_spike, worst_drop

COLLAPSE = 0.10  # a fall of running train accuracy this large (10 points) is a collapse


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


def stability_markdown(table: pd.DataFrame) -> str:
    """``stability.md``: a ``validity.stable_alternatives`` table with how to read it."""
    text = (
        "# Does the chosen setting collapse, and what is the best one that does not?\n\n"
        "chosen_worst_drop: the largest fall of the running training accuracy below its best so\n"
        f"far, over the chosen setting's seeds; a fall of {COLLAPSE:g} or more is a collapse\n"
        "(the `stable` check). Where the chosen setting collapses, stable_setting is the one the\n"
        "same rule (best mean validation accuracy, or a language model's lowest validation\n"
        "loss, on the seeds every trial shares) picks among the trials whose runs never\n"
        "collapse, with its mean validation and test score over its runs so far (stable_seeds:\n"
        "usually the search's seed 0 alone).\n\n"
    )
    return text + table.to_markdown(index=False, floatfmt=".4g") + "\n"
