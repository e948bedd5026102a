"""The study driver (`rootfree-study`) end to end at a tiny budget: two search stages,
reseeding, collection, reports."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import yaml

from rootfree.record import iter_runs
from rootfree.record.reader import RunRecord
from rootfree.study import design as study_design
from rootfree.study import report as study_report
from rootfree.study import schedule
from rootfree.study.__main__ import main as study_main
from rootfree.study.kinds import make_question
from tests.results.rundirs import write_run

GRID = {
    "decay": {"none": ["optimizer.weight_decay=0.0"], "some": ["optimizer.weight_decay=0.01"]},
    "damp": {"d0": ["optimizer.momentum=0.0"], "d9": ["optimizer.momentum=0.9"]},
}
DESIGN = {
    "questions": {
        "tiny": {
            "title": "tiny",
            "overrides": ["experiment=smoke", "trainer.epochs=1"],
            "optimizers": ["sgd"],
            "space": {"lr": [0.01, 0.5]},
            "trials": [3, 1],
            "top": 0.67,
            "margin": 1.0,
            "seeds": 2,
            "checks": ["converged", "warm", "tuning", "seeds"],
            "minutes": {"default": 0.1},
        },
        "wd": {
            "title": "the chosen setting without and with weight decay",
            "kind": "derived",
            "from": "tiny",
            "optimizer": "sgd",
            "grid": GRID,
            "transfer": {"sweep": "decay", "across": "damp", "anchor": "d0"},
            "references": ["sgd"],
            "seeds": 1,
            "checks": [],
            "minutes": {"default": 0.1},
        },
        "wd_seeds": {
            "title": "two cells of wd on fresh seeds, one against the other",
            "kind": "derived",
            "from": "tiny",
            "optimizer": "sgd",
            "grid": GRID,
            "cells": ["some/d9", "none/d9"],
            "paired": {"axis": "decay", "base": {"d9": "none"}},
            "answers": "converged",
            "seeds": [3, 4],
            "checks": [],
            "minutes": {"default": 0.1},
        },
    }
}


def inside(tmp_path) -> list[str]:
    """Every folder the driver writes, under tmp_path, so a broken driver cannot touch the repo."""
    return ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]


@pytest.mark.slow  # CI runs it in make test-slow
def test_study_searches_twice_reseeds_the_chosen_setting_and_collects(tmp_path, capsys):
    design = tmp_path / "study.yaml"
    design.write_text(yaml.safe_dump(DESIGN, sort_keys=False))
    args = [
        "--design",
        str(design),
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert study_main(["plan", *args]) == 0
    planned = capsys.readouterr().out
    assert "5 runs" in planned and "none/d0" in planned and "some/d9" in planned
    assert planned.count("    0 settled") == 7, "nothing has run"
    assert "some/d0" not in planned.split("wd_seeds:")[1], "only the listed cells"

    # a finished run left from an earlier design: it must neither win the selection nor be collected
    stray = {"name": "sgd", "lr": 0.3, "momentum": 0.5, "weight_decay": 0.0}
    write_run(tmp_path / "runs" / "tiny", "stray", optimizer=stray, seed=0, val=[1.0], test=[1.0])
    assert study_main(["run", *args, "--jobs", "2"]) == 0
    records = [r for r in iter_runs(tmp_path / "runs" / "tiny") if r.name != "stray"]
    assert len(records) == 5 and all(r.state == "done" and not r.problems for r in records)
    derived = list(iter_runs(tmp_path / "runs" / "wd"))
    assert sorted(r.config["optimizer"]["weight_decay"] for r in derived) == [0, 0, 0.01, 0.01]
    first = sorted(records, key=lambda r: r.status["started"])[:3]
    stage1 = sorted((r.final["val_acc"], r.config["optimizer"]["lr"]) for r in first)
    kept = [lr for _, lr in stage1[1:]]  # the best two thirds
    lrs = {round(r.config["optimizer"]["lr"], 12) for r in records}
    assert len(lrs) == 4, "3 + 1 trials, the chosen one reseeded"
    seeded = [r for r in records if r.config["seed"] == 1]
    assert len(seeded) == 1
    stage2 = [r for r in records if r not in first and r.config["seed"] == 0]
    assert all(min(kept) <= r.config["optimizer"]["lr"] <= max(kept) for r in stage2)
    trials = [r for r in records if r.config["seed"] == 0]
    (chosen,) = [r for r in trials if r.config["optimizer"] == seeded[0].config["optimizer"]]
    assert chosen.final["val_acc"] == max(r.final["val_acc"] for r in trials)
    assert len(list((tmp_path / "out" / "tiny").iterdir())) == 5
    for r in derived:  # the chosen setting, weight decay and momentum aside
        assert {**r.config["optimizer"], "weight_decay": 0, "momentum": 0} == {
            **seeded[0].config["optimizer"],
            "weight_decay": 0,
            "momentum": 0,
        }

    assert study_main(["report", *args]) == 0
    table = (tmp_path / "tiny" / "comparison.md").read_text()
    assert "sgd" in table and "(final epoch; 5 runs)" in table
    assert "seeds" in (tmp_path / "tiny" / "validity.md").read_text()
    trials = pd.read_csv(tmp_path / "tiny" / "trials.csv").set_index("run")
    assert len(trials) == 5 and set(trials["status"]) == {"done"}
    for r in records:
        row = trials.loc[r.path.name]
        assert row["lr"] == pytest.approx(r.config["optimizer"]["lr"], rel=1e-5)
        assert row["val_acc"] == pytest.approx(r.final["val_acc"], rel=1e-5)
    derived_table = (tmp_path / "wd" / "table.md").read_text()
    assert "| none " in derived_table and "| some " in derived_table and "| d9 " in derived_table
    status = (tmp_path / "status.md").read_text()
    hours = r"\d+\.\d \|"
    assert re.search(r"\| tiny +\| +5 \| +5 \| +0\.0 \| +" + hours + r" +\d+ \|", status), status
    assert re.search(r"\| wd +\| +4 \| +4 \| +0\.0 \| +" + hours + r" +\|", status), status
    assert re.search(r"\| wd_seeds +\| +4 \| +4 \| +0\.0 \| +" + hours + r" +\|", status)
    assert re.search(r"\| total +\| +13 \| +13 \| +0\.0 \| +" + hours, status), status
    every = [*records, *derived, *iter_runs(tmp_path / "runs" / "wd_seeds")]
    wall = sum(max(m["wall_seconds"] for m in r.metrics if "wall_seconds" in m) for r in every)
    collected = [make_question(n, q, tmp_path / "out") for n, q in DESIGN["questions"].items()]
    assert sum(map(study_report.run_hours, collected)) * 3600 == pytest.approx(wall)
    rows = pd.read_csv(tmp_path / "wd" / "table.csv")
    assert rows["decay"].tolist() == ["none", "none", "some", "some", "sgd (tiny)"]
    assert rows["seeds"].tolist() == [1, 1, 1, 1, 2], "the reference: the chosen setting's seeds"
    reference = [r for r in records if r.config["optimizer"] == seeded[0].config["optimizer"]]
    assert rows["test_acc"].iloc[4] == pytest.approx(
        np.mean([r.final["test_acc"] for r in reference])
    )
    assert (rows["state_mib"][rows["damp"] != "d0"] > 0).all()
    assert (rows["state_mib"][rows["damp"] == "d0"] == 0).all(), "SGD without momentum: no state"
    check_transfer(derived, tmp_path / "wd")
    check_paired(list(iter_runs(tmp_path / "runs" / "wd_seeds")), tmp_path / "wd_seeds")
    check_direct_test(list(iter_runs(tmp_path / "runs" / "wd_seeds")), reference, tmp_path)

    assert study_main(["plan", *args]) == 0
    planned = capsys.readouterr().out
    assert "5 runs x  0.1 min =    0.5 CPU min     5 settled" in planned
    assert "0 settled" not in planned and planned.count("    1 settled") == 4

    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("metrics.jsonl")}
    assert study_main(["run", *args]) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("metrics.jsonl")} == mtimes

    fresh = [
        "--design",
        str(design),
        "--runs",
        str(tmp_path / "fresh"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert study_main(["run", *fresh]) == 0, "a fresh clone: only the committed records"
    assert "restored 13 committed records" in capsys.readouterr().out
    assert not (tmp_path / "fresh" / "logs").exists(), "nothing settled is run again"

    # a control with a run still to settle gives no verdict: the rest could flip it
    shutil.rmtree(next((tmp_path / "out" / "wd_seeds").iterdir()))
    assert study_main(["report", *args]) == 0
    checks = pd.read_csv(tmp_path / "tiny" / "validity.csv")
    assert not checks["check"].str.startswith("tested by wd_seeds").any()


def test_more_trials_for_one_optimizer_keep_the_trials_already_drawn(tmp_path, capsys):
    spec = {**DESIGN["questions"]["tiny"], "optimizers": ["sgd", "adamw"]}
    fewer = make_question("tiny", {**spec, "trials": [3, 2]}, tmp_path)
    more = make_question("tiny", {**spec, "trials": {"default": [3, 2], "sgd": [3, 5]}}, tmp_path)
    assert more.trials("sgd") == (3, 5) and more.trials("adamw") == (3, 2)
    trials = [(0.9, s) for s in fewer.stage1("sgd")]
    assert more.stage1("sgd") == fewer.stage1("sgd")
    extended = more.stage2("sgd", trials)
    assert len(extended) == 5 and extended[:2] == fewer.stage2("sgd", trials)
    assert len(set(map(str, extended))) == 5
    assert [runs for _, runs, _ in more.plan_rows()] == [3 + 5 + 1, 3 + 2 + 1]


@pytest.mark.parametrize("seed", [1, 2, 7])
def test_a_latin_hypercube_puts_one_draw_in_each_slice_of_every_axis(seed):
    space = {"lr": (1e-5, 0.1, True), "momentum": (0.1, 0.99, True), "beta": (0.0, 2.0, False)}
    draws = study_design.latin_hypercube(space, 8, seed=seed)
    for key, (low, high, log) in space.items():
        scale = np.log if log else (lambda x: x)
        values = np.array([draw[key] for draw in draws])
        slices = np.floor((scale(values) - scale(low)) / (scale(high) - scale(low)) * 8)
        assert sorted(slices.astype(int)) == list(range(8)), key
    assert study_design.latin_hypercube(space, 8, seed=seed) == draws


def test_a_question_samples_stage_one_by_its_sampler_and_stage_two_at_random(tmp_path):
    spec = {**DESIGN["questions"]["tiny"], "trials": [4, 3]}
    plain = make_question("tiny", spec, tmp_path)
    strata = make_question("tiny", {**spec, "sampler": "lhs"}, tmp_path)
    space = plain.space("sgd")
    assert plain.stage1("sgd") == study_design.sample(space, 4, seed=1)
    assert strata.stage1("sgd") == study_design.latin_hypercube(space, 4, seed=1)
    assert strata.stage1("sgd") != plain.stage1("sgd")
    trials = [(0.5 + i / 10, s) for i, s in enumerate(strata.stage1("sgd"))]
    assert strata.stage2("sgd", trials) == plain.stage2("sgd", trials)


def test_bounds_apply_to_every_optimizer_or_to_the_named_ones(tmp_path):
    spec = {
        **DESIGN["questions"]["tiny"],
        "space": {"lr_cov": [3e-3, 0.3], "lr": {"adamw": [1e-6, 1e-3]}},
    }
    question = make_question("tiny", spec, tmp_path)
    wide = {name: study_design.load_space(name) for name in ("adamw", "rootfree_adam", "sgd")}
    assert question.space("adamw")["lr"] == (1e-6, 1e-3, True)
    assert question.space("rootfree_adam")["lr"] == wide["rootfree_adam"]["lr"]
    assert (
        question.space("adamw")["lr_cov"]
        == question.space("rootfree_adam")["lr_cov"]
        == (3e-3, 0.3, True)
    )
    assert question.space("sgd") == wide["sgd"]


def test_an_unknown_question_is_refused_in_one_line_before_anything_runs(tmp_path, capsys):
    design = tmp_path / "study.yaml"
    design.write_text(yaml.safe_dump(DESIGN, sort_keys=False))  # grid axes in order
    with pytest.raises(SystemExit) as exit:
        study_main(["run", "--design", str(design), *inside(tmp_path), "--only", "p9"])
    assert exit.value.code == 2 and not (tmp_path / "runs").exists()
    assert (
        "--only: unknown question 'p9'; choose from tiny, wd, wd_seeds" in capsys.readouterr().err
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_packs_the_study_runs_on_one_gpu(tmp_path):
    tiny = {**DESIGN["questions"]["tiny"], "trials": [2, 1]}
    design = tmp_path / "study.yaml"
    design.write_text(yaml.safe_dump({"questions": {"tiny": tiny}}))
    args = ["--design", str(design), *inside(tmp_path)]
    assert study_main(["run", *args, "--device", "cuda", "--jobs", "3"]) == 0
    records = list(iter_runs(tmp_path / "runs" / "tiny"))
    assert len(records) == 4 and all(r.state == "done" and not r.problems for r in records)
    launches = [launch for r in records for launch in r.launches]
    assert all(launch["run_device"].startswith("cuda") for launch in launches)


def check_direct_test(derived: list, reference: list, out) -> None:
    """wd_seeds answers tiny's `converged`: its best cell's mean validation accuracy minus
    the chosen setting's, against that setting's seed CI."""
    cells = {}
    for r in derived:
        cells.setdefault(r.config["optimizer"]["weight_decay"], []).append(r.final["val_acc"])
    gain = max(np.mean(v) for v in cells.values()) - np.mean(
        [r.final["val_acc"] for r in reference]
    )
    checks = pd.read_csv(out / "tiny" / "validity.csv")
    (row,) = checks[checks["check"].str.startswith("tested by wd_seeds")].to_dict("records")
    assert row["criterion"] == "converged" and row["value"] == pytest.approx(gain, abs=1e-6)
    chosen = [r.final["val_acc"] for r in reference]
    ci = scipy.stats.t.ppf(0.975, len(chosen) - 1) * np.std(chosen, ddof=1) / len(chosen) ** 0.5
    assert row["threshold"] == f"< seed CI {ci:.4f}" and row["passed"] == (gain < ci)


def check_paired(derived: list, out) -> None:
    """Only the listed cells ran, on the listed seeds; each seed's decay gain, averaged."""
    assert sorted(r.config["seed"] for r in derived) == [3, 3, 4, 4]
    assert {r.config["optimizer"]["momentum"] for r in derived} == {0.9}
    val = {
        (r.config["optimizer"]["weight_decay"], r.config["seed"]): r.final["val_acc"]
        for r in derived
    }
    gain = np.mean([val[0.01, seed] - val[0.0, seed] for seed in (3, 4)])
    (row,) = pd.read_csv(out / "paired.csv").to_dict("records")
    assert (row["damp"], row["decay"], row["decay_base"], row["pairs"]) == ("d9", "some", "none", 2)
    assert row["val_acc_diff"] == pytest.approx(gain)


def check_transfer(derived: list, out) -> None:
    """The decay chosen on validation at momentum 0 and what it loses at 0.9, from the runs."""
    val = {
        (r.config["optimizer"]["momentum"], r.config["optimizer"]["weight_decay"]): r.final[
            "val_acc"
        ]
        for r in derived
    }
    label = {0.0: "none", 0.01: "some"}
    chosen = max([0.0, 0.01], key=lambda decay: val[0.0, decay])
    best = max([0.0, 0.01], key=lambda decay: val[0.9, decay])
    transfer = pd.read_csv(out / "transfer.csv").set_index("damp")
    assert transfer.loc["d9", "decay_from_d0"] == label[chosen]
    assert transfer.loc["d9", "best_decay"] == label[best]
    assert transfer.loc["d9", "regret"] == pytest.approx(val[0.9, best] - val[0.9, chosen])
    assert transfer.loc["d0", "regret"] == 0
    assert (out / "sweep_decay_by_damp.png").exists()


@pytest.mark.parametrize(
    "question,edit,message",
    [
        (
            "tiny",
            {"optimizers": ["sgd", "adam"]},
            "tiny.optimizer: 'adam' is not valid; choose from",
        ),
        ("tiny", {"checks": ["warm", "cold"]}, "tiny.checks: 'cold' is not valid; choose from"),
        ("tiny", {"trails": [3, 1]}, "tiny.trails: [3, 1] is not valid; choose from"),
        (
            "wd",
            {"from": "tinny"},
            "wd.from: 'tinny' is not valid; choose from ['tiny', 'wd_seeds']",
        ),
        ("wd", {"references": ["sgdd"]}, "wd.optimizer: 'sgdd' is not valid"),
        (
            "wd",
            {"references": ["adamw"]},
            "wd.optimizer: 'adamw' is not valid; choose from ['sgd']",
        ),
        ("wd", {"kind": "derivd"}, "wd.kind: 'derivd' is not valid; choose from"),
        (
            "wd",
            {"transfer": {"sweep": "lr", "across": "damp", "anchor": "d0"}},
            "wd.transfer.sweep: 'lr' is not valid; choose from ['damp', 'decay']",
        ),
        (
            "wd",
            {"transfer": {"sweep": "decay", "across": "damp", "anchor": "d5"}},
            "wd.transfer.anchor: 'd5' is not valid; choose from ['d0', 'd9']",
        ),
        (
            "wd",
            {
                "transfer": {
                    "sweep": "decay",
                    "across": "damp",
                    "anchor": "d0",
                    "compare": {"axis": "variant", "a": "with_B", "b": "without_B"},
                }
            },
            "wd.transfer.compare.axis: 'variant' is not valid; choose from []",
        ),
        ("wd_seeds", {"cells": ["some/d8"]}, "wd_seeds.cells: 'some/d8' is not valid; choose"),
        (
            "wd_seeds",
            {"answers": "plateau"},
            "wd_seeds.answers: 'plateau' is not valid; choose from ['converged', 'seeds', 'tuning', 'warm']",
        ),
        (
            "wd_seeds",
            {"paired": {"axis": "decay", "base": {"d9": "all"}}},
            "wd_seeds.paired.base.d9: 'all' is not valid; choose from ['none', 'some']",
        ),
        (
            "wd_seeds",
            {"cells": ["some/d9", "none/d0"]},
            "wd_seeds.paired.base: no base for the cell 'none/d0'; key it by one of its labels",
        ),
        (
            "wd_seeds",
            {"paired": {"axis": "dmp", "base": {}}},
            "wd_seeds.paired.axis: 'dmp' is not valid; choose from ['damp', 'decay']",
        ),
        (
            "tiny",
            {"sampler": "sobol"},
            "tiny.sampler: 'sobol' is not valid; choose from ['lhs', 'random']",
        ),
        ("tiny", {"rerun_of": "wd"}, "tiny.rerun_of: 'wd' is not valid; choose from []"),
        (
            "tiny",
            {"holm": {"paper": ["sgd", "adamw"]}},
            "tiny.holm.paper: 'adamw' is not valid; choose from ['sgd']",
        ),
        ("tiny", {"holm": {"paper": "sgd"}}, "tiny.holm.paper: 'sgd' is not a list of optimizers"),
        (
            "tiny",
            {"optimizers": ["sgd", "adamw"], "holm": {"paper": ["sgd"]}},
            "tiny.holm: no family names ['adamw']; every optimizer needs one",
        ),
        (
            "tiny",
            {"holm": {"a": ["sgd"], "b": ["sgd"]}},
            "tiny.holm: ['sgd'] named by two families; name each in one",
        ),
        (
            "tiny",
            {"rerun_of": "tiny", "sampler_seed": 3},
            "tiny.rerun_of: 'tiny' is not valid; choose from []",
        ),
    ],
)
def test_a_bad_design_is_refused_in_one_line_naming_the_key(
    tmp_path, capsys, question, edit, message
):
    design = {"questions": {**DESIGN["questions"]}}
    design["questions"][question] = {**design["questions"][question], **edit}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(design, sort_keys=False))  # grid axes in order
    with pytest.raises(SystemExit) as exit:
        study_main(["run", "--design", str(path), *inside(tmp_path)])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["optimizers", "holm"])
def test_a_rerun_that_changes_what_its_tables_compare_is_refused(tmp_path, capsys, key):
    """A rerun's readings are set beside the first search's, so both must compare the same
    optimizers with the same Holm families."""
    tiny = DESIGN["questions"]["tiny"]
    edit = {"optimizers": ["sgd", "adamw"], "holm": {"paper": ["sgd"]}}[key]
    again = {**tiny, "sampler_seed": 3, "rerun_of": "tiny", key: edit}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"questions": {"tiny": tiny, "again": again}}))
    with pytest.raises(SystemExit):
        study_main(["plan", "--design", str(path), *inside(tmp_path)])
    err = capsys.readouterr().err
    assert f"again.{key}: a rerun of tiny must have its {key}" in err


def test_a_grid_cell_takes_the_minutes_of_its_longest_labelled_prefix():
    minutes = {"default": 1.0, 32: 0.3, "32/with_B": 0.5}
    assert study_design.cell_minutes(minutes, "32/with_B/1e-3") == 0.5
    assert study_design.cell_minutes(minutes, "32/without_B/1e-3") == 0.3
    assert study_design.cell_minutes(minutes, "512/with_B/1e-3") == 1.0
    assert study_design.cell_minutes(minutes, "320/with_B") == 1.0


def test_a_cell_row_takes_median_epoch_throughput_mean_conditioning_and_counts_failures():
    def run(state, throughputs=(), cond=None, problems=(), val=0.82, dirty=False):
        metrics = [{"images_per_second": v} for v in throughputs] + [
            {"test_acc": 0.8, "val_acc": val}
        ]
        final_eval = None if cond is None else {"factor_cond_median": cond}
        launches = [{"git_commit": "abc", "git_dirty": dirty}]
        return RunRecord(
            Path("run"), None, None, metrics, launches, final_eval, list(problems), state=state
        )

    paused = run("done", [1000.0, 5.0, 1010.0], cond=4.0)
    unsound = run("done", [10.0], cond=99.0, problems=["a torn metrics row"], val=0.1)
    row = study_report.cell_row(
        [paused, run("done", [2000.0, 1990.0, 2010.0], cond=8.0), run("diverged"), unsound]
    )
    assert row["images_per_s"] == pytest.approx((1000 + 2000) / 2)
    assert row["factor_cond"] == pytest.approx(6.0)
    assert (row["seeds"], row["diverged"], row["not_done"]) == (2, 1, 1)
    assert row["val_acc"] == pytest.approx(0.82)
    assert row["provenance"] == ""
    dirty = study_report.cell_row([paused, run("done", [2000.0], cond=8.0, dirty=True)])
    assert dirty["provenance"] == "dirty tree", "a seed that ran uncommitted code"


def test_a_plan_of_many_cells_folds_the_last_axis_and_keeps_the_totals():
    rows = [(f"{b}/{v}/{lr}", 1, 0.5 * b) for b in (1, 2) for v in "xy" for lr in "abcd"]
    settled = {"1/x/a": 1, "1/x/b": 1, "2/y/d": 1}
    folded = study_design.plan_lines(rows, settled)
    assert folded == [
        ("1/x/*", 4, 2.0, 2),
        ("1/y/*", 4, 2.0, 0),
        ("2/x/*", 4, 4.0, 0),
        ("2/y/*", 4, 4.0, 1),
    ]
    few = study_design.plan_lines(rows[:12], settled)
    assert len(few) == 12 and few[0] == ("1/x/a", 1, 0.5, 1)


def test_a_failed_check_counts_as_answered_only_beside_a_passing_direct_test():
    def row(optimizer, criterion, passed, direct=False):
        check = "tested by p_x: val gain" if direct else "some measure"
        return {"optimizer": optimizer, "criterion": criterion, "check": check, "passed": passed}

    checks = pd.DataFrame(
        [
            row("sgd", "plateau", False),
            row("sgd", "plateau", True, direct=True),
            row("adamw", "plateau", False),  # tested only for sgd
            row("adamw", "bracketed", False),
            row("adamw", "bracketed", False, direct=True),  # a failed direct test counts too
            row("shampoo", "warm", True),
        ]
    )
    assert study_report.unanswered(checks) == 3
    assert study_report.unanswered(checks.iloc[:2]) == 0


def test_a_questions_hours_are_each_runs_last_wall_clock_time(tmp_path):
    sgd = {"name": "sgd", "lr": 0.1}
    write_run(tmp_path / "q", "a", optimizer=sgd, seed=0, val=[0.5, 0.6, 0.7], test=[0.5] * 3)
    write_run(tmp_path / "q", "b", optimizer=sgd, seed=1, val=[0.5], test=[0.5])
    question = make_question("q", DESIGN["questions"]["tiny"], tmp_path)
    assert study_report.run_hours(question) == pytest.approx((30.0 + 10.0) / 3600)


def test_the_plan_counts_the_committed_records_on_a_fresh_clone(tmp_path, capsys):
    """No working runs (a fresh clone): the plan reads results/study/runs, where every run of
    p1_cnn's first six optimizers is committed, and counts them settled."""
    assert study_main(["plan", "--only", "p1_cnn", "--runs", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"sgd +28 runs .* 28 settled", out), out
    assert re.search(r"shampoo +40 runs .* 40 settled", out), out


def test_the_study_help_says_what_it_does_in_whole_sentences(capsys):
    with pytest.raises(SystemExit):
        study_main(["--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert description.startswith("rootfree-study (make study): run, collect and report")
    assert description.rstrip().endswith("N runs at a time."), description
    assert "--out OUT" in out and "the committed records" in out


@pytest.mark.slow  # CI runs it in make test-slow
def test_the_study_runs_through_submitit_jobs_as_on_a_cluster(tmp_path):
    """--launcher submitit_local: each run a submitit job (the SLURM path's executor, on this
    machine); the search, the reseeding and the collection work as with local runs."""
    tiny = {**DESIGN["questions"]["tiny"], "trials": [2, 1]}
    design = tmp_path / "study.yaml"
    design.write_text(yaml.safe_dump({"questions": {"tiny": tiny}}, sort_keys=False))
    args = ["--design", str(design), *inside(tmp_path), "--launcher", "submitit_local"]
    assert study_main(["run", *args, "--jobs", "2", "--slurm", "timeout_min=10"]) == 0
    records = list(iter_runs(tmp_path / "runs" / "tiny"))
    assert len(records) == 4 and all(r.state == "done" for r in records), "2 + 1 trials, 1 seed"
    jobs = list((tmp_path / "runs" / "submitit").glob("*/*_result.pkl"))
    assert len(jobs) == 4, "every run went through a submitit job"
    assert len(list((tmp_path / "out" / "tiny").iterdir())) == 4


def test_slurm_resources_default_to_the_train_apps_launcher_config():
    from rootfree.study.launchers import slurm_parameters

    parameters = slurm_parameters({"slurm_partition": "gpu", "timeout_min": 30})
    assert parameters["timeout_min"] == 30 and parameters["slurm_partition"] == "gpu"
    assert parameters["gpus_per_node"] == 1 and parameters["cpus_per_task"] == 8
    assert "slurm_account" not in parameters, "null keys are left out"


def test_the_paper_scale_study_composes_and_plans_in_gpu_hours(tmp_path, capsys):
    """experiments/study_paper.yaml: every question's runs compose into configs that pass the
    config check (the data live on the cluster, so their files are not looked for), and the
    plan prints its GPU-hour estimate."""
    from rootfree.compose import compose_overrides
    from rootfree.train.validate import validate_config
    from tests.train.helpers import ROOT

    path = ROOT / "experiments" / "study_paper.yaml"
    assert study_main(["plan", "--design", str(path), *inside(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"total: \d+\.\d GPU hours; left: \d+\.\d", out), out
    questions = yaml.safe_load(path.read_text())["questions"]
    every = {n: make_question(n, q, tmp_path) for n, q in questions.items()}
    for name, spec in questions.items():
        if spec.get("kind") == "computation":
            continue
        source = every[spec.get("from", name)]
        optimizers = [spec["optimizer"]] if "grid" in spec else spec["optimizers"]
        cells = study_design.grid_cells(spec) if "grid" in spec else [((), [])]
        for optimizer in optimizers:
            setting = source.stage1(optimizer)[0]
            for _, extra in cells:
                config = compose_overrides(source.overrides(optimizer, setting, 0, extra))
                validate_config(config, check_data=False)
                assert (
                    config["trainer"]["epochs"] in (210, 300) and config["trainer"]["amp"] == "bf16"
                )


def test_a_failed_run_is_settled_unless_failed_runs_are_retried(tmp_path):
    """The driver does not rerun a failed run (a deterministic crash would loop), except
    under --retry-failed; an interrupted one it resumes."""
    from rootfree.record import RunDir
    from rootfree.study import schedule

    tiny = {**DESIGN["questions"]["tiny"], "trials": [2, 1]}
    question = make_question("tiny", tiny, tmp_path)
    first, _ = [question.overrides("sgd", s, 0) for s in question.stage1("sgd")]
    run = RunDir(schedule.run_path(first))
    run.path.mkdir(parents=True)
    for status, pending, retried in (("failed", 1, 2), ("interrupted", 2, 2)):
        run.set_status(status)
        question.retry_failed = False
        assert len(question.pending({"tiny": question})) == pending, status
        question.retry_failed = True
        assert len(question.pending({"tiny": question})) == retried, status


def test_each_kind_of_question_is_its_own_class():
    from rootfree.study import kinds

    assert type(make_question("a", DESIGN["questions"]["tiny"], Path("r"))) is kinds.Comparison
    assert type(make_question("b", DESIGN["questions"]["wd"], Path("r"))) is kinds.Derived
    computed = make_question("c", {"kind": "computation", "minutes": {"default": 0}}, Path("r"))
    assert computed.plan_rows() == [("computed by `report`", 0, 0.0)] and computed.pending({}) == []
    assert set(kinds.KINDS) == set(study_design.KEYS), "every kind the design accepts has a class"


@pytest.mark.slow  # CI runs it in make test-slow
def test_a_rerun_of_the_search_with_another_sampler_seed_reports_how_far_the_choice_moved(
    tmp_path,
):
    tiny = {**DESIGN["questions"]["tiny"], "trials": [2, 1], "checks": ["seeds"]}
    design = {"questions": {"tiny": tiny, "again": {**tiny, "sampler_seed": 3, "rerun_of": "tiny"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(design, sort_keys=False))
    first, rerun = (make_question(n, q, tmp_path) for n, q in design["questions"].items())
    assert first.stage1("sgd") != rerun.stage1("sgd"), "another sampler seed, other draws"
    assert study_main(["run", "--design", str(path), *inside(tmp_path)]) == 0
    row = pd.read_csv(tmp_path / "again" / "rerun.csv").iloc[0]
    means = []
    for name in ("tiny", "again"):
        records = list(iter_runs(tmp_path / "runs" / name))
        (chosen,) = {str(r.config["optimizer"]) for r in records if r.config["seed"] == 1}
        picked = [r.final["test_acc"] for r in records if str(r.config["optimizer"]) == chosen]
        means.append(np.mean(picked))
    assert row["test_acc"] == pytest.approx(means[0]) and row["seeds"] == 2
    assert row["moved"] == pytest.approx(means[1] - means[0], abs=1e-6)
    assert "how far the choice depends" in (tmp_path / "again" / "rerun.md").read_text()


@pytest.mark.slow  # CI runs it in make test-slow
def test_a_language_model_question_searches_and_reports_on_validation_loss(tmp_path):
    """Stage 2 narrows around the lowest validation losses, the reseeded setting is the one of
    lowest loss, and the comparison table is in test loss and perplexity."""
    lm = {
        **DESIGN["questions"]["tiny"],
        "overrides": ["experiment=lm_smoke", "dataset.characters=4000", "trainer.epochs=1"],
        "optimizers": ["adamw"],
        "space": {"lr": [1e-4, 0.1]},
        "checks": ["tuning", "seeds", "contained"],
    }
    design = tmp_path / "study.yaml"
    design.write_text(yaml.safe_dump({"questions": {"lm": lm}}, sort_keys=False))
    args = ["--design", str(design), *inside(tmp_path)]
    assert study_main(["run", *args, "--jobs", "2"]) == 0
    records = list(iter_runs(tmp_path / "runs" / "lm"))
    assert len(records) == 5 and all(r.state == "done" for r in records)
    trials = [r for r in records if r.config["seed"] == 0]
    (reseeded,) = [r for r in records if r.config["seed"] == 1]
    (chosen,) = [r for r in trials if r.config["optimizer"] == reseeded.config["optimizer"]]
    assert chosen.final["val_loss"] == min(r.final["val_loss"] for r in trials)
    assert study_main(["report", *args]) == 0
    table = pd.read_csv(tmp_path / "lm" / "comparison.csv")
    losses = [r.final["test_loss"] for r in (chosen, reseeded)]
    assert table.loc[0, "test_loss"] == pytest.approx(np.mean(losses))
    assert table.loc[0, "test_ppl"] == pytest.approx(math.exp(np.mean(losses)))
    assert_contained(tmp_path / "lm" / "validity.csv", records, chosen)
    lm_derived(tmp_path, design, args, [r.final["val_loss"] for r in (chosen, reseeded)])


def assert_contained(validity: Path, records: list, chosen) -> None:
    """With margin 1, stage 2 spans the best two of the three stage-1 trials on each key, so
    the check reads the chosen setting's nearest end of that span as a factor."""
    first = sorted(records, key=lambda r: r.status["started"])[:3]
    best = sorted(first, key=lambda r: r.final["val_loss"])[:2]
    factors = []
    for key in ("lr", "momentum", "lr_cov", "damping", "weight_decay"):
        values = [r.config["optimizer"][key] for r in best]
        value = chosen.config["optimizer"][key]
        factors += [value / min(values), max(values) / value]
    checks = pd.read_csv(validity)
    (row,) = checks[checks["check"].str.startswith("inside stage-2 range")].to_dict("records")
    assert row["value"] == close(min(factors)) and row["passed"]


def lm_derived(tmp_path, design, args, reference):
    """A control of the language-model question: its tables, its transfer and paired readings
    and its direct test read validation and test loss (lower is better), never accuracy."""
    questions = yaml.safe_load(design.read_text())["questions"]
    questions["lm_lr"] = {
        "title": "lr and context",
        "kind": "derived",
        "from": "lm",
        "optimizer": "adamw",
        "answers": "tuning",
        "grid": {
            "context": {"16": ["dataset.context=16"], "32": []},
            "lr": {"1e-3": ["optimizer.lr=1.0e-3"], "3e-2": ["optimizer.lr=3.0e-2"]},
        },
        "transfer": {"sweep": "lr", "across": "context", "anchor": "32"},
        "paired": {"axis": "lr", "base": {"16": "1e-3", "32": "1e-3"}},
        "seeds": [1],
        "checks": [],
        "minutes": {"default": 0.1},
    }
    design.write_text(yaml.safe_dump({"questions": questions}, sort_keys=False))
    assert study_main(["run", *args, "--jobs", "2", "--only", "lm_lr"]) == 0
    assert study_main(["report", *args]) == 0
    runs = {
        (str(r.config["dataset"]["context"]), f"{r.config['optimizer']['lr']:.0e}"): r.final
        for r in iter_runs(tmp_path / "runs" / "lm_lr")
    }
    table = pd.read_csv(tmp_path / "lm_lr" / "table.csv", dtype={"context": str, "lr": str})
    row = table[(table["context"] == "16") & (table["lr"] == "3e-2")].iloc[0]
    assert row["test_loss"] == close(runs[("16", "3e-02")]["test_loss"])
    assert row["tokens_per_s"] > 0 and "test_acc" not in table
    transfer = pd.read_csv(tmp_path / "lm_lr" / "transfer.csv", dtype={"context": str}).set_index(
        "context"
    )
    for context in ("16", "32"):
        losses = [runs[(context, lr)]["val_loss"] for lr in ("1e-03", "3e-02")]
        assert transfer.loc[context, "best_val"] == close(min(losses))
    anchor_best = transfer.loc["32", "best_lr"]
    moved = runs[("16", f"{float(anchor_best):.0e}")]["val_loss"]
    best = min(runs[("16", lr)]["val_loss"] for lr in ("1e-03", "3e-02"))
    assert transfer.loc["16", "regret"] == close(moved - best)
    paired = pd.read_csv(tmp_path / "lm_lr" / "paired.csv", dtype={"context": str})
    paired = paired.set_index("context")
    gap = runs[("16", "3e-02")]["val_loss"] - runs[("16", "1e-03")]["val_loss"]
    assert paired.loc["16", "val_loss_diff"] == close(gap)
    assert "Loss (nats per token) added" in (tmp_path / "lm_lr" / "paired.md").read_text()
    checks = pd.read_csv(tmp_path / "lm" / "validity.csv")
    (direct,) = checks[checks["check"].str.startswith("tested by lm_lr")].to_dict("records")
    gain = np.mean(reference) - min(v["val_loss"] for v in runs.values())
    assert direct["value"] == close(gain), "a lower loss is a gain"


def close(expected):
    """Equal to what the CSVs keep: six significant digits."""
    return pytest.approx(expected, rel=2e-6, abs=1e-9)


def test_contained_reads_a_stage_two_range_only_once_that_search_is_final(tmp_path):
    """Stage 2's range comes from stage 1's results, so before stage 2 has run it is the range
    of a search still under way: `contained` must not read it (a partial search, wrong ends)."""
    question = make_question("tiny", {**DESIGN["questions"]["tiny"], "top": 0.5}, tmp_path)
    first = question.stage1("sgd")

    def record(setting: dict, val: float) -> None:
        path = schedule.run_path(question.overrides("sgd", setting, 0))
        write_run(path.parent, path.name, optimizer=setting, seed=0, val=[val], test=[val])

    for setting, val in zip(first, (0.5, 0.7, 0.6)):
        record({"name": "sgd", **setting}, val)
    assert study_report.stage2_spaces(question) == {}, "stage 2 has not run"
    (second,) = question.stage2("sgd", schedule.finished_trials(question, "sgd", first))
    record({"name": "sgd", **second}, 0.65)
    question.chosen["sgd"] = second  # selection is tested above; here only the guard
    kept = sorted(s["lr"] for s in first[1:])  # the best two of three (top 0.5, margin 1)
    assert study_report.stage2_spaces(question)["sgd"]["lr"][:2] == pytest.approx(kept)


def test_a_control_planned_but_not_run_adds_no_direct_test(monkeypatch):
    """Its rows are all unfinished (NaN scores): the report of its source question goes on
    without a direct-test row instead of failing on an empty grouping."""
    questions = {n: make_question(n, q, Path("r")) for n, q in DESIGN["questions"].items()}
    questions["wd"].spec["answers"] = "converged"
    unrun = pd.DataFrame({"decay": ["none"], "damp": ["d0"], "seed": [0], "val_acc": [math.nan]})
    monkeypatch.setattr(study_report, "chosen_runs", lambda source, optimizer: [["seed=1"]])
    monkeypatch.setattr(study_report, "run_rows", lambda *args: unrun)
    monkeypatch.setattr(study_report, "question_task", lambda *args: study_report.CLASSIFICATION)
    cell = pd.Series({key: "x" for key in study_report.CELL})
    assert study_report.direct_tests(questions["tiny"], questions, cell).empty
