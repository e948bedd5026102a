"""How far a rerun of a whole search moves its result: two searches of one comparison with
different sampler seeds, each with its chosen setting reseeded; per optimizer, the two chosen
settings' test accuracy (a language model's test loss) and their difference (Welch, over each
one's seeds); and whether each reading of the first search's comparison (a difference that
survives Holm's adjustment, or not) survives the rerun."""

from __future__ import annotations

import math

import pandas as pd

from rootfree.optim import get_optimizer_spec
from rootfree.results.select import CELL, PANEL, primary_metric
from rootfree.results.stats import summarize, welch_difference


def _chosen_accuracies(scores: pd.DataFrame, chosen: pd.DataFrame) -> dict[tuple, tuple]:
    """Per cell: (the chosen setting, its finished seeds' test metric: accuracy, or a language
    model's loss)."""
    out = {}
    for row in chosen.itertuples(index=False):
        key = tuple(getattr(row, c) for c in CELL)
        column = f"test_{primary_metric(row.dataset).name}"
        runs = scores[(scores["setting"] == row.setting) & scores[column].notna()]
        out[key] = (row.setting, runs[column].tolist())
    return out


def search_rerun_table(
    first: tuple[pd.DataFrame, pd.DataFrame], rerun: tuple[pd.DataFrame, pd.DataFrame]
) -> pd.DataFrame:
    """One row per cell chosen in both searches: each chosen setting's mean test accuracy and
    seeds, whether the rerun chose the same setting, and rerun minus first with Welch's CI.
    ``first`` and ``rerun``: (run scores, chosen settings) as ``run_scores`` and
    ``select_best`` give them."""
    one, two = _chosen_accuracies(*first), _chosen_accuracies(*rerun)
    rows = []
    for key in [k for k in one if k in two]:
        (setting_a, a), (setting_b, b) = one[key], two[key]
        gap = welch_difference(b, a)
        name = primary_metric(key[0]).name
        rows.append(
            {
                **dict(zip(CELL, key)),
                f"test_{name}": summarize(a)["mean"],
                "seeds": len(a),
                f"rerun_test_{name}": summarize(b)["mean"],
                "rerun_seeds": len(b),
                "same_setting": setting_a == setting_b,
                "moved": gap["diff"],
                "moved_ci95": gap["ci"],
            }
        )
    return pd.DataFrame(rows)


# (difference, its CI, its Holm-adjusted p, paired?) of each reading a comparison table holds
READINGS = (
    ("gap_to_sgd", "gap_ci95", "gap_p_holm", False),
    ("gap_to_adamw", "gap_to_adamw_ci95", "gap_to_adamw_p_holm", False),
    ("vs_counterpart", "vs_counterpart_ci95", "vs_counterpart_p_holm", True),
)


def _readings(table: pd.DataFrame) -> dict[tuple, dict]:
    """Each distinct reading of a comparison table (a ``with_holm`` table): (panel, optimizer,
    baseline, paired) -> its difference, CI and Holm p. A Welch test two rows report (AdamW
    vs SGD, SGD vs AdamW) counts once, from the first row that holds it."""
    out, seen = {}, set()
    for row in table.to_dict("records"):
        for diff, ci, p, paired in READINGS:
            if pd.isna(row.get(diff)):
                continue
            if paired:
                baseline = get_optimizer_spec(row["optimizer"]).counterpart
            else:
                baseline = diff.removeprefix("gap_to_")
            pair = (*(row[c] for c in PANEL), frozenset((row["optimizer"], baseline)), paired)
            if pair in seen:
                continue
            seen.add(pair)
            key = (*(row[c] for c in PANEL), row["optimizer"], baseline, paired)
            out[key] = {"diff": row[diff], "ci95": row[ci], "p_holm": row.get(p, math.nan)}
    return out


def verdict(first: dict, rerun: dict, alpha: float = 0.05) -> str:
    """Whether a reading survives a rerun of the search: resolved (Holm p < ``alpha``) in both
    with one sign, in neither, in one only, or resolved both ways."""
    if pd.isna(first["p_holm"]) or pd.isna(rerun["p_holm"]):
        return "untested"
    one, two = first["p_holm"] < alpha, rerun["p_holm"] < alpha
    if one and two:
        return "holds" if (first["diff"] > 0) == (rerun["diff"] > 0) else "reverses"
    return {(True, False): "first only", (False, True): "rerun only"}.get(
        (one, two), "unresolved in both"
    )


def rerun_readings(first: pd.DataFrame, rerun: pd.DataFrame) -> pd.DataFrame:
    """Every reading of the first search's comparison table beside the same reading of its
    rerun's (both ``with_holm`` tables), and whether it survives the rerun (``verdict``)."""
    one, two = _readings(first), _readings(rerun)
    rows = []
    for key in [k for k in one if k in two]:
        *panel, optimizer, baseline, paired = key
        a, b = one[key], two[key]
        rows.append(
            {
                **dict(zip(PANEL, panel)),
                "optimizer": optimizer,
                "versus": f"{baseline} (paired)" if paired else baseline,
                **{f"first_{k}": v for k, v in a.items()},
                **{f"rerun_{k}": v for k, v in b.items()},
                "verdict": verdict(a, b),
            }
        )
    return pd.DataFrame(rows)
