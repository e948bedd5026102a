"""Controls for a comparison's failed checks, as design entries to paste into the study:
each failed `bracketed` or `contained` row that no derived question tests yet becomes a derived
question that reruns the chosen setting one factor 1.5 and one 2.25 past the end it sits at.
A decay (momentum) that those factors would take to 1 or past moves by 1 - value halved and
quartered instead; one the spec declares heavy-ball moves with its rate, so that the effective
step rate / (1 - decay) stays the chosen one. A failed `plateau` row becomes the chosen setting
trained twice as long.
Their verdicts then answer the check (rootfree.results.validity).
A failed `stable` check becomes a question that runs, on every seed, the best setting whose
search run never collapses (stability.csv), beside every optimizer compared: it answers no
check, since whether a lead rests on an unstable setting is read as a comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from rootfree.compose import compose_overrides
from rootfree.optim import OptimizerSpec, get_optimizer_spec, searched_only
from rootfree.optim.spec import PAPER_DECAYS
from rootfree.results.collect import PAPER_COLUMNS
from rootfree.results.validity import tightest_edge
from rootfree.study.design import Question, cell_minutes
from rootfree.study.report import DIRECT

CHECKS = ("bracketed", "contained")  # the checks whose concern a value past an end tests
FACTORS = (1.5, 2.25)
PLATEAU = ("plateau",)  # the check whose concern a longer run tests


def past_end(value: float, key: str, side: str) -> list[float]:
    """The values a control tries: ``value`` moved a factor 1.5 and 2.25 past ``side``."""
    if side == "low":
        return [value / factor for factor in FACTORS]
    if key in PAPER_DECAYS and value * FACTORS[-1] >= 1.0:
        return [1.0 - (1.0 - value) / 2, 1.0 - (1.0 - value) / 4]
    return [value * factor for factor in FACTORS]


def untested(validity: pd.DataFrame, criteria: tuple[str, ...]) -> list:
    """The failed rows of ``criteria`` that no row of a direct test covers (a derived question
    answering that criterion for that optimizer)."""
    tested = {
        (row.optimizer, row.criterion)
        for row in validity.itertuples()
        if str(row.check).startswith(DIRECT)
    }
    return [
        row
        for row in validity.itertuples()
        if row.criterion in criteria
        and not bool(row.passed)
        and (row.optimizer, row.criterion) not in tested
    ]


def untested_failures(validity: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(optimizer, criterion, key, side) of each failed search check that no direct test
    covers."""
    out = []
    for row in untested(validity, CHECKS):
        edge = tightest_edge(str(row.check))
        if edge:
            out.append((row.optimizer, row.criterion, *edge))
    return out


def derived_entry(
    question: Question,
    optimizer: str,
    title: str,
    grid: dict,
    references: list,
    answers: str | None = None,
    scale: float = 1,
) -> dict:
    """A derived question on ``question``'s chosen ``optimizer``: its seeds, its cell minutes
    times ``scale``, and the check it ``answers``, if any."""
    entry = {
        "title": f"{question.name}, {optimizer}: {title}",
        "kind": "derived",
        "from": question.name,
        "optimizer": optimizer,
        "grid": grid,
        "references": references,
        "seeds": question.spec["seeds"],
    }
    if answers:
        entry["answers"] = answers
    minutes = scale * cell_minutes(question.spec["minutes"], optimizer)
    return entry | {"checks": [], "minutes": {"default": minutes}}


def cell_overrides(spec: OptimizerSpec, chosen: pd.Series, key: str, value: float) -> list[str]:
    """One control cell: ``key`` at ``value``, and a heavy-ball decay's rate moved with it so
    that rate / (1 - decay) stays the chosen setting's."""
    overrides = [f"optimizer.{key}={value:.4g}"]
    rate = spec.heavy_ball.get(key)
    if rate:
        held = float(chosen[rate]) * (1.0 - value) / (1.0 - float(chosen[key]))
        overrides.append(f"optimizer.{rate}={held:.4g}")
    return overrides


def control_entry(question: Question, chosen: pd.Series, failure: tuple) -> tuple[str, dict]:
    """(name, design entry) of the derived question that tests one failure."""
    optimizer, criterion, key, side = failure
    spec = get_optimizer_spec(optimizer)
    values = past_end(float(chosen[key]), key, side)
    grid = {f"{v:.3g}": cell_overrides(spec, chosen, key, v) for v in values}
    compared = question.spec["optimizers"]
    others = [o for o in (spec.counterpart, "adamw") if o in compared and o != optimizer]
    held = f", the same {spec.heavy_ball[key]} / (1 - {key})" if key in spec.heavy_ball else ""
    title = (
        f"the chosen setting at a {'lower' if side == 'low' else 'higher'} {key}{held} "
        f"(its {criterion} check failed)"
    )
    references = [optimizer] + others[:1]
    entry = derived_entry(question, optimizer, title, {key: grid}, references, answers=criterion)
    return f"{question.name}_{optimizer}_{key}", entry


def budget_entry(question: Question, optimizer: str) -> tuple[str, dict]:
    """(name, design entry) of the derived question that trains ``optimizer``'s chosen setting
    for twice the question's epochs (or steps), evaluating half as often."""
    trainer = compose_overrides(question.overrides(optimizer, {}, 0))["trainer"]
    key = "max_steps" if trainer.get("max_steps") else "epochs"
    length = 2 * trainer[key]
    overrides = [f"trainer.{key}={length}"]
    if trainer.get("eval_every"):
        overrides.append(f"trainer.eval_every={2 * trainer['eval_every']}")
    title = (
        f"the chosen setting trained for {length} {key.replace('_', ' ')} instead of "
        f"{trainer[key]} (its plateau check failed)"
    )
    grid = {key: {str(length): overrides}}
    entry = derived_entry(question, optimizer, title, grid, [optimizer], answers="plateau", scale=2)
    return f"{question.name}_{optimizer}_{key}", entry


def stable_entry(question: Question, optimizer: str, trial: pd.Series) -> tuple[str, dict]:
    """(name, design entry) of the derived question that reruns ``trial``, the best search trial
    of ``optimizer`` that never collapses, on every seed of ``question``, beside every
    optimizer it compares."""
    space = question.space(optimizer)
    unread = [k for k in space if k not in trial]
    if unread:
        raise ValueError(f"{optimizer}'s stable control: trials.csv has no column {unread}")
    keys = [k for k in (*PAPER_COLUMNS, *searched_only()) if k in space]
    grid = {"setting": {trial["setting"]: [f"optimizer.{k}={trial[k]:.4g}" for k in keys]}}
    others = [o for o in question.spec["optimizers"] if o != optimizer]
    title = (
        "the best setting whose search run never collapses, on every seed (its stable check failed)"
    )
    entry = derived_entry(question, optimizer, title, grid, [optimizer, *others])
    return f"{question.name}_{optimizer}_stable", entry


def unstable(validity: pd.DataFrame, stability: pd.DataFrame) -> list[tuple[str, str]]:
    """(optimizer, stable setting) of each failed `stable` check that has a stable setting."""
    failed = {row.optimizer for row in untested(validity, ("stable",))}
    named = stability[stability["optimizer"].isin(failed) & stability["stable_setting"].notna()]
    return list(zip(named["optimizer"], named["stable_setting"]))


def read_tables(question: Question, tables: Path, *names: str) -> list[pd.DataFrame]:
    """The question's tables ``names`` (validity, comparison, ...) as ``make tables`` wrote them."""
    for name in names:
        if not (tables / question.name / f"{name}.csv").exists():
            raise FileNotFoundError(
                f"{question.name} has no {name}.csv under {tables}: "
                "run `rootfree-study report` first"
            )
    return [pd.read_csv(tables / question.name / f"{name}.csv") for name in names]


def controls(question: Question, tables: Path) -> dict[str, dict]:
    """Design entries for every untested failed search or plateau check of ``question`` and
    every failed stable check, read from its tables as ``make tables`` writes them."""
    validity, comparison, stability, trials = read_tables(
        question, tables, "validity", "comparison", "stability", "trials"
    )
    chosen = comparison.set_index("optimizer")
    entries = dict(
        control_entry(question, chosen.loc[failure[0]], failure)
        for failure in untested_failures(validity)
    )
    entries.update(budget_entry(question, row.optimizer) for row in untested(validity, PLATEAU))
    by_setting = trials.drop_duplicates("setting").set_index("setting", drop=False)
    for optimizer, setting in unstable(validity, stability):
        entries.update([stable_entry(question, optimizer, by_setting.loc[setting])])
    return entries


def holder(name: str, entry: dict, design: dict) -> str | None:
    """The design's entry that holds ``entry``: by name, or a question that answers the same
    check of the same optimizer of the same comparison; None if none does."""
    same = ("from", "optimizer", "answers")
    if name in design:
        return name
    if "answers" not in entry:
        return None
    return next((n for n, q in design.items() if all(q.get(k) == entry[k] for k in same)), None)


def controls_yaml(entries: dict[str, dict]) -> str:
    """The entries as a block of experiments/study.yaml's ``questions``."""
    text = yaml.safe_dump(entries, sort_keys=False, width=100, default_flow_style=None)
    return "".join(f"  {line}\n" for line in text.splitlines())
