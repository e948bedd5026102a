"""Every committed study record is still the run its design composes: recomposing the design's
overrides with today's configs gives the committed run directories' hashes, so no change to the
configs or the trainer silently orphans a record (or retrains it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rootfree.study import schedule
from rootfree.study.kinds import Comparison, Derived, make_questions

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "results" / "study" / "runs"
DESIGN = yaml.safe_load((ROOT / "experiments" / "study.yaml").read_text())
QUESTIONS = make_questions(DESIGN["questions"], RECORDS)


def committed(name: str) -> int:
    return len(list((RECORDS / name).glob("*/status.json")))


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rootfree_rmsprop", "rootfree_shampoo"])
def test_a_finished_comparison_recomposes_to_its_committed_runs(optimizer):
    """P2's searches and reseeding ran to the end: nothing of them is left to run."""
    question = QUESTIONS["p2_vit"]
    assert isinstance(question, Comparison)
    todo, chosen = schedule.progress(question, optimizer)
    assert todo == [] and chosen is not None


@pytest.mark.parametrize(
    "name", [n for n, q in QUESTIONS.items() if isinstance(q, Derived) and committed(n)]
)
def test_every_committed_derived_record_is_a_run_of_its_design(name):
    counts = QUESTIONS[name].settled_counts(QUESTIONS)
    assert sum(counts.values()) == committed(name)
