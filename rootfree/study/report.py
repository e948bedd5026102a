"""The study's report from committed records: per comparison its table, validity checks,
tuning curves and error curves; per derived question its grid table; computed tables."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rootfree.compose import compose_overrides
from rootfree.optim import searched_only
from rootfree.record import read_run
from rootfree.results import validity
from rootfree.results.collect import PAPER_COLUMNS, collect, run_provenance
from rootfree.results.latex import write_latex
from rootfree.results.plots import error_curves, sweep_curves, tuning_curves
from rootfree.results.rerun import rerun_readings, search_rerun_table
from rootfree.results.robustness import robustness_table
from rootfree.results.select import CELL, run_scores, select_best
from rootfree.results.stability import stability_markdown, worst_drop
from rootfree.results.stats import summarize
from rootfree.results.tables import (
    compact_markdown,
    comparison_table,
    provenance_flag,
    skipped_note,
    with_gap_to,
    with_holm,
)
from rootfree.results.transfer import (
    paired_to_base,
    regret_difference,
    regret_pairs,
    transfer_table,
)
from rootfree.results.tuning import tuning_curve
from rootfree.study.design import Question, seed_list
from rootfree.study.schedule import derived_runs, finished_trials, progress, run_path
from rootfree.tasks import ACCURACY, CLASSIFICATION, Metric, Task, task_for

CHECKS = {
    "converged": lambda frame, scores, chosen, q: validity.converged(frame, chosen),
    "warm": lambda frame, scores, chosen, q: validity.warm_preconditioner(frame, chosen),
    "tuning": lambda frame, scores, chosen, q: validity.tuning_saturated(scores, chosen),
    "seeds": lambda frame, scores, chosen, q: validity.enough_seeds(chosen, q.spec["seeds"]),
    "plateau": lambda frame, scores, chosen, q: validity.plateaued(frame, chosen),
    "stable": lambda frame, scores, chosen, q: validity.stable(scores, chosen),
    "bracketed": lambda frame, scores, chosen, q: validity.bracketed(
        scores, chosen, {o: q.space(o) for o in q.spec["optimizers"]}, q.spec["margin"]
    ),
    "contained": lambda frame, scores, chosen, q: validity.contained(
        scores,
        chosen,
        stage2_spaces(q),
        {o: q.space(o) for o in q.spec["optimizers"]},
        q.spec["margin"],
    ),
}


def stage2_spaces(question: Question) -> dict[str, dict[str, tuple]]:
    """The stage-2 range of each optimizer whose search is final, from its stage-1 records."""
    spaces = {}
    for optimizer in question.spec["optimizers"]:
        if progress(question, optimizer)[1] is not None:
            trials = finished_trials(question, optimizer, question.stage1(optimizer))
            spaces[optimizer] = question.stage2_space(optimizer, trials)
    return spaces


def with_mdd(table: pd.DataFrame) -> pd.DataFrame:
    """Add the minimal detectable difference (power 0.8, two-sided 5%) at each cell's seeds."""
    mdd = [validity.minimal_detectable_difference(r.std, int(r.seeds)) for r in table.itertuples()]
    return table.assign(mdd=mdd)


def comparison(question: Question, scores: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The comparison table of the ``chosen`` settings: gaps to SGD and AdamW, paired gaps to
    counterparts, each p-value with its Holm-adjusted twin (within the question's families)."""
    table = with_gap_to(with_mdd(comparison_table(scores, chosen)), scores, chosen, "adamw")
    return with_holm(table, question.spec.get("holm"))


def report_question(
    question: Question, everything: dict[str, Question], records: Path, out: Path
) -> pd.DataFrame:
    """Tables, validity checks and plots of one question from its committed records."""
    frame, skipped, _ = collect(records)
    scores = run_scores(frame)
    chosen = select_best(scores)
    out.mkdir(parents=True, exist_ok=True)
    table = comparison(question, scores, chosen)
    table.to_csv(out / "comparison.csv", index=False, float_format="%.6g")
    title = f"{question.spec['title']} (final epoch; {len(frame['run'].unique())} runs)"
    (out / "comparison.md").write_text(compact_markdown(table, title) + skipped_note(skipped))
    write_latex(table, out / "comparison.tex")
    rows = [
        CHECKS[name](frame, scores, chosen, question).assign(criterion=name)
        for name in question.spec["checks"]
    ]
    rows.append(direct_tests(question, everything, chosen.iloc[0]))
    # an empty frame in the concat would make `passed` an object column
    checks = pd.concat([r for r in rows if not r.empty], ignore_index=True)
    write_checks(question, checks, out)
    write_trials(scores, out)
    robustness = robustness_table(scores, run_scores(frame, "best"), chosen)
    write_robustness(robustness, question_task(question, everything).primary, out)
    write_stability(validity.stable_alternatives(scores, chosen), out)
    curve = tuning_curve(scores)
    curve.to_csv(out / "tuning.csv", index=False, float_format="%.6g")
    error_curves(frame, chosen, out, "epoch")
    error_curves(frame, chosen, out, "wall_seconds")
    tuning_curves(curve, out)
    return checks


DIRECT = "tested by "  # how a direct test's row in a validity table begins


def question_task(question: Question, everything: dict[str, Question]) -> Task:
    """What a question's runs are trained to do, so read on: the task of the dataset its
    overrides compose to (a derived question's start from its source's)."""
    spec = question.spec
    specs = [everything[spec["from"]].spec, spec] if "from" in spec else [spec]
    overrides = [o for s in specs for o in s.get("overrides", [])]
    return task_for(compose_overrides(overrides)["dataset"]["name"])


def direct_tests(
    question: Question, everything: dict[str, Question], cell: pd.Series
) -> pd.DataFrame:
    """One row per derived question that ``answers`` a check of ``question`` and has settled
    every run: its cells' validation score against the chosen setting of its optimizer
    (validity.direct_test; a language model's loss negated, so a gain is a lower loss). ``cell``: any chosen cell of the
    question, for its dataset and model."""
    rows, metric = [], question_task(question, everything).primary
    val = f"val_{metric.name}"
    for control in everything.values():
        spec = control.spec
        if spec.get("from") != question.name or "answers" not in spec:
            continue
        if control.pending(everything):  # part of a control would give a verdict that can flip
            continue
        group, runs = chosen_runs(question, spec["optimizer"]), run_rows(control, question, metric)
        finished = runs.dropna(subset=[val]) if not runs.empty else runs
        if group is None or finished.empty:  # a control planned, not yet run, tests nothing
            continue
        paths = finished[list(spec["grid"])].agg("/".join, axis=1)
        test = validity.direct_test(
            metric.signed(finished[val]).groupby(paths).apply(list).to_dict(),
            [
                metric.signed(r.final[val])
                for r in map(read_run, map(run_path, group))
                if r.finished
            ],
        )
        rows.append(
            {
                **cell[list(CELL)].to_dict(),
                "optimizer": spec["optimizer"],
                "check": f"{DIRECT}{control.name}: val gain of its best cell ({test['best']})",
                "value": test["gain"],
                "threshold": f"< seed CI {test['ci']:.4f}",
                "passed": test["passed"],
                "criterion": spec["answers"],
            }
        )
    return pd.DataFrame(rows)


def chosen_runs(source: Question, optimizer: str) -> list[list[str]] | None:
    """The overrides of every seed of ``source``'s chosen setting of ``optimizer``; None
    until it is chosen."""
    _, best = progress(source, optimizer)
    if best is None:
        return None
    return [source.overrides(optimizer, best, seed) for seed in range(source.spec["seeds"])]


def write_rerun(question: Question, records: Path, out: Path) -> None:
    """rerun.md: per optimizer, the test accuracy of the chosen setting of ``rerun_of``'s
    search and of this rerun of it (another sampler seed), and how far it moved; then each
    reading of the first search's comparison beside the rerun's and whether it survives."""
    searches, tables = [], []
    for name in (question.spec["rerun_of"], question.name):
        scores = run_scores(collect(records / name)[0])
        searches.append((scores, select_best(scores)))
        tables.append(comparison(question, *searches[-1]))
    table = search_rerun_table(*searches)
    table.to_csv(out / "rerun.csv", index=False, float_format="%.6g")
    percent = "test_acc" in table  # accuracies in %, a language model's losses as they are
    scaled = ("test_acc", "rerun_test_acc", "moved", "moved_ci95") if percent else ()
    text = (
        f"# {question.name}: {question.spec['rerun_of']}'s search rerun with sampler seed "
        f"{question.sampler_seed()}\n\nTest {'accuracy in %' if percent else 'loss in nats'} of "
        "each search's chosen setting (mean "
        "over its seeds); same_setting: both searches chose one setting; moved: the rerun's minus "
        "the first's, with Welch's 95% CI: how far the choice depends on the search's draws.\n\n"
        + _markdown(table.assign(**{c: table[c] * 100 for c in scaled}))
    )
    readings = rerun_readings(*tables)
    if not readings.empty:
        readings.to_csv(out / "rerun_readings.csv", index=False, float_format="%.6g")
        text += readings_section(readings, percent)
    (out / "rerun.md").write_text(text + "\n")


def readings_section(readings: pd.DataFrame, percent: bool) -> str:
    """rerun.md's second part: each reading of both searches, and whether it survives."""
    differences = [f"{s}_{c}" for s in ("first", "rerun") for c in ("diff", "ci95")]
    shown = readings.assign(**{c: readings[c] * 100 for c in differences if percent})
    return (
        "\n\n## Each reading in both searches\n\nEvery difference of the first search's "
        "comparison.csv (optimizer minus versus: Welch, or paired by seed) with its 95% CI and "
        "Holm-adjusted p, beside the same difference in the rerun's; verdict: resolved (Holm p "
        "< 0.05) in both with one sign (holds), in neither, in one only, or both ways "
        "(reverses); untested: a side has too few seeds. rerun_readings.csv holds it.\n\n"
        + _markdown(shown)
    )


def unanswered(checks: pd.DataFrame) -> int:
    """Failed checks that no passing direct test of the same criterion and optimizer answers,
    direct tests that failed included."""
    direct = checks["check"].str.startswith(DIRECT)
    answered = checks[direct & checks["passed"]][["optimizer", "criterion"]]
    keys = set(map(tuple, answered.to_numpy()))
    failed = checks[~checks["passed"]]
    return sum(
        is_direct or (optimizer, criterion) not in keys
        for optimizer, criterion, is_direct in zip(
            failed["optimizer"], failed["criterion"], direct[~checks["passed"]]
        )
    )


def write_checks(question: Question, checks: pd.DataFrame, out: Path) -> None:
    checks.to_csv(out / "validity.csv", index=False, float_format="%.6g")
    text = (
        f"# Validity checks: {question.name}\n\n"
        'criterion: the design\'s check (experiments/study.yaml). A row "tested by" is a\n'
        "derived question that tests a check's concern directly (longer training, values past\n"
        "a search bound); it passes when its best cell gains less validation accuracy over the\n"
        "chosen setting than that setting's seed CI, and so answers a failed row of the same\n"
        "criterion and optimizer. The failed row stays as measured.\n\n"
    )
    (out / "validity.md").write_text(text + checks.to_markdown(index=False, floatfmt=".4g") + "\n")


def write_trials(scores: pd.DataFrame, out: Path) -> None:
    """trials.csv: every run of the question (search trials and reseeded settings) with its
    hyperparameters in the paper's names (and each searched one without a paper name, such as
    Muon's adam_lr), status and final scores, for claims about a search
    (which trials diverged, where they lie) that no summary table holds."""
    columns = ["optimizer", "seed", "run", "setting", "status", *PAPER_COLUMNS, *searched_only()]
    columns += [c for c in scores if c.startswith(("val_", "test_"))]
    columns += ["worst_acc_drop", "loss_spike"]
    trials = scores[[c for c in columns if c in scores]].dropna(axis=1, how="all")
    trials = trials.sort_values(["optimizer", "seed", "run"], kind="stable")
    trials.to_csv(out / "trials.csv", index=False, float_format="%.6g")


def write_robustness(table: pd.DataFrame, metric: Metric, out: Path) -> None:
    """robustness.md: the chosen seeds' test score (``metric``, the task's primary) at the final
    and the best-validation epoch, and the search's best trials'."""
    table.to_csv(out / "robustness.csv", index=False, float_format="%.6g")
    scores = [c for c in table if c.startswith(("test", "top")) and "trials" not in c]
    text = (
        "# Does the ordering depend on how each number was picked?\n\n"
        f"Test {metric.label} in {metric.unit}: the chosen setting's seeds at the final epoch (the "
        "comparison's\nnumber) and at each run's best-validation epoch; the search's best trials "
        f"by validation\n{metric.label} (search seed), their mean, min and max.\n\n"
    )
    shown = _shown(table, metric, scores).to_markdown(
        index=False, floatfmt=".2f" if metric.percent else ".4f"
    )
    (out / "robustness.md").write_text(text + shown + "\n")


def write_stability(table: pd.DataFrame, out: Path) -> None:
    table.to_csv(out / "stability.csv", index=False, float_format="%.6g")
    (out / "stability.md").write_text(stability_markdown(table))


def cell_row(records: list, task: Task = CLASSIFICATION) -> dict:
    """Seeds, the test score (the task's primary metric) mean and CI, mean validation and final
    train score, the worst seed's fall of running train accuracy, the fraction of second-moment
    coordinates still at S0, training images/s or tokens/s (each run's median epoch, so an
    epoch the machine paused does not count), optimizer state MiB, the final Kronecker
    factors' median condition number, runs that diverged and runs that did not finish, and
    what its seeds' provenance flags (``tables.provenance_flag``)."""
    done, name, unit = [r for r in records if r.finished], task.primary.name, task.unit
    test = summarize([r.final[f"test_{name}"] for r in done])

    def final(key: str) -> float:
        return _mean([r.final.get(key) for r in done])

    return {
        "seeds": test["n"],
        f"test_{name}": test["mean"],
        "ci95": test["ci"],
        f"val_{name}": final(f"val_{name}"),
        f"train_{name}": final(f"train_{name}"),
        "worst_drop": max((_worst_drop(r) for r in done), default=math.nan),
        "s_at_init": final("second_moment_at_init"),
        f"{unit}_per_s": _mean(
            [_median([m.get(f"{unit}_per_second") for m in r.metrics]) for r in done]
        ),
        "state_mib": final("optimizer_state_mib"),
        "factor_cond": _mean([(r.final_eval or {}).get("factor_cond_median") for r in done]),
        "diverged": sum(r.state == "diverged" for r in records),
        "not_done": sum(r.state != "done" for r in records),
        "provenance": provenance_flag(pd.DataFrame([run_provenance(r) for r in records])),
    }


def _worst_drop(record) -> float:
    """The run's largest fall of running train accuracy below its best so far."""
    return worst_drop([float(m.get("train_acc", math.nan)) for m in record.metrics])


def _mean(values: list) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def derived_table(
    question: Question, source: Question, task: Task = CLASSIFICATION
) -> pd.DataFrame:
    """One row per grid cell, then one per ``references`` optimizer: the source question's own
    chosen setting of it, all its seeds, as the cells' baseline."""
    axes = list(question.spec["grid"])
    rows = [
        {**dict(zip(axes, labels)), **cell_row([read_run(run_path(o)) for o in group], task)}
        for labels, group in (derived_runs(question, source) or {}).items()
    ]
    for optimizer in question.spec.get("references", []):
        group = chosen_runs(source, optimizer)
        if group is None:
            continue
        label = {axis: "" for axis in axes} | {axes[0]: f"{optimizer} ({source.name})"}
        rows.append({**label, **cell_row([read_run(run_path(o)) for o in group], task)})
    return pd.DataFrame(rows)


def report_derived(question: Question, everything: dict[str, Question], out: Path) -> None:
    if not question.runs.exists():  # no records yet: no table of blanks
        return
    task = question_task(question, everything)
    table = derived_table(question, everything[question.spec["from"]], task)
    if table.empty:
        return
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False, float_format="%.6g")
    name, metric = task.primary.name, task.primary
    shown = _shown(table, metric, (f"test_{name}", "ci95", f"val_{name}"))
    text = f"# {question.spec['title']}\n\n" + _derived_legend(task)
    (out / "table.md").write_text(text + _markdown(shown) + "\n")
    if "transfer" in question.spec:
        write_transfer(question, table, out, metric)
    if "paired" in question.spec:
        write_paired(question, everything[question.spec["from"]], out, metric)


def _derived_legend(task: Task) -> str:
    """How to read a derived question's table.md."""
    name, label, unit = task.primary.name, task.primary.label, task.primary.unit
    unit_s = task.unit
    return (
        f"Test {label} in {unit}, +- the 95% CI over seeds; val_{name}: mean validation {label} "
        f"in {unit};\n"
        f"train_{name}: the last epoch's running training {label}; "
        "worst_drop: the largest fall of\n"
        "the running training accuracy below its best so far, worst seed (0.1 or more: a\n"
        "collapse); s_at_init: the fraction of\n"
        f"second-moment coordinates still exactly at S0; {unit_s}_per_s: training throughput, "
        "the\n"
        "median epoch (one thread, two runs sharing the machine); state_mib: the optimizer's\n"
        "state; factor_cond: the final Kronecker factors' K K^T, median condition number over\n"
        "factors (mean over seeds); diverged: runs that diverged; not_done: runs that\n"
        "diverged, failed or are unfinished; provenance: the cell's seeds ran mixed commits,\n"
        "data or CPU kinds, or uncommitted code (dirty tree).\n\n"
    )


def _shown(table: pd.DataFrame, metric: Metric, columns) -> pd.DataFrame:
    """``table`` as printed: ``columns`` times 100 where the metric is a percentage."""
    return table.assign(**{c: table[c] * 100 for c in columns}) if metric.percent else table


def _markdown(table: pd.DataFrame) -> str:
    """Grid labels as written ("2.5e-4" stays so), numbers to four significant digits."""
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table]
    shown = table.apply(
        lambda c: c.map("{:.4g}".format) if pd.api.types.is_float_dtype(c) else c.fillna("")
    )
    align = ["right" if n else "left" for n in numeric]
    return shown.to_markdown(index=False, disable_numparse=True, colalign=align)


def write_transfer(
    question: Question, cells: pd.DataFrame, out: Path, metric: Metric = ACCURACY
) -> None:
    """The transfer table of a swept grid (``transfer``: sweep, across, anchor) and its curves."""
    spec, grid = question.spec["transfer"], question.spec["grid"]
    sweep, across, anchor = spec["sweep"], spec["across"], str(spec["anchor"])
    order = [str(label) for label in grid[sweep]]
    cells = cells[cells[sweep].isin(order)]  # the grid's cells, not its reference rows
    table = transfer_table(cells, list(grid), sweep, across, anchor, order, metric)
    table.to_csv(out / "transfer.csv", index=False, float_format="%.6g")
    numbers = ("best_val", "best_test", "transfer_val", "transfer_test", "regret")
    shown, label = _shown(table, metric, numbers), metric.label
    lost, values = ("points lost", "accuracies") if metric.percent else ("loss added", "losses")
    by = f"validation {label} ({metric.unit})"
    text = (
        f"# Does the {sweep} chosen at {across} = {anchor} transfer?\n\n"
        f"Per {across}: the best {sweep} by {by} and its test {label}; the\n"
        f"{sweep} chosen at {across} = {anchor} and its {values} here; regret: the validation\n"
        f"{lost} by transferring (a diverged transfer loses all); shift: grid steps from the\n"
        f"transferred {sweep} to the best one here; bracketed: True where both grid neighbours of\n"
        f"the best {sweep} have run (finished or diverged), False at an end of the grid or beside\n"
        f"a cell still to run, where the optimum may lie beyond.\n\n"
    )
    (out / "transfer.md").write_text(text + _markdown(shown) + "\n")
    path = out / f"sweep_{sweep}_by_{across}"
    sweep_curves(cells, list(grid), sweep, across, order, path, metric)
    if "compare" in spec:
        write_regret_comparison(table, spec, out, metric)


def write_regret_comparison(
    table: pd.DataFrame, spec: dict, out: Path, metric: Metric = ACCURACY
) -> None:
    """transfer_paired.md: one label's regret minus another's (``compare``: axis, a, b),
    paired on every other grid label and ``across`` value: the direct test of which one
    transfers better."""
    compare, across, anchor = spec["compare"], spec["across"], str(spec["anchor"])
    a, b = str(compare["a"]), str(compare["b"])
    pairs = regret_pairs(table, compare["axis"], a, b, across, anchor)
    test = regret_difference(pairs)
    pairs.to_csv(out / "transfer_paired.csv", index=False, float_format="%.6g")
    numbers = [c for c in pairs.columns if c.startswith("regret_") or c == "difference"]
    shown, scale = _shown(pairs, metric, numbers), 100 if metric.percent else 1
    unit = "validation points" if metric.percent else "validation loss"
    text = (
        f"# Does {a} transfer the {spec['sweep']} better than {b}?\n\n"
        f"Regret ({a}) minus regret ({b}) in {unit}, paired on every other grid label\n"
        f"and {across} (the anchor {across} = {anchor} left out, where both are 0): mean "
        f"{scale * test['diff']:.2f}, 95% CI ± {scale * test['ci']:.2f}, p = {test['p']:.2g} over "
        f"{test['pairs']} pairs (a paired t-test; negative: {a} loses less).\n\n"
    )
    (out / "transfer_paired.md").write_text(text + _markdown(shown) + "\n")


def run_rows(question: Question, source: Question, metric: Metric = ACCURACY) -> pd.DataFrame:
    """One row per run of a derived question: its grid labels, seed, and validation and test
    score (NaN unless it finished)."""
    rows, seeds = [], seed_list(question.spec["seeds"])
    for labels, group in (derived_runs(question, source) or {}).items():
        for seed, overrides in zip(seeds, group):
            record = read_run(run_path(overrides))
            final = record.final if record.finished else {}
            rows.append(
                {
                    **dict(zip(question.spec["grid"], labels)),
                    "seed": seed,
                    f"val_{metric.name}": final.get(f"val_{metric.name}", math.nan),
                    f"test_{metric.name}": final.get(f"test_{metric.name}", math.nan),
                }
            )
    return pd.DataFrame(rows)


def write_paired(
    question: Question, source: Question, out: Path, metric: Metric = ACCURACY
) -> None:
    """Each cell minus its base cell, paired by seed (``paired``: axis, base by label)."""
    spec = question.spec["paired"]
    axis, base = spec["axis"], {k: str(v) for k, v in spec["base"].items()}
    runs, grid = run_rows(question, source, metric), list(question.spec["grid"])
    table = paired_to_base(runs, grid, axis, base, metric)
    table.to_csv(out / "paired.csv", index=False, float_format="%.6g")
    shown = _shown(table, metric, [c for c in table if c.endswith(("_diff", "_ci95"))])
    gained = "Accuracy points (%) gained" if metric.percent else "Loss (nats per token) added"
    text = (
        f"# {question.spec['title']}: each cell against its base {axis}\n\n"
        f"{gained} by each {axis} over the base {axis} of its row, paired by\n"
        f"seed: mean and 95% t-interval half-width over the seeds both finished (pairs);\n"
        f"unpaired: runs of the two cells that did not finish.\n\n"
    )
    (out / "paired.md").write_text(text + _markdown(shown) + "\n")


def report_computation(question: Question, out: Path) -> None:
    """A question answered by a deterministic computation (``function``: module:name)."""
    module, name = question.spec["function"].split(":")
    table = getattr(importlib.import_module(module), name)()
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False, float_format="%.6g")
    text = f"# {question.spec['title']}\n\n"
    (out / "table.md").write_text(text + table.to_markdown(index=False, floatfmt=".3g") + "\n")


def report(
    questions: list[Question], everything: dict[str, Question], records: Path, out: Path
) -> dict[str, tuple[int, int] | None]:
    """Every question with records; returns each one's failed validity checks and how many of
    them no passing direct test answers (None: it has no checks yet). Reporting every question
    also rebuilds status.md."""
    failed: dict[str, tuple[int, int] | None] = {}
    for question in questions:
        failed[question.name] = question.report(everything, records, out)
    if len(questions) == len(everything):
        write_status(status_table(questions, everything, failed), out)
    return failed


def status_table(
    questions: list[Question],
    everything: dict[str, Question],
    failed: dict[str, tuple[int, int] | None],
) -> pd.DataFrame:
    """Per question and in total: runs planned and settled in the records, the estimated CPU
    hours left, the hours the runs took, failed validity checks and those of them no passing
    direct test answers."""
    rows = []
    for question in questions:
        settled = question.settled_counts(everything)
        plan = [
            (runs, min(runs, settled.get(what, 0)), minutes)
            for what, runs, minutes in question.plan_rows()
        ]
        rows.append(
            {
                "question": question.name,
                "runs_planned": sum(runs for runs, _, _ in plan),
                "runs_settled": sum(done for _, done, _ in plan),
                "cpu_hours_left": sum((runs - done) * minutes for runs, done, minutes in plan) / 60,
                "hours_run": run_hours(question),
                "validity_failed": _blank(failed.get(question.name), 0),
                "unanswered": _blank(failed.get(question.name), 1),
            }
        )
    summed = ("runs_planned", "runs_settled", "cpu_hours_left", "hours_run")
    total = {key: sum(row[key] for row in rows) for key in summed}
    rows.append({"question": "total", **total, "validity_failed": "", "unanswered": ""})
    return pd.DataFrame(rows)


def run_hours(question: Question) -> float:
    """The hours its recorded runs took: each run's last logged wall-clock time (one thread)."""
    seconds = 0.0
    for status in question.runs.glob("*/status.json"):
        times = [m.get("wall_seconds") for m in read_run(status.parent).metrics]
        seconds += max((t for t in times if t is not None), default=0.0)
    return seconds / 3600


def _blank(counts: tuple[int, int] | None, index: int) -> int | str:
    return "" if counts is None else counts[index]


def write_status(table: pd.DataFrame, out: Path) -> None:
    text = (
        "# Where the study stands\n\nRebuilt by `make tables` from the committed records: runs\n"
        "settled (done, diverged or failed) of those the design plans, the estimated single-thread\n"
        "CPU hours the rest need, hours_run: the hours the recorded runs took (each run's last\n"
        "logged wall-clock time, one thread, two runs at a time), each comparison's failed\n"
        "validity checks (blank: none run), and\n"
        "unanswered: those of them that no passing direct test answers (see its validity.md).\n\n"
    )
    (out / "status.md").write_text(text + table.to_markdown(index=False, floatfmt=".1f") + "\n")
