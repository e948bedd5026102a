"""rootfree.study.controls: design entries for a comparison's untested failed checks, checked
against the rule's arithmetic, against the controls written by hand for P2 and P7, and against
the stable settings that the tables name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rootfree.results.collect import PAPER_COLUMNS
from rootfree.study import controls
from rootfree.study.__main__ import CHECKS, OPTIMIZERS
from rootfree.study.__main__ import main as study_main
from rootfree.study.design import check_design
from rootfree.study.kinds import make_questions
from tests.train.helpers import ROOT

DESIGN = yaml.safe_load((ROOT / "experiments" / "study.yaml").read_text())["questions"]
TABLES = ROOT / "results" / "study"

# hand-written controls whose values follow the rule
BY_HAND = {
    "p1_cnn": ["p1_adamw_lr"],
    "p2_vit": ["p2_shampoo_lr_cov", "p2_singd_weight_decay", "p2_soap_lr", "p2_klsoap_lr",
               "p2_psgd_lr", "p2_klshampoo_momentum", "p2_budget"],
    "p2_equal": ["p2_equal_budget"],
    "p7_gpt": ["p7_gpt_adamw_lr", "p7_gpt_rfshampoo_lr", "p7_gpt_shampoo_lr",
               "p7_gpt_klshampoo_lr", "p7_gpt_psgd_lr", "p7_gpt_soap_momentum",
               "p7_gpt_klsoap_momentum"],
}  # fmt: skip
# entries that `rootfree-study controls` wrote into the design: checked to be present and in step
# with the generator, which is no evidence for the generator itself
GENERATED = {
    "p1_cnn": ["p1_psgd_kron_momentum"],
    "p2_vit": ["p2_vit_rootfree_shampoo_stable", "p2_vit_sgd_epochs", "p2_vit_rootfree_adam_epochs",
               "p2_vit_rootfree_rmsprop_epochs"],
    "p2_equal": ["p2_equal_sgd_momentum", "p2_equal_rootfree_adam_lr_cov",
                 "p2_equal_rootfree_shampoo_riemannian_momentum", "p2_equal_adamw_stable",
                 "p2_equal_sgd_epochs", "p2_equal_rootfree_rmsprop_epochs",
                 "p2_equal_shampoo_epochs"],
    "p7_gpt": ["p7_gpt_singd_momentum"],
    "p7_lstm": ["p7_lstm_sgd_momentum", "p7_lstm_rootfree_rmsprop_momentum",
                "p7_lstm_singd_riemannian_momentum", "p7_lstm_soap_momentum"],
}  # fmt: skip
# failed `plateau` checks (read on every optimizer's curve since the P2 and P7 searches ran)
# whose longer-training control the command prints but the design does not hold: not run
NOT_DESIGNED = {
    "p2_vit": {"kl_shampoo", "muon", "singd"},
    "p7_gpt": {"adamw", "kl_shampoo", "kl_soap", "muon", "psgd_kron", "rootfree_adam",
               "rootfree_shampoo", "sgd", "shampoo", "singd", "soap"},
}  # fmt: skip
# failures whose hand-written controls followed another rule: P2's RootFreeShampoo weight decay
# (x4, x16) and SGD momentum (0.983 and 0.996); P7 GPT's RF-AdamW momentum (rounded to 0.9)
OTHER_RULES = {
    "p1_cnn": set(),
    "p2_equal": set(),
    "p2_vit": {("rootfree_shampoo", "weight_decay"), ("sgd", "momentum")},
    "p7_gpt": {("rootfree_adam", "momentum")},
}
# what `settled_step` in tests/optim/test_common.py measures: heavy-ball sums, the rate they scale
HEAVY_BALL = {("sgd", "momentum"): "lr", ("rootfree_rmsprop", "momentum"): "lr",
              ("singd", "momentum"): "lr", ("singd", "riemannian_momentum"): "lr_cov"}  # fmt: skip


@pytest.mark.parametrize(
    "value, key, side, expected",
    [
        (9.6e-5, "weight_decay", "low", [6.4e-5, 9.6e-5 / 2.25]),
        (1.73e-3, "lr", "high", [2.595e-3, 3.8925e-3]),
        (0.197, "momentum", "high", [0.2955, 0.44325]),  # 2.25 x 0.197 stays below 1
        (0.8326, "momentum", "high", [0.9163, 0.95815]),  # 1 - momentum halved, quartered
        (0.5, "lr_cov", "high", [0.75, 1.125]),  # not a decay: plain factors
    ],
)
def test_a_control_moves_the_chosen_value_past_its_end(value, key, side, expected):
    assert controls.past_end(value, key, side) == pytest.approx(expected, rel=1e-12)


def test_only_failed_search_checks_without_a_direct_test_need_a_control():
    rows = [
        ("soap", "contained", "inside stage-2 range by a factor (tightest: lr high)", False),
        ("singd", "contained", "inside stage-2 range by a factor (tightest: weight_decay low)", False),
        ("singd", "contained", "tested by p2_x: val gain of its best cell (6.4e-5)", True),
        ("adamw", "bracketed", "inside stage-1 bounds by a factor (tightest: lr high)", True),
        ("sgd", "tuning", "E[best val] gain from 8 to 16 trials", False),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["optimizer", "criterion", "check", "passed"])
    assert controls.untested_failures(frame) == [("soap", "contained", "lr", "high")]


def without_direct_tests(name: str, tables: Path) -> Path:
    """A copy of a question's tables with the rows of its direct tests dropped."""
    out = tables / name
    out.mkdir(parents=True)
    validity = pd.read_csv(TABLES / name / "validity.csv")
    validity = validity[~validity["check"].str.startswith(controls.DIRECT)]
    validity.to_csv(out / "validity.csv", index=False)
    for table in ("comparison", "stability", "trials"):
        (out / f"{table}.csv").write_bytes((TABLES / name / f"{table}.csv").read_bytes())
    return tables


def grid_values(entry: dict) -> tuple[str, str, list[float]]:
    ((key, cells),) = entry["grid"].items()
    values = [float(overrides[0].split("=")[1]) for overrides in cells.values()]
    return entry["optimizer"], key, values


def generate(name: str, tmp_path: Path) -> dict[str, dict]:
    """The generator's entries for question ``name``, from its tables without direct tests."""
    question = make_questions(DESIGN, tmp_path)[name]
    return controls.controls(question, without_direct_tests(name, tmp_path / "tables"))


def proposals(name: str, tmp_path: Path) -> dict[tuple[str, str], list[float]]:
    """The generator's control values per (optimizer, key), from tables without direct tests."""
    return {(o, k): v for o, k, v in map(grid_values, generate(name, tmp_path).values())}


def every_override(entry: dict) -> dict[str, dict[str, float]]:
    """Per grid cell, each override's value: {label: {key: value}}."""
    ((cells),) = entry["grid"].values()
    return {
        str(label): {k: float(v) for k, v in (o.split("=") for o in overrides)}
        for label, overrides in cells.items()
    }


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_the_controls_match_those_written_by_hand(name, tmp_path):
    """Before its controls ran, each of these failed checks got a control computed by hand;
    the generator, given the tables without those controls' rows, proposes the same values."""
    proposed = proposals(name, tmp_path)
    for hand in BY_HAND[name]:
        optimizer, key, values = grid_values(DESIGN[hand])
        assert proposed.pop((optimizer, key)) == pytest.approx(values[:2], rel=2e-3), hand
    undesigned = {(o, "epochs") for o in NOT_DESIGNED.get(name, ())}
    assert set(proposed) - generated_keys(name) - undesigned == OTHER_RULES[name]


def generated_keys(name: str) -> set[tuple[str, str]]:
    return {grid_values(DESIGN[entry])[:2] for entry in GENERATED.get(name, [])}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_controls_are_in_the_design_as_proposed(name, tmp_path):
    """A generated entry still answers a failure the generator finds, with the values it gives."""
    generated = {(e["optimizer"], *e["grid"]): e for e in generate(name, tmp_path).values()}
    for entry in GENERATED[name]:
        designed = DESIGN[entry]
        proposed = generated[(designed["optimizer"], *designed["grid"])]
        for key in ("from", "optimizer", "references", "seeds", "answers"):
            assert designed.get(key) == proposed.get(key), (entry, key)
        proposed_cells = every_override(proposed)
        for label, overrides in every_override(designed).items():
            assert overrides == pytest.approx(proposed_cells.pop(label), rel=2e-3), entry
        assert not proposed_cells, entry


@pytest.mark.parametrize("name", ["p2_equal", "p7_lstm", "p7_gpt"])
def test_a_control_of_a_heavy_ball_decay_keeps_the_chosen_effective_step(name, tmp_path):
    """Each cell that moves a heavy-ball decay moves its rate so that rate / (1 - decay) is the
    chosen setting's (comparison.csv); a cell that moves an EMA's decay leaves the rate alone."""
    chosen = pd.read_csv(TABLES / name / "comparison.csv").set_index("optimizer")
    seen = set()
    searched = [e for e in generate(name, tmp_path).values() if e.get("answers") in controls.CHECKS]
    for entry in searched:
        ((key, _),) = entry["grid"].items()
        rate = HEAVY_BALL.get((entry["optimizer"], key))
        row = chosen.loc[entry["optimizer"]]
        for cell in every_override(entry).values():
            if rate:
                step = cell[f"optimizer.{rate}"] / (1 - cell[f"optimizer.{key}"])
                assert step == pytest.approx(row[rate] / (1 - row[key]), rel=2e-3), entry
                seen.add(rate)
            else:
                assert set(cell) == {f"optimizer.{key}"}, entry
    assert seen, f"{name} has no heavy-ball control to check"


def test_the_command_prints_entries_that_the_design_check_accepts(tmp_path, capsys):
    """Without p7_lstm's controls in the design, the command prints them as entries to paste."""
    tables = without_direct_tests("p7_lstm", tmp_path / "tables")
    design = {n: q for n, q in DESIGN.items() if q.get("from") != "p7_lstm"}
    (tmp_path / "design.yaml").write_text(yaml.safe_dump({"questions": design}, sort_keys=False))
    argv = ["controls", "--only", "p7_lstm", "--tables", str(tables), "--runs", str(tmp_path)]
    assert study_main([*argv, "--design", str(tmp_path / "design.yaml")]) == 0
    entries = yaml.safe_load(capsys.readouterr().out)
    assert entries and all(e["from"] == "p7_lstm" and e["seeds"] == 5 for e in entries.values())
    soap = entries["p7_lstm_soap_momentum"]
    assert soap["answers"] == "contained" and soap["references"] == ["soap", "adamw"]
    check_design({**design, **entries}, OPTIMIZERS, CHECKS)


def test_the_command_leaves_out_the_entries_the_design_holds(tmp_path, capsys):
    tables = without_direct_tests("p7_lstm", tmp_path / "tables")
    argv = ["controls", "--only", "p7_lstm", "--tables", str(tables), "--runs", str(tmp_path)]
    assert study_main(argv) == 0
    first, *rest = capsys.readouterr().out.splitlines()
    held = first.removeprefix("# in the design already: ").split(", ")
    assert "p7_lstm_soap_momentum" in held  # by name
    assert "p7_lstm_adamw_lr_cov (as p7_adamw_lr_cov)" in held  # answers the same check
    assert all(item.split(" (as ")[-1].rstrip(")") in DESIGN for item in held)
    printed = yaml.safe_load("\n".join(rest))
    assert printed and not set(printed) & set(DESIGN)


def stable_failures() -> list[tuple[str, str]]:
    """(question, optimizer) of every failed `stable` check whose table names a stable setting,
    in every comparison but a rerun of a search (which measures how far the choice moves and
    gets no controls)."""
    out = []
    for path in sorted(TABLES.glob("*/stability.csv")):
        if "rerun_of" in DESIGN[path.parent.name]:
            continue
        validity = pd.read_csv(path.parent / "validity.csv")
        failed = validity[(validity["criterion"] == "stable") & ~validity["passed"]]
        named = pd.read_csv(path).dropna(subset=["stable_setting"])
        out += [(path.parent.name, o) for o in named["optimizer"] if o in set(failed["optimizer"])]
    return out


@pytest.mark.parametrize("name, optimizer", stable_failures())
def test_each_collapse_has_a_control_running_the_stable_setting(name, optimizer):
    """The design reruns the trial that stability.csv names, with every hyperparameter it
    searched, on all the question's seeds."""
    stable = pd.read_csv(TABLES / name / "stability.csv").set_index("optimizer")
    setting = stable.loc[optimizer, "stable_setting"]
    trials = pd.read_csv(TABLES / name / "trials.csv")
    trial = trials[trials["setting"] == setting].iloc[0]
    entry = DESIGN[f"{name}_{optimizer}_stable"]
    assert entry["from"] == name and entry["seeds"] == DESIGN[name]["seeds"]
    ((label, overrides),) = every_override(entry).items()
    assert label == setting
    searched = {k for k in PAPER_COLUMNS if pd.notna(trial[k])}
    assert set(overrides) == {f"optimizer.{k}" for k in searched}
    for key in searched:
        assert overrides[f"optimizer.{key}"] == pytest.approx(trial[key], rel=1e-9), key


def test_a_question_without_tables_is_one_line_error(tmp_path, capsys):
    argv = ["controls", "--only", "p2_vit", "--tables", str(tmp_path), "--runs", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        study_main(argv)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "p2_vit has no validity.csv" in line and "rootfree-study report" in line


def test_a_stable_control_sets_every_searched_key_and_refuses_a_table_without_one(tmp_path):
    """Muon also searches adam_lr, which has no paper name: its control sets it, and a trials
    table without it is a one-line error, not a control that silently drops a searched key."""
    question = make_questions(DESIGN, tmp_path)["p2_vit"]
    trial = {"setting": "abc", **{k: 0.1 for k in PAPER_COLUMNS}}
    with pytest.raises(ValueError, match="adam_lr"):
        controls.stable_entry(question, "muon", pd.Series(trial))
    name, entry = controls.stable_entry(question, "muon", pd.Series({**trial, "adam_lr": 0.003}))
    assert name == "p2_vit_muon_stable" and entry["references"][0] == "muon"
    assert every_override(entry)["abc"]["optimizer.adam_lr"] == pytest.approx(0.003)
    name, entry = controls.stable_entry(question, "adamw", pd.Series(trial))
    assert name == "p2_vit_adamw_stable" and "optimizer.adam_lr" not in every_override(entry)["abc"]


def test_the_trials_table_holds_muons_adam_lr_as_each_run_ran_it():
    """Read from the run records' configs, not through the code that writes the table."""
    trials = pd.read_csv(TABLES / "p2_vit" / "trials.csv").set_index("run")
    muon = trials[trials["optimizer"] == "muon"]
    assert len(muon) > 16 and trials.loc[trials["optimizer"] != "muon", "adam_lr"].isna().all()
    for run, value in muon["adam_lr"].items():
        config = yaml.safe_load((TABLES / "runs" / "p2_vit" / run / "config.yaml").read_text())
        assert value == pytest.approx(config["optimizer"]["adam_lr"], rel=1e-5), run


@pytest.mark.parametrize("name", ["p2_vit", "p7_gpt"])
def test_bracketed_reads_muons_adam_lr_too(name, tmp_path):
    """The factor by which Muon's chosen setting lies inside its space, over every searched key
    (adam_lr included), worked out from trials.csv and the space's bounds."""
    space = make_questions(DESIGN, tmp_path)[name].space("muon")
    row = pd.read_csv(TABLES / name / "comparison.csv").set_index("optimizer").loc["muon"]
    trials = pd.read_csv(TABLES / name / "trials.csv")
    trial = trials[(trials["optimizer"] == "muon") & (trials["seed"] == 0)]
    for key in ("lr", "momentum", "weight_decay"):
        trial = trial[np.isclose(trial[key], row[key], rtol=1e-3)]
    trial = trial.iloc[0]
    factors = [f for k, (lo, hi, _) in space.items() for f in (trial[k] / lo, hi / trial[k])]
    validity = pd.read_csv(TABLES / name / "validity.csv")
    check = validity[(validity["optimizer"] == "muon") & (validity["criterion"] == "bracketed")]
    assert check["value"].iloc[0] == pytest.approx(min(factors), rel=1e-4)
