"""The search-rerun table against values worked out by hand."""

import math

import pandas as pd
import pytest

from rootfree.results.rerun import rerun_readings, search_rerun_table


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


def comparison_row(optimizer: str, **readings) -> dict:
    """A with_holm comparison row: ``readings`` maps a difference column to (diff, Holm p)."""
    row = {"dataset": "d", "model": "m", "budget": "b", "optimizer": optimizer}
    names = {
        "gap_to_sgd": ("gap_ci95", "gap_p_holm"),
        "gap_to_adamw": ("gap_to_adamw_ci95", "gap_to_adamw_p_holm"),
        "vs_counterpart": ("vs_counterpart_ci95", "vs_counterpart_p_holm"),
    }
    for column, (diff, p) in readings.items():
        ci, p_column = names[column]
        row |= {column: diff, ci: 0.01, p_column: p}
    return row


def test_each_reading_gets_the_verdict_its_two_holm_p_values_give():
    first = pd.DataFrame(
        [
            comparison_row("adamw", gap_to_sgd=(0.02, 0.001)),
            comparison_row("sgd", gap_to_adamw=(-0.02, 0.001)),
            comparison_row("rootfree_adam", gap_to_sgd=(0.01, 0.01), vs_counterpart=(-0.01, 0.2)),
            comparison_row("rootfree_rmsprop", gap_to_sgd=(0.002, 0.6), gap_to_adamw=(-0.01, 0.3)),
            comparison_row("shampoo", gap_to_sgd=(0.01, 0.02)),
        ]
    )
    rerun = pd.DataFrame(
        [
            comparison_row("adamw", gap_to_sgd=(0.03, 0.04)),
            comparison_row("sgd", gap_to_adamw=(-0.03, 0.04)),
            comparison_row("rootfree_adam", gap_to_sgd=(-0.01, 0.03), vs_counterpart=(-0.02, 0.01)),
            comparison_row("rootfree_rmsprop", gap_to_sgd=(0.01, 0.4), gap_to_adamw=(-0.01, 0.06)),
            comparison_row("shampoo", gap_to_sgd=(0.01, math.nan)),
        ]
    )
    table = rerun_readings(first, rerun)
    verdicts = {(r.optimizer, r.versus): r.verdict for r in table.itertuples()}
    assert verdicts == {
        ("adamw", "sgd"): "holds",
        ("rootfree_adam", "sgd"): "reverses",
        ("rootfree_adam", "adamw (paired)"): "rerun only",
        ("rootfree_rmsprop", "sgd"): "unresolved in both",
        ("rootfree_rmsprop", "adamw"): "unresolved in both",
        ("shampoo", "sgd"): "untested",
    }
    row = table[table["optimizer"] == "adamw"].iloc[0]
    assert (row["first_diff"], row["rerun_diff"], row["rerun_p_holm"]) == (0.02, 0.03, 0.04)


def test_a_reading_resolved_in_the_first_search_only_says_so():
    first = pd.DataFrame([comparison_row("adamw", gap_to_sgd=(0.02, 0.049))])
    rerun = pd.DataFrame([comparison_row("adamw", gap_to_sgd=(0.02, 0.051))])
    assert rerun_readings(first, rerun)["verdict"].tolist() == ["first only"]
