"""Tuning curves: how good an optimizer is after k random-search trials (bootstrap)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rootfree.results.select import CELL


def tuning_curve(scores: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Expected test accuracy of the trial a k-trial search would pick (best validation), k = 1..N.

    Trials are settings (mean over their seeds); each k draws k trials with replacement
    ``resamples`` times. Returns cell columns, k, mean and the 5%/95% bootstrap quantiles.
    """
    rng = np.random.default_rng(seed)
    settings = (
        scores.dropna(subset=["val_acc"])
        .groupby(CELL + ["setting"])[["val_acc", "test_acc"]]
        .mean()
        .reset_index()
    )
    rows = []
    for cell, trials in settings.groupby(CELL):
        val, test = trials["val_acc"].to_numpy(), trials["test_acc"].to_numpy()
        for k in range(1, len(trials) + 1):
            draws = rng.integers(0, len(trials), size=(resamples, k))
            picked = test[draws[np.arange(resamples), val[draws].argmax(axis=1)]]
            rows.append(
                {
                    **dict(zip(CELL, cell)),
                    "k": k,
                    "mean": picked.mean(),
                    "low": np.quantile(picked, 0.05),
                    "high": np.quantile(picked, 0.95),
                }
            )
    return pd.DataFrame(rows)
