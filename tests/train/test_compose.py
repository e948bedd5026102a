"""rootfree.compose: a group-override config kept once and value overrides applied to a copy
gives the run config (and so the run directory) that one whole Hydra compose gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException

from rootfree.compose import compose_overrides, compose_whole, split_overrides
from rootfree.record import config_hash
from rootfree.study.design import grid_cells
from rootfree.study.kinds import make_questions
from tests.train.helpers import ROOT


def same_config(overrides: list[str]) -> None:
    fast, whole = compose_overrides(overrides), compose_whole(overrides)
    assert json.dumps(fast, sort_keys=True) == json.dumps(whole, sort_keys=True), overrides
    assert config_hash(fast) == config_hash(whole)


def test_group_overrides_and_hydra_keys_are_composed_and_values_applied_after():
    groups, values = split_overrides(
        [
            "experiment=smoke",
            "optimizer=soap",
            "optimizer.lr=3e-3",
            "+optimizer.batch_size=1",
            "seed=2",
            "hydra.run.dir=/tmp/x",
            "~trainer.grad_clip",
        ]
    )
    assert groups == [
        "experiment=smoke",
        "optimizer=soap",
        "hydra.run.dir=/tmp/x",
        "~trainer.grad_clip",
    ]
    assert values == ["optimizer.lr=3e-3", "+optimizer.batch_size=1", "seed=2"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=smoke", "optimizer=soap", "optimizer.lr=3e-3", "seed=2"],
        [
            "dataset=shakespeare",
            "model=lstm",
            "optimizer=rootfree_rmsprop",
            "+optimizer.batch_size=1",
        ],
        ["optimizer.lr=0.1", "optimizer=sgd", "trainer.epochs=3", "paths.runs=/tmp/elsewhere"],
    ],
)
def test_a_split_compose_equals_one_whole_compose(overrides):
    same_config(overrides)


def test_a_bad_value_override_fails_as_in_a_whole_compose():
    overrides = ["optimizer=sgd", "optimizer.no_such_key=1"]
    for composer in (compose_overrides, compose_whole):
        with pytest.raises(ConfigCompositionException, match="no_such_key"):
            composer(overrides)


def design_runs(path: Path) -> list[list[str]]:
    """One run per (question, optimizer, grid cell) of a study design, its first stage-1 draw,
    and of those one per shape: its group overrides and the keys its values set."""
    design = yaml.safe_load(path.read_text())["questions"]
    questions = make_questions(design, Path("/tmp/rootfree-compose-test"))
    runs = {}
    for name, spec in design.items():
        if spec.get("kind") == "computation":
            continue
        source = questions[spec.get("from", name)]
        optimizers = [spec["optimizer"]] if "grid" in spec else spec["optimizers"]
        cells = grid_cells(spec) if "grid" in spec else [((), [])]
        for optimizer in optimizers:
            for _, extra in cells:
                extra = [*spec.get("overrides", []), *extra] if "grid" in spec else extra
                run = source.overrides(optimizer, source.stage1(optimizer)[0], 1, extra)
                groups, values = split_overrides(run)
                runs.setdefault((*groups, *(v.split("=")[0] for v in values)), run)
    return list(runs.values())


@pytest.mark.slow
@pytest.mark.parametrize("design", ["study.yaml", "study_paper.yaml"])
def test_every_run_of_the_study_designs_composes_as_one_whole_compose(design):
    for overrides in design_runs(ROOT / "experiments" / design):
        same_config(overrides)
