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
        return {"diff": diff, "ci": math.nan, "p": math.nan}
    va, vb = sa["std"] ** 2 / sa["n"], sb["std"] ** 2 / sb["n"]
    if va + vb == 0:
        return {"diff": diff, "ci": 0.0, "p": float(diff == 0)}
    dof = (va + vb) ** 2 / (va**2 / (sa["n"] - 1) + vb**2 / (sb["n"] - 1))
    se = math.sqrt(va + vb)
    return {
        "diff": diff,
        "ci": stats.t.ppf(0.5 + confidence / 2, dof) * se,
        "p": _two_sided_p(diff / se, dof),
    }


def _two_sided_p(t: float, dof: float) -> float:
    return float(2 * stats.t.sf(abs(t), dof))


def paired_difference(
    a: dict[int, float], b: dict[int, float], confidence: float = 0.95
) -> dict[str, float]:
    """Mean, t-interval and two-sided p-value of a[seed] - b[seed] over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    summary = summarize([a[s] - b[s] for s in seeds], confidence)
    n, mean, std = summary["n"], summary["mean"], summary["std"]
    if n < 2:
        p = math.nan
    elif std == 0:
        p = float(mean == 0)
    else:
        p = _two_sided_p(mean / (std / math.sqrt(n)), n - 1)
    return {"diff": mean, "ci": summary["ci"], "pairs": len(seeds), "p": p}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN ones are not tests and stay
    NaN): the k-th smallest of m is multiplied by m - k + 1, made monotone, capped at 1."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[index] = running
    return adjusted
