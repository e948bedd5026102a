"""The search-rerun table against values worked out by hand."""

import math

import pandas as pd
import pytest

from rootfree.results.rerun import search_rerun_table


def scores(setting: str, accuracies: list[float], optimizer: str = "sgd") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "budget": "b",
            "optimizer": optimizer,
            "setting": setting,
            "seed": range(len(accuracies)),
            "test_acc": accuracies,
        }
    )


def chosen(setting: str, optimizer: str = "sgd") -> pd.DataFrame:
    return pd.DataFrame(
        [{"dataset": "d", "model": "m", "budget": "b", "optimizer": optimizer, "setting": setting}]
    )


def test_the_rerun_table_gives_each_searchs_choice_and_the_welch_gap():
    first = (pd.concat([scores("a", [0.80, 0.82]), scores("x", [0.5])]), chosen("a"))
    rerun = (scores("b", [0.85, 0.87, 0.86]), chosen("b"))
    (row,) = search_rerun_table(first, rerun).to_dict("records")
    assert row["test_acc"] == pytest.approx(0.81) and row["seeds"] == 2
    assert row["rerun_test_acc"] == pytest.approx(0.86) and row["rerun_seeds"] == 3
    assert row["moved"] == pytest.approx(0.05) and not row["same_setting"]
    # Welch by hand: variances 2e-4/2 and 1e-4/3, dof from Welch-Satterthwaite
    va, vb = 2e-4 / 2, 1e-4 / 3
    dof = (va + vb) ** 2 / (va**2 / 1 + vb**2 / 2)
    from scipy import stats

    assert row["moved_ci95"] == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(va + vb))


def test_a_cell_chosen_in_one_search_only_is_left_out():
    first = (scores("a", [0.8, 0.8], "adamw"), chosen("a", "adamw"))
    rerun = (scores("b", [0.9, 0.9]), chosen("b"))
    assert search_rerun_table(first, rerun).empty
