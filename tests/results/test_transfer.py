"""Hyperparameter transfer across a grid axis (rootfree.results.transfer), on grids whose best
values are known by construction."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import scipy.stats

from rootfree.results.transfer import (
    paired_to_base,
    regret_difference,
    regret_pairs,
    transfer_table,
)

LRS = ["1e-4", "1e-3", "1e-2", "1e-1"]
BEST = {"with_B": {"32": 1, "128": 1, "512": 1}, "without_B": {"32": 0, "128": 1, "512": 3}}


def grid(val=lambda variant, batch, index: 0.9 - 0.1 * abs(index - BEST[variant][batch])):
    """A full sweep: validation accuracy peaks at BEST's lr index, test = val - 0.01."""
    rows = [
        {"batch": b, "variant": v, "lr": lr, "val_acc": val(v, b, i), "diverged": 0}
        for b in ("32", "128", "512")
        for v in BEST
        for i, lr in enumerate(LRS)
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(test_acc=frame["val_acc"] - 0.01)


def table(cells: pd.DataFrame) -> pd.DataFrame:
    out = transfer_table(cells, ["batch", "variant", "lr"], "lr", "batch", "128", LRS)
    return out.set_index(["variant", "batch"])


def test_the_best_lr_its_shift_and_the_regret_of_the_anchor_lr():
    out = table(grid())
    assert len(out) == 6
    for variant, best in BEST.items():
        for batch, index in best.items():
            row = out.loc[(variant, batch)]
            assert row["best_lr"] == LRS[index]
            assert row["lr_from_128"] == LRS[best["128"]]
            assert row["shift"] == index - best["128"]
            # the anchor's lr sits |shift| grid steps from the peak, 0.1 each
            assert row["regret"] == pytest.approx(0.1 * abs(index - best["128"]))
            assert row["transfer_test"] == pytest.approx(row["transfer_val"] - 0.01)
            assert row["best_test"] == pytest.approx(0.89)
            assert row["bracketed"] == (0 < index < len(LRS) - 1)
    assert (out.loc["with_B", "regret"] == 0).all()


def test_a_diverged_transfer_loses_everything_an_unfinished_one_is_unknown():
    cells = grid()
    at = (cells["variant"] == "without_B") & (cells["lr"] == LRS[1])
    diverged = cells.copy()
    diverged.loc[at & (cells["batch"] == "512"), ["val_acc", "test_acc", "diverged"]] = [
        math.nan,
        math.nan,
        1,
    ]
    diverged.loc[at & (cells["batch"] == "32"), ["val_acc", "test_acc"]] = [math.nan, math.nan]
    out = table(diverged)
    assert out.loc[("without_B", "512"), "regret"] == pytest.approx(0.9)
    assert math.isnan(out.loc[("without_B", "32"), "regret"])
    assert out.loc[("without_B", "32"), "best_lr"] == LRS[0]


def test_the_anchor_choice_skips_diverged_cells_and_no_anchor_means_no_transfer():
    cells = grid()
    peak = (cells["variant"] == "with_B") & (cells["lr"] == LRS[1]) & (cells["batch"] == "128")
    cells.loc[peak, ["val_acc", "test_acc", "diverged"]] = [math.nan, math.nan, 1]
    out = table(cells)
    assert out.loc[("with_B", "32"), "lr_from_128"] in (LRS[0], LRS[2])
    assert out.loc[("with_B", "32"), "regret"] == pytest.approx(0.1)
    alone = transfer_table(
        grid()[lambda f: f["batch"] != "128"], ["batch", "variant", "lr"], "lr", "batch", "128", LRS
    )
    assert alone["lr_from_128"].isna().all() and alone["regret"].isna().all()


def test_a_best_lr_is_bracketed_only_by_settled_neighbours():
    cells = grid()
    beside = (cells["variant"] == "with_B") & (cells["batch"] == "32")
    unrun = cells.copy()
    unrun.loc[beside & (cells["lr"] == LRS[2]), ["val_acc", "test_acc"]] = [math.nan, math.nan]
    assert not table(unrun).loc[("with_B", "32"), "bracketed"]
    unrun.loc[beside & (cells["lr"] == LRS[2]), "diverged"] = 1
    assert table(unrun).loc[("with_B", "32"), "bracketed"]


def test_each_cell_minus_its_base_is_paired_by_seed_and_a_lost_pair_is_counted():
    """Seed s gives lr "1e-2" a lead of 0.01 * s over the base "1e-3" (with_B) and "1e-4" a
    lead of -0.02 over the base "1e-3" (without_B); seed effects shared by a pair cancel."""
    lead = {"1e-3": lambda s: 0.0, "1e-2": lambda s: 0.01 * s, "1e-4": lambda s: -0.02}
    rows = [
        {"batch": "512", "variant": v, "lr": lr, "seed": s, "val_acc": 0.5 + 0.1 * s + lead[lr](s)}
        for v, lrs in {"with_B": ("1e-2", "1e-3"), "without_B": ("1e-3", "1e-4")}.items()
        for lr in lrs
        for s in (1, 2, 3)
    ]
    runs = pd.DataFrame(rows)
    runs = runs.assign(test_acc=runs["val_acc"] - 0.05)
    lost = (runs["variant"] == "without_B") & (runs["lr"] == "1e-3") & (runs["seed"] == 3)
    runs.loc[lost, ["val_acc", "test_acc"]] = math.nan  # its base run diverged
    base = {"with_B": "1e-3", "without_B": "1e-3"}
    out = paired_to_base(runs, ["batch", "variant", "lr"], "lr", base).set_index("variant")
    assert out.loc["with_B", "lr"] == "1e-2" and out.loc["with_B", "lr_base"] == "1e-3"
    assert out.loc["with_B", "val_acc_diff"] == pytest.approx(0.02)  # mean of 0.01, 0.02, 0.03
    assert out.loc["with_B", "val_acc_ci95"] == pytest.approx(4.303 * 0.01 / math.sqrt(3), 1e-3)
    assert out.loc["with_B", "test_acc_diff"] == pytest.approx(0.02)
    assert (out.loc["with_B", "pairs"], out.loc["with_B", "unpaired"]) == (3, 0)
    assert out.loc["without_B", "lr"] == "1e-4"
    assert out.loc["without_B", "val_acc_diff"] == pytest.approx(-0.02)
    assert out.loc["without_B", "val_acc_ci95"] == pytest.approx(0.0, abs=1e-12)
    assert (out.loc["without_B", "pairs"], out.loc["without_B", "unpaired"]) == (2, 1)


def test_the_direct_test_pairs_each_batchs_regret_with_b_against_without():
    """With B the anchor's lr stays best (regret 0); without it, it is 1 step off at B = 32
    and 2 at B = 512 (0.1 a step): differences -0.1 and -0.2, paired on the batch size."""
    out = transfer_table(grid(), ["batch", "variant", "lr"], "lr", "batch", "128", LRS)
    pairs = regret_pairs(out, "variant", "with_B", "without_B", "batch", "128")
    assert sorted(pairs["batch"]) == ["32", "512"]
    by_batch = pairs.set_index("batch")["difference"]
    assert by_batch["32"] == pytest.approx(-0.1) and by_batch["512"] == pytest.approx(-0.2)
    test = regret_difference(pairs)
    expected = scipy.stats.ttest_1samp([-0.1, -0.2], 0.0)
    assert test["diff"] == pytest.approx(-0.15) and test["pairs"] == 2
    assert test["p"] == pytest.approx(expected.pvalue)


def test_a_language_models_transfer_reads_the_lowest_validation_loss():
    from rootfree.tasks import LOSS

    cells = grid()  # as a loss: 2 - accuracy, so the lowest loss sits where accuracy peaked
    cells = cells.assign(val_loss=2 - cells["val_acc"], test_loss=2 - cells["test_acc"])
    cells = cells.drop(columns=["val_acc", "test_acc"])
    out = transfer_table(cells, ["batch", "variant", "lr"], "lr", "batch", "128", LRS, LOSS)
    out = out.set_index(["variant", "batch"])
    for variant, best in BEST.items():
        for batch, index in best.items():
            row = out.loc[(variant, batch)]
            assert row["best_lr"] == LRS[index] and row["best_val"] == pytest.approx(1.1)
            assert row["regret"] == pytest.approx(0.1 * abs(index - best["128"])), "loss added"
    at = (cells["variant"] == "without_B") & (cells["lr"] == LRS[1]) & (cells["batch"] == "512")
    cells.loc[at, ["val_loss", "test_loss", "diverged"]] = [math.nan, math.nan, 1]
    out = transfer_table(cells, ["batch", "variant", "lr"], "lr", "batch", "128", LRS, LOSS)
    lost = out.set_index(["variant", "batch"]).loc[("without_B", "512"), "regret"]
    assert lost == math.inf, "a diverged transfer adds an unbounded loss"
