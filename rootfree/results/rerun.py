"""How far a rerun of a whole search moves its result: two searches of one comparison with
different sampler seeds, each with its chosen setting reseeded; per optimizer, the two chosen
settings' test accuracy (a language model's test loss) and their difference (Welch, over each
one's seeds)."""

from __future__ import annotations

import pandas as pd

from rootfree.results.select import CELL, primary_metric
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
