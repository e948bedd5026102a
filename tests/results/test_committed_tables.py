"""`make tables` rebuilds the committed tables and figures (results/paper_small, results/study)
from the committed run records."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml
from matplotlib.testing.compare import compare_images
from PIL import Image

from rootfree.results.__main__ import main
from rootfree.study.__main__ import main as study_main
from rootfree.study.design import DESIGN
from tests.train.helpers import ROOT

COMMITTED = ROOT / "results" / "paper_small"
OPTIMIZERS = "sgd,adamw,rootfree_adam,rootfree_rmsprop,shampoo,rootfree_shampoo"
# RMS pixel difference (0-255) a redrawn figure may have: redrawing on matplotlib 3.11.0 or 3.11.2
# gives 0, moving one optimizer's curve by 0.2 points of accuracy 0.8 or more. Matplotlib 3.10
# sets text a few pixels apart: a size mismatch, which no tolerance absorbs
FIGURE_TOLERANCE = 0.5


def _minor(software: str | None) -> str:
    """'matplotlib 3.11.2' -> '3.11'."""
    return ".".join((software or "").split(" ")[-1].split(".")[:2])


def assert_same_figures(committed: Path, rebuilt: Path, pattern: str) -> None:
    """The PNGs matching ``pattern`` are the same set in both folders, each redrawn within
    FIGURE_TOLERANCE, so a stale committed figure fails as a stale table does."""
    names = sorted(p.relative_to(committed) for p in committed.glob(pattern))
    assert names, f"no committed figure matches {committed / pattern}"
    rebuilt_names = sorted(p.relative_to(rebuilt) for p in rebuilt.glob(pattern))
    assert names == rebuilt_names, "the committed and the rebuilt figures differ in name"
    drawn_by = {Image.open(committed / name).info.get("Software") for name in names}
    here = f"matplotlib {matplotlib.__version__}"
    if {_minor(v) for v in drawn_by} != {_minor(here)}:
        pytest.skip(f"committed figures drawn by {drawn_by}, this is {here}: `make tables`")
    for name in names:
        failure = compare_images(str(committed / name), str(rebuilt / name), tol=FIGURE_TOLERANCE)
        assert failure is None, failure


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
        "stability.md",
        "runs.csv",
    ):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_committed_figures_regenerate(tmp_path):
    records = COMMITTED / "runs"
    args = [str(records), "--out", str(tmp_path), "--plots", "--optimizers", OPTIMIZERS]
    assert main(args) == 0
    assert_same_figures(COMMITTED, tmp_path, "*.png")


@pytest.mark.slow  # CI runs it in make test-slow
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
    assert_same_figures(committed, tmp_path, "*/*.png")


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
