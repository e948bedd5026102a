"""The study's validity criteria against brute force and textbook formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rootfree.results.validity import (
    bracketed,
    contained,
    converged,
    direct_test,
    expected_best,
    minimal_detectable_difference,
    tuning_saturated,
    warm_preconditioner,
)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_expected_best_equals_the_mean_over_every_draw(k):
    values = np.array([0.3, 0.7, 0.5, 0.7])
    draws = [max(d) for d in itertools.product(values, repeat=k)]
    assert expected_best(values, k) == pytest.approx(np.mean(draws))


def test_minimal_detectable_difference_has_the_stated_power():
    n, std = 5, 0.01
    mdd = minimal_detectable_difference(std, n)
    dof, critical = 2 * n - 2, stats.t.ppf(0.975, 2 * n - 2)
    shift = mdd / (std * np.sqrt(2 / n))
    power = stats.nct.sf(critical, dof, shift) + stats.nct.cdf(-critical, dof, shift)
    assert power == pytest.approx(0.8, abs=0.03)


def cell_frame(rows):
    base = {"dataset": "d", "model": "m", "budget": "b", "optimizer": "o", "status": "done"}
    return pd.DataFrame([{**base, **row} for row in rows])


CHOSEN = pd.DataFrame(
    [{"dataset": "d", "model": "m", "budget": "b", "optimizer": "o", "setting": "a", "seeds": 2}]
)


def test_convergence_and_warmth_use_the_chosen_settings_worst_final_epoch():
    frame = cell_frame(
        [
            {"run": "r0", "setting": "a", "epoch": 1, "step": 10, "train_acc": 0.5, "lr_cov": 0.1},
            {
                "run": "r0",
                "setting": "a",
                "epoch": 2,
                "step": 40,
                "train_acc": 0.995,
                "lr_cov": 0.1,
            },
            {
                "run": "r1",
                "setting": "a",
                "epoch": 2,
                "step": 40,
                "train_acc": 0.985,
                "lr_cov": 0.1,
            },
            {"run": "r2", "setting": "b", "epoch": 2, "step": 40, "train_acc": 0.2, "lr_cov": 0.1},
        ]
    )
    (row,) = converged(frame, CHOSEN).to_dict("records")
    assert row["value"] == 0.985 and not row["passed"]
    (row,) = warm_preconditioner(frame, CHOSEN).to_dict("records")
    assert row["value"] == pytest.approx(4.0) and not row["passed"]


def test_warmth_is_not_checked_for_a_method_whose_ema_is_bias_corrected():
    rows = [{"run": "r0", "setting": "a", "epoch": 1, "step": 10, "train_acc": 0.9, "lr_cov": 0.1}]
    for optimizer, checked in (("adamw", False), ("soap", False), ("rmsprop", True)):
        frame = cell_frame(rows).assign(optimizer=optimizer)
        assert len(warm_preconditioner(frame, CHOSEN.assign(optimizer=optimizer))) == checked


def test_tuning_is_saturated_when_more_trials_gain_less_than_seed_noise():
    trials = [
        {"setting": s, "seed": 0, "val_acc": v} for s, v in zip("abcd", (0.80, 0.79, 0.6, 0.5))
    ]
    seeds = [{"setting": "a", "seed": s, "val_acc": v} for s, v in ((1, 0.78), (2, 0.82))]
    scores = cell_frame(trials + seeds)
    (row,) = tuning_saturated(scores, CHOSEN).to_dict("records")
    values = np.array([0.80, 0.79, 0.6, 0.5])
    gain = np.mean([max(d) for d in itertools.product(values, repeat=4)]) - np.mean(
        [max(d) for d in itertools.product(values, repeat=2)]
    )
    assert row["value"] == pytest.approx(gain)
    ci = stats.t.ppf(0.975, 2) * np.std([0.80, 0.78, 0.82], ddof=1) / np.sqrt(3)
    assert row["passed"] == (gain < ci)


def test_convergence_reports_both_measures_where_every_seed_has_the_final_model():
    """The criterion moved from the running mean to the final model after SGD failed the
    first: both rows stay, so a switch made after a failure shows."""
    rows = [
        {"run": "r0", "setting": "a", "epoch": 2, "step": 40, "train_acc": 0.985},
        {"run": "r1", "setting": "a", "epoch": 2, "step": 40, "train_acc": 0.989},
    ]
    evaluated = cell_frame([{**r, "train_eval_acc": e} for r, e in zip(rows, (0.993, 0.991))])
    running, final = converged(evaluated, CHOSEN).to_dict("records")
    assert (
        running["value"] == 0.985 and not running["passed"] and "running mean" in running["check"]
    )
    assert final["value"] == 0.991 and final["passed"] and "final model" in final["check"]
    partly = cell_frame([{**r, "train_eval_acc": e} for r, e in zip(rows, (0.993, None))])
    (row,) = converged(partly, CHOSEN).to_dict("records")
    assert row["value"] == 0.985 and not row["passed"] and "running mean" in row["check"]


def test_bracketed_names_the_hyperparameter_nearest_a_stage1_bound():
    spaces = {
        "o": {"lr": (1e-4, 1.0, True), "momentum": (0.1, 0.99, True), "beta": (0.0, 0.9, False)}
    }
    scores = cell_frame(
        [
            {"setting": "a", "lr": 0.01, "momentum": 0.9, "beta": 0.5},
            {"setting": "b", "lr": 0.9, "momentum": 0.5, "beta": 0.5},
        ]
    )
    (row,) = bracketed(scores, CHOSEN, spaces, margin=1.25).to_dict("records")
    assert row["value"] == pytest.approx(0.99 / 0.9) and "momentum high" in row["check"]
    assert not row["passed"]
    low = scores.assign(momentum=0.15, setting=["a", "b"])
    (row,) = bracketed(low, CHOSEN, spaces, margin=1.25).to_dict("records")
    assert row["value"] == pytest.approx(0.15 / 0.1) and "momentum low" in row["check"]
    assert row["passed"]


def test_contained_reads_only_the_stage2_ends_that_stop_inside_stage1():
    spaces = {"o": {"lr": (1e-4, 1.0, True), "momentum": (0.1, 0.99, True)}}
    narrowed = {"o": {"lr": (1e-3, 1e-2, True), "momentum": (0.1, 0.8, True)}}
    scores = cell_frame([{"setting": "a", "lr": 9e-3, "momentum": 0.11}])
    (row,) = contained(scores, CHOSEN, narrowed, spaces, margin=1.25).to_dict("records")
    assert row["value"] == pytest.approx(1e-2 / 9e-3) and "lr high" in row["check"]
    assert not row["passed"], "momentum's low end is stage 1's own bound: bracketed's concern"
    middle = scores.assign(lr=3e-3)
    (row,) = contained(middle, CHOSEN, narrowed, spaces, margin=1.25).to_dict("records")
    assert row["value"] == pytest.approx(3e-3 / 1e-3) and "lr low" in row["check"]
    assert row["passed"]
    edge = scores.assign(lr=1e-2 / 1.25)  # a stage-1 trial that set the range's end
    assert contained(edge, CHOSEN, narrowed, spaces, margin=1.25)["passed"].all()
    wide = {"o": {"lr": (1e-4, 1.0, True), "momentum": (0.1, 0.99, True)}}
    (row,) = contained(scores, CHOSEN, wide, spaces, margin=1.25).to_dict("records")
    assert row["value"] == np.inf and row["passed"]
    assert contained(scores, CHOSEN, {}, spaces, margin=1.25).empty


def test_a_direct_test_passes_while_its_best_cell_gains_less_than_the_seed_ci():
    reference = [0.80, 0.82, 0.81, 0.83, 0.79]
    ci = stats.t.ppf(0.975, 4) * np.std(reference, ddof=1) / np.sqrt(5)  # 0.0196
    below = {"60": [0.805, 0.815], "90": [0.79]}
    out = direct_test(below, reference)
    assert (out["best"], out["passed"]) == ("60", True)
    assert out["gain"] == pytest.approx(0.81 - 0.81) and out["ci"] == pytest.approx(ci)
    above = direct_test({**below, "120": [0.83, 0.84], "150": []}, reference)
    assert (above["best"], above["passed"]) == ("120", False)
    assert above["gain"] == pytest.approx(0.835 - 0.81)
    assert not direct_test({"60": []}, reference)["passed"], "no finished cell tests nothing"


def test_worst_drop_and_spike_measure_a_collapse_that_recovers():
    from rootfree.results.stability import largest_spike, worst_drop

    assert worst_drop([0.5, 0.7, 0.9, 0.95]) == 0.0
    assert worst_drop([0.5, 0.8, 0.3, 0.9, 0.85]) == pytest.approx(0.5), "from 0.8 down to 0.3"
    assert worst_drop([0.5, float("nan"), 0.4]) == pytest.approx(0.1)
    assert largest_spike([2.0, 1.0, 0.5, 1.5, 0.4]) == pytest.approx(3.0), "1.5 over 0.5"
    assert largest_spike([2.0, 1.0]) == 1.0


def stability_scores():
    """Setting a (chosen: best validation) collapses in one of its two seeds; b never does."""
    rows = []
    for setting, seed, drop, val, test in [
        ("a", 0, 0.02, 0.90, 0.88),
        ("a", 1, 0.40, 0.89, 0.87),
        ("b", 0, 0.03, 0.86, 0.85),
        ("c", 0, 0.50, 0.95, 0.80),
    ]:
        rows.append(
            {"run": f"{setting}{seed}", "setting": setting, "seed": seed, "val_acc": val}
            | {"test_acc": test, "worst_acc_drop": drop, "selection_split": "val"}
            | {"budget_label": ""}
        )
    return cell_frame(rows)


def test_the_stable_check_fails_a_chosen_setting_that_collapses_in_any_seed():
    from rootfree.results.validity import stable

    scores = stability_scores()
    (row,) = stable(scores, CHOSEN).to_dict("records")
    assert row["value"] == pytest.approx(0.40) and not row["passed"]
    (row,) = stable(scores, CHOSEN.assign(setting="b")).to_dict("records")
    assert row["passed"]


def test_the_best_stable_setting_leaves_out_every_setting_with_a_collapsed_run():
    from rootfree.results.validity import stable_alternatives

    (row,) = stable_alternatives(stability_scores(), CHOSEN).to_dict("records")
    assert row["chosen_worst_drop"] == pytest.approx(0.40)
    assert row["stable_setting"] == "b", "a and c each have a collapsed run"
    assert (row["stable_val_acc"], row["stable_test_acc"]) == (0.86, 0.85)


def test_a_language_models_best_stable_setting_is_its_lowest_validation_loss():
    from rootfree.results.validity import stable_alternatives

    rows = []
    for setting, seed, drop, loss, accuracy in [
        ("a", 0, 0.02, 1.40, 0.60),
        ("a", 1, 0.30, 1.41, 0.59),
        ("b", 0, 0.01, 1.55, 0.50),
        ("d", 0, 0.01, 1.60, 0.55),
    ]:
        rows.append(
            {"run": f"{setting}{seed}", "setting": setting, "seed": seed, "val_loss": loss}
            | {"test_loss": loss + 0.05, "val_acc": accuracy, "test_acc": accuracy}
            | {"worst_acc_drop": drop, "selection_split": "val", "budget_label": ""}
        )
    scores = cell_frame(rows).assign(dataset="shakespeare")
    (row,) = stable_alternatives(scores, CHOSEN.assign(dataset="shakespeare")).to_dict("records")
    assert row["stable_setting"] == "b", "the lowest loss, not the best next-token accuracy"
    assert row["stable_val_loss"] == 1.55 and row["stable_test_loss"] == pytest.approx(1.60)
    assert "stable_val_acc" not in row
