"""Does a comparison's ordering depend on how each optimizer's number was picked? The chosen
setting's test accuracy at the final epoch (the table's number) beside the same runs at their
best-validation epoch, and beside the next-best trials of the search."""

from __future__ import annotations

import pandas as pd

from rootfree.results.select import CELL


def _cell(scores: pd.DataFrame, chosen_row) -> pd.DataFrame:
    return scores[(scores[CELL] == [getattr(chosen_row, c) for c in CELL]).all(axis=1)]


def robustness_table(
    final: pd.DataFrame, best_epoch: pd.DataFrame, chosen: pd.DataFrame, k: int = 3
) -> pd.DataFrame:
    """Per chosen cell: mean test accuracy of its seeds at the final and at the best-validation
    epoch, and the mean, min and max test accuracy of the search's ``k`` best trials (the
    search seed, by validation accuracy). ``final``/``best_epoch``: ``run_scores`` frames."""
    rows = []
    for row in chosen.itertuples():
        cell, at_best = _cell(final, row), _cell(best_epoch, row)
        trials = cell[cell["seed"] == cell["seed"].min()].dropna(subset=["val_acc"])
        top = trials.groupby("setting")[["val_acc", "test_acc"]].mean().nlargest(k, "val_acc")
        rows.append(
            {
                **{c: getattr(row, c) for c in CELL},
                "test_final": cell.loc[cell["setting"] == row.setting, "test_acc"].mean(),
                "test_best_val_epoch": at_best.loc[
                    at_best["setting"] == row.setting, "test_acc"
                ].mean(),
                f"top{k}_trials": len(top),
                f"top{k}_test_mean": top["test_acc"].mean(),
                f"top{k}_test_min": top["test_acc"].min(),
                f"top{k}_test_max": top["test_acc"].max(),
            }
        )
    return pd.DataFrame(rows)
