"""docs/fidelity.md says what each paper experiment composes to: every row that names a config
key must match the composed config."""

from __future__ import annotations

import pytest
import yaml

from tests.train.helpers import ROOT, compose_config

DOC = ROOT / "docs" / "fidelity.md"


def keyed_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("paper_") and "." in cells[2]:
            rows.append((cells[0], cells[2], cells[4]))
    return rows


def lookup(config: dict, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def test_the_document_covers_every_paper_experiment():
    covered = {experiment for experiment, _, _ in keyed_rows()}
    experiments = {p.stem for p in (ROOT / "experiments" / "experiment").glob("paper_*.yaml")}
    assert covered == experiments - {"paper_small"}


@pytest.mark.parametrize("experiment,key,ours", keyed_rows())
def test_each_keyed_row_matches_the_composed_config(experiment, key, ours):
    config = compose_config(f"experiment={experiment}", "optimizer=sgd")
    assert lookup(config, key) == yaml.safe_load(ours.replace("`", ""))
