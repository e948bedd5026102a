"""A comparison cell holds its budget fixed: runs of other epochs or subsets are other cells,
never pooled, paired or counted as trials, and the tables and hints name the budget."""

from __future__ import annotations

import shlex

import pytest

from rootfree.record import budget_id
from rootfree.results import collect_runs, comparison_table, missing_cells, select_best
from rootfree.results.__main__ import main
from rootfree.results.budget import budget_labels, budget_overrides, rerun_overrides
from rootfree.results.collect import collect
from rootfree.results.select import run_scores
from rootfree.results.tables import compact_table
from rootfree.results.tuning import tuning_curve
from tests.results.rundirs import write_run
from tests.train.helpers import compose_config

SHORT = {"epochs": 1}
LONG = {"epochs": 2}


def adamw(lr: float) -> dict:
    return {"name": "adamw", "lr": lr, "momentum": 0.9, "lr_cov": 1e-3, "damping": 1e-8}


def sgd(lr: float) -> dict:
    return {"name": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4}


def two_budgets(root):
    """The newcomer's mix: one long AdamW run beside a short AdamW and SGD sweep."""
    write_run(
        root,
        "a_long",
        optimizer=adamw(1e-3),
        seed=0,
        val=[0.5, 0.80],
        test=[0.5, 0.79],
        trainer=LONG,
    )
    for seed, (val, test) in enumerate([(0.70, 0.71), (0.72, 0.70)]):
        write_run(
            root,
            f"a_short{seed}",
            optimizer=adamw(1e-3),
            seed=seed,
            val=[val],
            test=[test],
            trainer=SHORT,
            train_subset=5000,
        )
        write_run(
            root,
            f"s_short{seed}",
            optimizer=sgd(0.05),
            seed=seed,
            val=[val + 0.05],
            test=[test + 0.06],
            trainer=SHORT,
            train_subset=5000,
        )


def test_the_budget_is_everything_but_the_optimizer_and_the_seed():
    base = {
        "dataset": {"name": "d", "root": "/a"},
        "trainer": {"epochs": 1},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "seed": 0,
    }
    same = {
        **base,
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "seed": 3,
        "dataset": {"name": "d", "root": "/elsewhere"},
    }
    assert budget_id(same) == budget_id(base), "the optimizer, seed and data path vary freely"
    assert budget_id({**base, "trainer": {"epochs": 2}}) != budget_id(base)


def test_runs_of_two_budgets_are_two_cells_never_paired_or_pooled(tmp_path):
    two_budgets(tmp_path)
    scores = run_scores(collect_runs(tmp_path))
    table = comparison_table(scores, select_best(scores)).set_index(["optimizer", "seeds"])
    assert sorted(table.index) == [("adamw", 1), ("adamw", 2), ("sgd", 2)]
    long_adamw = table.loc[("adamw", 1)]
    assert long_adamw["test_acc"] == 0.79 and "gap_to_sgd" not in long_adamw.dropna()
    short_adamw = table.loc[("adamw", 2)]
    assert short_adamw["gap_to_sgd"] == pytest.approx(-0.06), (
        "paired with the SGD of its own budget"
    )
    assert set(tuning_curve(scores).groupby("budget")["k"].max()) == {1}, "one trial each"


def test_tables_name_what_sets_each_budget_apart(tmp_path):
    two_budgets(tmp_path)
    scores = run_scores(collect_runs(tmp_path))
    columns = list(compact_table(comparison_table(scores, select_best(scores))).columns)
    assert columns[0] == "optimizer" and sorted(columns[1:]) == [
        "cifar100 / resnet (dataset.train_subset=5000, trainer.epochs=1)",
        "cifar100 / resnet (dataset.train_subset=null, trainer.epochs=2)",
    ]


def test_one_budget_needs_no_label():
    assert budget_labels({"b1": {"trainer.epochs": 1}}) == {"b1": ""}
    labels = budget_labels({"b1": {"x": 1, "y": [1, 2]}, "b2": {"x": 1, "y": [1, 3], "z": True}})
    assert labels == {"b1": "y=[1,2], z=null", "b2": "y=[1,3], z=true"}


def test_the_missing_hint_reruns_the_same_budget(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(
            runs,
            f"s{seed}",
            optimizer=sgd(0.05),
            seed=seed,
            val=[0.7],
            test=[0.7],
            dataset="fashion_mnist",
            model="small_cnn",
            trainer=SHORT,
            train_subset=5000,
        )
    frame, _, budgets = collect(runs)
    (cell,) = missing_cells(run_scores(frame), ["sgd", "rootfree_adam"], budgets)
    words = shlex.split(cell["command"])
    assert words[:3] == ["rootfree-train", "-m", "tuning=random"]
    assert {"trainer.epochs=1", "dataset.train_subset=5000"} <= set(words)
    assert words[-1] == "optimizer=rootfree_adam"
    assert main([str(runs), "--out", str(tmp_path / "t"), "--optimizers", "sgd,rootfree_adam"]) == 0
    assert "rootfree-train -m tuning=random dataset=fashion_mnist" in capsys.readouterr().out


def test_rerun_overrides_recreate_a_composed_budget():
    from rootfree.results.budget import budget_settings

    overrides = ["dataset=cifar10", "model=resnet", "model.depth=34", "trainer.epochs=3"]
    settings = budget_settings(compose_config(*overrides, "optimizer=sgd"))
    again = budget_settings(compose_config(*rerun_overrides(settings), "optimizer=adamw"))
    assert again == settings
    assert budget_overrides({"a": 1, "b": None}, {"a": 2}) == ["a=1", "+b=null"]


def test_results_read_runs_by_default(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "runs", "s0", optimizer=sgd(0.1), seed=0, val=[0.7], test=[0.7])
    monkeypatch.chdir(tmp_path)
    assert main(["--optimizers", "sgd"]) == 0
    assert (tmp_path / "results" / "tables" / "comparison.md").exists()
    assert "runs.csv (1 runs" in capsys.readouterr().out
