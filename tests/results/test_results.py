"""Table builders on run directories with known answers."""

from __future__ import annotations

import json
import math

import pytest
import scipy.stats

from rootfree.results import (
    collect_runs,
    comparison_table,
    missing_cells,
    paired_difference,
    select_best,
    summarize,
)
from rootfree.results.__main__ import main
from rootfree.results.select import run_scores
from rootfree.results.tables import with_gap_to
from tests.results.rundirs import write_run


def SGD(lr):
    return {"name": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4}


def RF(lr):
    return {
        "name": "rootfree_rmsprop",
        "lr": lr,
        "lr_cov": 1e-3,
        "damping": 1e-5,
        "momentum": 0.9,
        "weight_decay": 1e-3,
    }


def RMS(lr):
    return {
        "name": "rmsprop",
        "lr": lr,
        "lr_cov": 0.01,
        "damping": 1e-8,
        "momentum": 0.9,
        "weight_decay": 0.0,
    }


def test_confidence_interval_arithmetic():
    summary = summarize([0.8, 0.9, 1.0])
    assert summary["mean"] == pytest.approx(0.9) and summary["std"] == pytest.approx(0.1)
    assert summary["ci"] == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))
    assert math.isnan(summarize([0.5])["ci"])
    paired = paired_difference({0: 0.9, 1: 0.8, 2: 0.7, 5: 0.1}, {0: 0.8, 1: 0.6, 2: 0.7})
    assert paired["pairs"] == 3 and paired["diff"] == pytest.approx(0.1)


def test_selection_uses_validation_not_test(tmp_path):
    for seed in range(3):  # lr 0.1: better on validation, worse on test
        write_run(
            tmp_path, f"a{seed}", optimizer=SGD(0.1), seed=seed, val=[0.5, 0.80], test=[0.5, 0.60]
        )
        write_run(
            tmp_path, f"b{seed}", optimizer=SGD(0.01), seed=seed, val=[0.5, 0.70], test=[0.5, 0.90]
        )
    scores = run_scores(collect_runs(tmp_path))
    (chosen,) = select_best(scores).to_dict("records")
    assert chosen["selection_split"] == "val" and chosen["selection_val_acc"] == pytest.approx(0.8)
    (row,) = comparison_table(scores, select_best(scores)).to_dict("records")
    assert row["lr"] == 0.1 and row["test_acc"] == pytest.approx(0.6)


def test_best_epoch_policy_reads_test_at_the_best_validation_epoch(tmp_path):
    write_run(tmp_path, "r", optimizer=SGD(0.1), seed=0, val=[0.9, 0.7], test=[0.85, 0.95])
    scores = run_scores(collect_runs(tmp_path), epoch="best")
    assert scores.loc[0, "test_acc"] == pytest.approx(0.85)
    assert run_scores(collect_runs(tmp_path), epoch="final").loc[0, "test_acc"] == pytest.approx(
        0.95
    )


def test_best_epoch_policy_keeps_a_run_that_never_scored(tmp_path):
    write_run(tmp_path, "r", optimizer=SGD(0.1), seed=0, val=[0.9, 0.7], test=[0.85, 0.95])
    nan = float("nan")
    write_run(tmp_path, "d", optimizer=SGD(9.0), seed=0, status="diverged", val=[nan], test=[nan])
    scores = run_scores(collect_runs(tmp_path), epoch="best").set_index("run")
    assert scores.loc["r", "test_acc"] == pytest.approx(0.85)
    assert scores.loc["d", "status"] == "diverged" and math.isnan(scores.loc["d", "test_acc"])


def test_gap_paired_differences_and_divergence_are_reported(tmp_path):
    sgd, rf, rms = [0.70, 0.72, 0.74], [0.71, 0.74, 0.77], [0.65, 0.66, 0.70]
    for seed in range(3):
        write_run(
            tmp_path, f"s{seed}", optimizer=SGD(0.1), seed=seed, val=[sgd[seed]], test=[sgd[seed]]
        )
        write_run(
            tmp_path, f"f{seed}", optimizer=RF(0.01), seed=seed, val=[rf[seed]], test=[rf[seed]]
        )
        write_run(
            tmp_path, f"m{seed}", optimizer=RMS(0.001), seed=seed, val=[rms[seed]], test=[rms[seed]]
        )
    write_run(tmp_path, "f3", optimizer=RF(0.01), seed=3, status="diverged", val=[0.1], test=[0.1])
    scores = run_scores(collect_runs(tmp_path))
    table = comparison_table(scores, select_best(scores)).set_index("optimizer")
    rf_row = table.loc["rootfree_rmsprop"]
    assert rf_row["seeds"] == 3 and rf_row["diverged"] == 1, (
        "the diverged seed is counted, not averaged"
    )
    assert rf_row["test_acc"] == pytest.approx(sum(rf) / 3)
    assert rf_row["gap_to_sgd"] == pytest.approx(sum(rf) / 3 - sum(sgd) / 3)
    assert rf_row["vs_counterpart"] == pytest.approx(sum(a - b for a, b in zip(rf, rms)) / 3)
    diffs = [a - b for a, b in zip(rf, rms)]
    assert rf_row["vs_counterpart_ci95"] == pytest.approx(summarize(diffs)["ci"])
    assert math.isnan(table.loc["sgd"].get("gap_to_sgd", math.nan))

    chosen = select_best(scores)
    gaps = with_gap_to(comparison_table(scores, chosen), scores, chosen, "rmsprop")
    gaps = gaps.set_index("optimizer")
    assert gaps.loc["rootfree_rmsprop", "gap_to_rmsprop"] == pytest.approx(
        sum(rf) / 3 - sum(rms) / 3
    )
    for optimizer, accuracy in (("rootfree_rmsprop", rf), ("sgd", sgd)):
        welch = scipy.stats.ttest_ind(accuracy, rms, equal_var=False).confidence_interval(0.95)
        half_width = (welch.high - welch.low) / 2
        assert gaps.loc[optimizer, "gap_to_rmsprop_ci95"] == pytest.approx(half_width)
    assert math.isnan(gaps.loc["rmsprop", "gap_to_rmsprop"])


def test_missing_cells_are_listed_with_the_command_and_strict_fails(tmp_path, capsys):
    write_run(tmp_path / "runs", "s0", optimizer=SGD(0.1), seed=0, val=[0.7], test=[0.7])
    missing = missing_cells(
        run_scores(collect_runs(tmp_path / "runs")), ["sgd", "adamw", "rootfree_rmsprop"]
    )
    assert [m["optimizers"] for m in missing] == [["adamw", "rootfree_rmsprop"]], (
        "one line per model"
    )
    assert missing[0]["command"].endswith("model=resnet optimizer=adamw,rootfree_rmsprop")
    args = [
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "tables"),
        "--optimizers",
        "sgd,rootfree_rmsprop",
    ]
    assert main(args) == 0 and main([*args, "--strict"]) == 1
    out = capsys.readouterr().out
    assert "missing: cifar100 / resnet: rootfree_rmsprop  (" in out
    assert "runs.csv (1 runs, 1 rows)" in out
    assert "chosen on the **val** split" in (tmp_path / "tables" / "comparison.md").read_text()


def test_test_set_selection_is_stamped(tmp_path):
    write_run(
        tmp_path, "s0", optimizer=SGD(0.1), seed=0, val=[0.7], test=[0.7], selection_split="test"
    )
    scores = run_scores(collect_runs(tmp_path))
    assert comparison_table(scores, select_best(scores)).loc[0, "selection_split"] == "test"


GOLDEN = __import__("pathlib").Path(__file__).parent / "golden"


def golden_runs(root):
    """A fixed sweep: two SGD settings, RF-RMSProp with a diverged fourth seed, RMSprop; 3 seeds."""
    accuracies = {
        ("sgd", 0.1): [0.70, 0.72, 0.74],
        ("sgd", 0.01): [0.60, 0.61, 0.62],
        ("rootfree_rmsprop", 0.01): [0.71, 0.74, 0.77],
        ("rmsprop", 0.001): [0.65, 0.66, 0.70],
    }
    builders = {"sgd": SGD, "rootfree_rmsprop": RF, "rmsprop": RMS}
    for (name, lr), values in accuracies.items():
        for seed, accuracy in enumerate(values):
            write_run(
                root,
                f"{name}-{lr}-{seed}",
                optimizer=builders[name](lr),
                seed=seed,
                val=[accuracy - 0.05, accuracy],
                test=[accuracy - 0.04, accuracy - 0.01],
            )
    write_run(
        root,
        "rootfree_rmsprop-0.01-3",
        optimizer=RF(0.01),
        seed=3,
        status="diverged",
        val=[0.1],
        test=[0.1],
    )


def test_golden_tables(tmp_path):
    golden_runs(tmp_path / "runs")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "tables")]) == 0
    for name in ("comparison.md", "comparison.csv"):
        assert (tmp_path / "tables" / name).read_text() == (GOLDEN / name).read_text(), name


def test_tuning_curve_matches_the_exact_expectation(tmp_path):
    from rootfree.results.tuning import tuning_curve

    write_run(tmp_path, "good-val", optimizer=SGD(0.1), seed=0, val=[0.9], test=[0.6])
    write_run(tmp_path, "bad-val", optimizer=SGD(0.01), seed=0, val=[0.5], test=[0.8])
    curve = tuning_curve(run_scores(collect_runs(tmp_path)), resamples=20000).set_index("k")
    # best-of-1 is a uniform pick; best-of-2 picks the better-validating trial unless both draws miss it
    assert curve.loc[1, "mean"] == pytest.approx(0.7, abs=0.01)
    assert curve.loc[2, "mean"] == pytest.approx(0.75 * 0.6 + 0.25 * 0.8, abs=0.01)
    assert curve.loc[2, "low"] == pytest.approx(0.6) and curve.loc[2, "high"] == pytest.approx(0.8)


def test_plots_are_written_as_png_and_pdf(tmp_path):
    golden_runs(tmp_path / "runs")
    args = [str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--plots"]
    assert main(args) == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    for stem in (
        "error_vs_epoch_cifar100_resnet",
        "error_vs_wall_seconds_cifar100_resnet",
        "tuning_cifar100_resnet",
    ):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert (tmp_path / "out" / "error_vs_epoch_cifar100_resnet.png").stat().st_size > 5000


def test_precision_table_pairs_the_dtype_twins_of_a_setting(tmp_path):
    from rootfree.results.tables import precision_table

    for seed, (fp32, bf16) in enumerate([(0.80, 0.70), (0.82, 0.74), (0.84, 0.78)]):
        write_run(tmp_path, f"fp32-{seed}", optimizer=RF(0.01), seed=seed, val=[fp32], test=[fp32])
        write_run(
            tmp_path,
            f"bf16-{seed}",
            optimizer={**RF(0.01), "state_dtype": "bfloat16"},
            seed=seed,
            val=[bf16],
            test=[bf16],
        )
        write_run(tmp_path, f"other-{seed}", optimizer=RF(0.05), seed=seed, val=[0.5], test=[0.5])
    table = precision_table(run_scores(collect_runs(tmp_path))).set_index("optimizer_dtype")
    assert (
        table.loc["bfloat16", "test_acc"] == pytest.approx(0.74)
        and table.loc["bfloat16", "seeds"] == 3
    )
    assert table.loc["default", "test_acc"] == pytest.approx(0.82), (
        "the lr=0.05 setting has no twin"
    )


def test_selection_compares_settings_on_their_shared_seeds(tmp_path):
    """A rerun setting's extra seeds neither help nor hurt it: seed 0 decides (no winner's curse)."""
    for seed, val in enumerate([0.90, 0.70, 0.70]):  # best trial on seed 0, reruns score lower
        write_run(tmp_path, f"a{seed}", optimizer=SGD(0.1), seed=seed, val=[val], test=[val])
    write_run(tmp_path, "b0", optimizer=SGD(0.01), seed=0, val=[0.85], test=[0.85])
    (chosen,) = select_best(run_scores(collect_runs(tmp_path))).to_dict("records")
    assert chosen["selection_val_acc"] == pytest.approx(0.90) and chosen["seeds"] == 3


def test_unsound_records_are_skipped_named_and_fail_strict(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(3):
        write_run(runs, f"ok{seed}", optimizer=SGD(0.1), seed=seed, val=[0.5, 0.8], test=[0.5, 0.7])
    torn = write_run(
        runs, "torn", optimizer=SGD(0.2), seed=0, val=[0.5, 0.9, 0.9], test=[0.5, 0.9, 0.9]
    )
    lines = (torn / "metrics.jsonl").read_text().splitlines()
    (torn / "metrics.jsonl").write_text("\n".join([lines[0], lines[1][:10], lines[2]]) + "\n")
    tampered = write_run(runs, "tampered", optimizer=SGD(0.05), seed=0, val=[1.0], test=[1.0])
    config = (tampered / "config.yaml").read_text()
    (tampered / "config.yaml").write_text(config.replace("lr: 0.05", "lr: 0.5"))
    garbage = write_run(runs, "garbage", optimizer=SGD(0.3), seed=0, val=[0.99], test=[0.99])
    (garbage / "status.json").write_text("{not json")

    out = tmp_path / "tables"
    assert main([str(runs), "--out", str(out)]) == 0
    table = (out / "comparison.md").read_text()
    assert "70" in table and "99" not in table.split("skipped")[0]
    for name, reason in (
        ("torn", "metrics.jsonl line 2 is torn"),
        ("tampered", "config.yaml does not match the run's hash"),
        ("garbage", "status.json is missing or unreadable"),
    ):
        assert f"runs/{name}`: {reason}" in table
    assert "3 run(s) skipped" in table
    assert main([str(runs), "--out", str(out), "--strict", "--optimizers", "sgd"]) == 1


def test_seeds_from_different_code_or_data_are_flagged(tmp_path):
    for seed, commit in enumerate(("a", "a", "b")):
        run = write_run(tmp_path, f"s{seed}", optimizer=SGD(0.1), seed=seed, val=[0.8], test=[0.7])
        launch = {"git_commit": commit * 40, "dataset_checksum": "d"}
        (run / "provenance.json").write_text(json.dumps({"launches": [launch]}))
    scores = run_scores(collect_runs(tmp_path))
    (row,) = comparison_table(scores, select_best(scores)).to_dict("records")
    assert row["provenance"] == "mixed commits"


def test_holm_adjusts_a_family_step_down_and_leaves_non_tests_out():
    from rootfree.results.stats import holm

    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    nan, *rest = holm([math.nan, 0.5, 0.6])
    assert math.isnan(nan) and rest == [1.0, 1.0]


def test_p_values_match_scipys_tests():
    a, b = [0.71, 0.74, 0.77, 0.70], [0.66, 0.70, 0.69]
    welch = scipy.stats.ttest_ind(a, b, equal_var=False)
    from rootfree.results.stats import welch_difference

    assert welch_difference(a, b)["p"] == pytest.approx(welch.pvalue)
    mine, theirs = {0: 0.9, 1: 0.8, 2: 0.75, 3: 0.7}, {0: 0.85, 1: 0.79, 2: 0.7, 3: 0.71}
    rel = scipy.stats.ttest_rel([mine[s] for s in range(4)], [theirs[s] for s in range(4)])
    assert paired_difference(mine, theirs)["p"] == pytest.approx(rel.pvalue)


def test_the_table_adjusts_every_p_value_in_it_as_one_family(tmp_path):
    from rootfree.results.stats import holm
    from rootfree.results.tables import with_holm

    golden_runs(tmp_path)
    scores = run_scores(collect_runs(tmp_path))
    table = with_holm(comparison_table(scores, select_best(scores)))
    raw = [*table["gap_p"], *table["vs_counterpart_p"]]
    assert sum(not math.isnan(p) for p in raw) == 3, "two gaps to SGD and one paired test"
    expected = holm(raw)
    assert [*table["gap_p_holm"], *table["vs_counterpart_p_holm"]] == pytest.approx(
        expected, nan_ok=True
    )
    assert all(h >= p for h, p in zip(expected, raw) if not math.isnan(p))


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down adjustment written out: the i-th smallest times (m - i), running max."""
    order, m, running, out = sorted(range(len(p)), key=p.__getitem__), len(p), 0.0, [0.0] * len(p)
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        out[index] = running
    return out


def test_declared_families_adjust_a_later_familys_tests_apart_from_the_earlier_ones(tmp_path):
    from rootfree.results.tables import with_holm

    golden_runs(tmp_path)
    scores = run_scores(collect_runs(tmp_path))
    chosen = select_best(scores)
    table = with_gap_to(comparison_table(scores, chosen), scores, chosen, "rmsprop")
    families = {"first": ["sgd", "rmsprop"], "later": ["rootfree_rmsprop"]}
    rows = with_holm(table, families).set_index("optimizer")
    assert dict(rows["holm_family"]) == {
        "sgd": "first",
        "rmsprop": "first",
        "rootfree_rmsprop": "later",
    }
    assert rows.loc["rmsprop", "gap_p_holm"] == pytest.approx(rows.loc["rmsprop", "gap_p"])
    later = ["gap_p", "gap_to_rmsprop_p", "vs_counterpart_p"]
    expected = _holm_by_hand([rows.loc["rootfree_rmsprop", c] for c in later])
    got = [rows.loc["rootfree_rmsprop", f"{c}_holm"] for c in later]
    assert got == pytest.approx(expected)
    assert "holm_family" not in with_holm(table)


def test_a_comparison_two_rows_report_counts_once_in_the_family(tmp_path):
    from rootfree.results.stats import holm
    from rootfree.results.tables import with_gap_to, with_holm

    golden_runs(tmp_path)
    scores = run_scores(collect_runs(tmp_path))
    chosen = select_best(scores)
    table = with_holm(with_gap_to(comparison_table(scores, chosen), scores, chosen, "rmsprop"))
    rows = table.set_index("optimizer")
    assert rows.loc["sgd", "gap_to_rmsprop_p"] == pytest.approx(rows.loc["rmsprop", "gap_p"])
    distinct = [
        rows.loc["rmsprop", "gap_p"],
        rows.loc["rootfree_rmsprop", "gap_p"],
        rows.loc["rootfree_rmsprop", "gap_to_rmsprop_p"],
        rows.loc["rootfree_rmsprop", "vs_counterpart_p"],
    ]
    expected = dict(zip(["rms-sgd", "rf-sgd", "rf-rms", "paired"], holm(distinct)))
    assert rows.loc["sgd", "gap_to_rmsprop_p_holm"] == pytest.approx(expected["rms-sgd"])
    assert rows.loc["rmsprop", "gap_p_holm"] == pytest.approx(expected["rms-sgd"])
    assert rows.loc["rootfree_rmsprop", "gap_to_rmsprop_p_holm"] == pytest.approx(
        expected["rf-rms"]
    )
