"""The robustness table: the chosen setting at two epoch policies, and the search's next-best trials."""

from __future__ import annotations

import pandas as pd
import pytest

from rootfree.results.robustness import robustness_table
from rootfree.results.select import select_best

BASE = {
    "dataset": "d",
    "model": "m",
    "budget": "b",
    "budget_label": "",
    "optimizer": "o",
    "status": "done",
    "selection_split": "val",
}
# setting: (seed, val at the final epoch, test at the final epoch, test at the best-val epoch)
RUNS = [
    ("a", 0, 0.90, 0.80, 0.81),
    ("a", 1, 0.88, 0.78, 0.83),
    ("b", 0, 0.89, 0.70, 0.72),
    ("c", 0, 0.85, 0.60, 0.60),
    ("d", 0, 0.50, 0.95, 0.95),  # best test, worst validation: never in the top 3
]


def scores(column: int) -> pd.DataFrame:
    rows = [
        {
            **BASE,
            "run": f"{s}{seed}",
            "setting": s,
            "seed": seed,
            "val_acc": v,
            "test_acc": r[column],
        }
        for r in RUNS
        for s, seed, v in [r[:3]]
    ]
    return pd.DataFrame(rows)


def test_final_and_best_epoch_means_and_the_top_trials():
    final, best = scores(3), scores(4)
    chosen = select_best(final)
    assert chosen["setting"].tolist() == ["a"]
    (row,) = robustness_table(final, best, chosen, k=3).to_dict("records")
    assert row["test_final"] == pytest.approx((0.80 + 0.78) / 2)
    assert row["test_best_val_epoch"] == pytest.approx((0.81 + 0.83) / 2)
    assert row["top3_trials"] == 3
    assert row["top3_test_mean"] == pytest.approx((0.80 + 0.70 + 0.60) / 3), "seed 0 of a, b, c"
    assert (row["top3_test_min"], row["top3_test_max"]) == (0.60, 0.80)
