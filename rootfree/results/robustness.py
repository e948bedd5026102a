"""Does a comparison's ordering depend on how each optimizer's number was picked? The chosen
setting's test accuracy at the final epoch (the table's number) beside the same runs at their
best-validation epoch, and beside the next-best trials of the search."""

from __future__ import annotations

import pandas as pd

from rootfree.results.select import CELL, compared_column, signed_score


def _cell(scores: pd.DataFrame, chosen_row) -> pd.DataFrame:
    return scores[(scores[CELL] == [getattr(chosen_row, c) for c in CELL]).all(axis=1)]


def robustness_table(
    final: pd.DataFrame, best_epoch: pd.DataFrame, chosen: pd.DataFrame, k: int = 3
) -> pd.DataFrame:
    """Per chosen cell: mean test accuracy (a language model's: test loss) of its seeds at the
    final and at the best-validation epoch, and the mean, min and max of the search's ``k`` best
    trials (the search seed, by the primary validation metric). ``final``/``best_epoch``:
    ``run_scores`` frames."""
    rows = []
    for row in chosen.itertuples():
        cell, at_best = _cell(final, row), _cell(best_epoch, row)
        test = compared_column(cell, row.setting)  # test_acc, or a language model's test_loss
        trials = cell[cell["seed"] == cell["seed"].min()]
        trials = trials.assign(score=signed_score(trials)).dropna(subset=["score"])
        top = trials.groupby("setting")[["score", test]].mean().nlargest(k, "score")
        rows.append(
            {
                **{c: getattr(row, c) for c in CELL},
                "test_final": cell.loc[cell["setting"] == row.setting, test].mean(),
                "test_best_val_epoch": at_best.loc[at_best["setting"] == row.setting, test].mean(),
                f"top{k}_trials": len(top),
                f"top{k}_test_mean": top[test].mean(),
                f"top{k}_test_min": top[test].min(),
                f"top{k}_test_max": top[test].max(),
            }
        )
    return pd.DataFrame(rows)
