"""Results of language-model runs: selected, compared and tabled on the validation and test loss
(lower is better), never on next-token accuracy."""

from __future__ import annotations

import math

import pytest

from rootfree.results import collect_runs, comparison_table, select_best
from rootfree.results.select import run_scores
from rootfree.results.tables import compact_table
from tests.results.rundirs import write_run


def ADAM(lr):
    return {"name": "adamw", "lr": lr, "weight_decay": 0.0}


def SGD(lr):
    return {"name": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 0.0}


def lm_run(root, name, optimizer, seed, val_loss, test_loss, accuracy):
    """A two-epoch run whose accuracy ranks the other way round from its loss."""
    return write_run(
        root,
        name,
        optimizer=optimizer,
        seed=seed,
        dataset="shakespeare",
        model="lstm",
        val=[accuracy, accuracy],
        test=[accuracy, accuracy],
        losses=([val_loss + 0.5, val_loss], [test_loss + 0.5, test_loss]),
    )


def test_language_models_are_selected_on_the_lowest_validation_loss(tmp_path):
    lm_run(tmp_path, "a", ADAM(1e-3), 0, val_loss=1.50, test_loss=1.52, accuracy=0.60)
    lm_run(tmp_path, "b", ADAM(3e-3), 0, val_loss=1.40, test_loss=1.43, accuracy=0.50)
    lm_run(tmp_path, "c", SGD(0.1), 0, val_loss=1.70, test_loss=1.69, accuracy=0.70)
    lm_run(tmp_path, "c1", SGD(0.1), 1, val_loss=1.72, test_loss=1.71, accuracy=0.70)
    lm_run(tmp_path, "b1", ADAM(3e-3), 1, val_loss=1.42, test_loss=1.45, accuracy=0.50)
    scores = run_scores(collect_runs(tmp_path), epoch="best")
    assert scores.set_index("run").loc["a", "epoch"] == 2  # the lower loss, not the first epoch
    chosen = select_best(scores).set_index("optimizer")
    assert chosen.loc["adamw", "setting"] == scores.set_index("run").loc["b", "setting"]
    assert math.isclose(chosen.loc["adamw", "selection_val_loss"], 1.40)
    table = comparison_table(scores, select_best(scores)).set_index("optimizer")
    assert math.isclose(table.loc["adamw", "test_loss"], (1.43 + 1.45) / 2)
    assert math.isclose(table.loc["adamw", "test_ppl"], math.exp((1.43 + 1.45) / 2))
    assert math.isclose(table.loc["adamw", "val_loss"], (1.40 + 1.42) / 2)
    assert math.isclose(table.loc["adamw", "val_ppl"], math.exp((1.40 + 1.42) / 2))
    assert math.isclose(table.loc["adamw", "gap_to_sgd"], (1.43 + 1.45) / 2 - (1.69 + 1.71) / 2)
    assert "test_acc" not in table or table["test_acc"].isna().all()
    from rootfree.results.robustness import robustness_table
    from rootfree.results.tuning import tuning_curve

    best = run_scores(collect_runs(tmp_path), epoch="best")
    robust = robustness_table(scores, best, select_best(scores)).set_index("optimizer")
    assert math.isclose(robust.loc["adamw", "test_final"], 1.44)
    assert math.isclose(robust.loc["adamw", "top3_test_mean"], (1.43 + 1.52) / 2)  # seed 0

    curve = tuning_curve(scores).set_index(["optimizer", "k"])
    # two trials, b (test 1.44 over its seeds) picked unless both draws are a (1.52)
    assert curve.loc[("adamw", 2), "mean"] == pytest.approx(0.75 * 1.44 + 0.25 * 1.52, abs=0.01)
    assert 1.44 - 1e-9 <= curve.loc[("adamw", 2), "low"] <= curve.loc[("adamw", 2), "high"] <= 1.52
    compact = compact_table(table.reset_index()).set_index("optimizer")
    cell = compact.loc["adamw"].iloc[0]
    assert (
        cell.startswith("**1.4400 ± ") and "(ppl 4.22, val ppl 4.1)" in cell and "−0.2600" in cell
    )


def test_a_language_models_plateau_and_tuning_checks_read_its_falling_loss(tmp_path):
    from rootfree.results.validity import plateaued, tuning_saturated

    for seed, wobble in enumerate((0.0, 0.01, -0.01)):
        falling = ([3.0, 2.0, 1.6 + wobble, 1.2 + wobble], [3.0, 2.0, 1.6, 1.2])
        flat = [1.5 + wobble, 1.4 + wobble, 1.4 - wobble, 1.4 + wobble]
        for name, optimizer, losses in (
            ("falling", ADAM(1e-3), falling),
            ("flat", SGD(0.1), (flat, flat)),
        ):
            write_run(
                tmp_path,
                f"{name}{seed}",
                optimizer=optimizer,
                seed=seed,
                dataset="shakespeare",
                model="lstm",
                val=[0.5] * 4,
                test=[0.5] * 4,
                losses=losses,
            )
    frame = collect_runs(tmp_path)
    scores = run_scores(frame)
    chosen = select_best(scores)
    row = plateaued(frame, chosen, "adamw").iloc[0]
    assert math.isclose(row["value"], 0.4) and not row["passed"]  # the loss still falls by 0.4
    every = plateaued(frame, chosen).set_index("optimizer")  # each chosen setting's own curve
    assert sorted(every.index) == ["adamw", "sgd"] and not every.loc["adamw", "passed"]
    assert abs(every.loc["sgd", "value"]) < 0.01 and every.loc["sgd", "passed"]
    tuning = tuning_saturated(scores, chosen).iloc[0]
    assert tuning["value"] == 0.0  # one trial: no gain from more


def test_a_rerun_search_of_a_language_model_reports_how_far_its_test_loss_moved(tmp_path):
    from rootfree.results.rerun import search_rerun_table

    searches = []
    for name, shift in (("first", 0.0), ("rerun", 0.1)):
        for seed in (0, 1):
            loss = 1.4 + shift + 0.02 * seed
            lm_run(tmp_path / name, f"r{seed}", ADAM(1e-3), seed, loss, loss, accuracy=0.5)
        scores = run_scores(collect_runs(tmp_path / name))
        searches.append((scores, select_best(scores)))
    (row,) = search_rerun_table(*searches).to_dict("records")
    assert math.isclose(row["test_loss"], 1.41) and math.isclose(row["rerun_test_loss"], 1.51)
    assert math.isclose(row["moved"], 0.1) and "test_acc" not in row


def test_the_robustness_table_prints_a_language_models_loss_as_it_is(tmp_path):
    import pandas as pd

    from rootfree.study.report import write_robustness
    from rootfree.tasks import ACCURACY, LOSS

    table = pd.DataFrame(
        [{"optimizer": "adamw", "test_final": 1.8144, "top3_trials": 3, "top3_test_mean": 1.8035}]
    )
    write_robustness(table, LOSS, tmp_path)
    text = (tmp_path / "robustness.md").read_text()
    assert "Test loss in nats per token" in text and "validation\nloss" in text
    assert "1.8144" in text and "181.44" not in text
    write_robustness(table.assign(test_final=0.9012, top3_test_mean=0.9), ACCURACY, tmp_path)
    text = (tmp_path / "robustness.md").read_text()
    assert "Test accuracy in %" in text and "90.12" in text
