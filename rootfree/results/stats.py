"""Statistics over seeds: mean, spread and 95% confidence intervals (Student t)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, sample std and the t-interval half-width (NaN where n < 2)."""
    n = len(values)
    mean = sum(values) / n if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci": math.nan}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci": half}


def welch_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> dict[str, float]:
    """mean(a) - mean(b) with Welch's t-interval (independent samples, unequal variances)."""
    sa, sb = summarize(a), summarize(b)
    diff = sa["mean"] - sb["mean"]
    if sa["n"] < 2 or sb["n"] < 2:
        return {"diff": diff, "ci": math.nan}
    va, vb = sa["std"] ** 2 / sa["n"], sb["std"] ** 2 / sb["n"]
    if va + vb == 0:
        return {"diff": diff, "ci": 0.0}
    dof = (va + vb) ** 2 / (va**2 / (sa["n"] - 1) + vb**2 / (sb["n"] - 1))
    return {"diff": diff, "ci": stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(va + vb)}


def paired_difference(
    a: dict[int, float], b: dict[int, float], confidence: float = 0.95
) -> dict[str, float]:
    """Mean and t-interval of a[seed] - b[seed] over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    summary = summarize([a[s] - b[s] for s in seeds], confidence)
    return {"diff": summary["mean"], "ci": summary["ci"], "pairs": len(seeds)}
