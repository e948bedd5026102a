"""`make tables` rebuilds the committed tables (results/paper_small, results/study) from the
committed run records."""

from __future__ import annotations

import pandas as pd
import yaml

from rootfree.results.__main__ import main
from rootfree.study.__main__ import main as study_main
from rootfree.study.design import DESIGN
from tests.train.helpers import ROOT

COMMITTED = ROOT / "results" / "paper_small"
OPTIMIZERS = "sgd,adamw,rootfree_adam,rootfree_rmsprop,shampoo,rootfree_shampoo"


def test_committed_tables_regenerate_byte_for_byte(tmp_path):
    records = COMMITTED / "runs"
    assert records.is_dir(), "results/paper_small/runs holds the records `make tables` reads"
    assert main([str(records), "--out", str(tmp_path), "--optimizers", OPTIMIZERS]) == 0
    for name in (
        "comparison.md",
        "comparison.csv",
        "comparison.tex",
        "tuning.csv",
        "precision.md",
        "runs.csv",
    ):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_committed_study_tables_regenerate_byte_for_byte(tmp_path):
    committed = ROOT / "results" / "study"
    records = committed / "runs"
    assert records.is_dir(), "results/study/runs holds the records `make tables` reads"
    assert study_main(["report", "--out", str(records), "--tables", str(tmp_path)]) == 0
    written = sorted(
        p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix in (".md", ".csv")
    )
    assert written, "the report wrote no table"
    for name in written:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name


def test_the_remeasured_transfer_cells_are_the_ones_the_committed_transfer_table_names():
    """p3_transfer_seeds lists by hand, at every batch size but the anchor's, the lr
    transferred from B = 128 and its strongest rival on seed 0 (the best lr there, or the
    runner-up where the best is the transferred one); and pairs each against the transferred."""
    design = yaml.safe_load(DESIGN.read_text())["questions"]["p3_transfer_seeds"]
    study = ROOT / "results" / "study" / "p3_transfer"
    cells = pd.read_csv(study / "table.csv", dtype={"batch": str, "lr": str})
    transfer = pd.read_csv(study / "transfer.csv", dtype=str)
    named = set()
    for row in transfer[transfer["batch"] != "128"].itertuples():
        here = cells[(cells["batch"] == row.batch) & (cells["variant"] == row.variant)]
        rivals = here[here["lr"] != row.lr_from_128].sort_values("val_acc")
        named |= {
            f"{row.batch}/{row.variant}/{lr}" for lr in (row.lr_from_128, rivals["lr"].iloc[-1])
        }
    assert len(named) == 12 and sorted(design["cells"]) == sorted(named)
    assert design["paired"]["base"] == dict(zip(transfer["variant"], transfer["lr_from_128"]))
