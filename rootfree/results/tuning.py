"""Tuning curves: how good an optimizer is after k random-search trials (bootstrap)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rootfree.results.select import CELL, primary_metric, signed_score

KEYS = [*CELL, "budget_label"]  # the label rides along for the figures' titles

SEARCHED = ("lr", "momentum", "lr_cov", "damping", "weight_decay", "riemannian_momentum")
# Upper limits a widened range must not cross (a momentum of 1 or more never converges).
VALID_HIGH = {"momentum": 0.999, "riemannian_momentum": 0.999, "lr_cov": 1.0}


def tuning_curve(scores: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Expected test accuracy (a language model's: test loss) of the trial a k-trial search
    would pick (best validation), k = 1..N.

    Trials are settings (mean over their seeds); each k draws k trials with replacement
    ``resamples`` times. Returns cell columns, k, mean and the 5%/95% bootstrap quantiles.
    Trials are ordered by their scores and each cell has its own generator, so the curve does
    not depend on setting ids or on which other cells exist.
    """
    signed = scores.assign(val=signed_score(scores), test=signed_score(scores, "test"))
    settings = (
        signed.dropna(subset=["val"]).groupby(KEYS + ["setting"])[["val", "test"]].mean()
    ).reset_index()
    rows = []
    for cell, trials in settings.groupby(KEYS):
        rng = np.random.default_rng(seed)
        trials = trials.sort_values(["val", "test"], kind="stable")
        val, test = trials["val"].to_numpy(), trials["test"].to_numpy()
        sign = 1 if primary_metric(cell[0]).higher_is_better else -1  # back to the metric
        for k in range(1, len(trials) + 1):
            draws = rng.integers(0, len(trials), size=(resamples, k))
            picked = sign * test[draws[np.arange(resamples), val[draws].argmax(axis=1)]]
            rows.append(
                {
                    **dict(zip(KEYS, cell)),
                    "k": k,
                    "mean": picked.mean(),
                    "low": np.quantile(picked, 0.05),
                    "high": np.quantile(picked, 0.95),
                }
            )
    return pd.DataFrame(rows)


def narrowed_ranges(
    trials: list[tuple[float, dict]], top: float, margin: float
) -> dict[str, tuple[float, float]]:
    """Per searched hyperparameter: the [min, max] of the best ``top`` fraction, widened."""
    if not trials:
        raise ValueError("no finished trials to narrow from")
    best = sorted(trials, key=lambda t: t[0], reverse=True)[: max(1, math.ceil(top * len(trials)))]
    ranges = {}
    for name in SEARCHED:
        values = [settings[name] for _, settings in best if settings.get(name)]
        if len(values) == len(best) and len({float(v) for v in values}) > 1:
            high = min(max(values) * margin, VALID_HIGH.get(name, float("inf")))
            ranges[name] = (min(values) / margin, high)
    return ranges
