"""The comparison table: test accuracy over seeds, the gap to SGD, root-free minus root-based."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from rootfree.optim import OPTIMIZERS, get_optimizer_spec
from rootfree.results.budget import rerun_overrides
from rootfree.results.collect import PAPER_COLUMNS
from rootfree.results.select import CELL, PANEL, compared_column, primary_metric
from rootfree.results.stats import holm, paired_difference, summarize, welch_difference

REFERENCE = "sgd"
UNFINISHED = ("running", "stale", "interrupted")


def provenance_flag(runs: pd.DataFrame) -> str:
    """'' when every seed ran the same committed code on the same data and CPU kind; else what
    differs, and "dirty tree" when a seed ran uncommitted code (its commit is not its code)."""
    flags = []
    labels = (
        ("git_commit", "commits"),
        ("dataset_checksum", "datasets"),
        ("cpu_capability", "CPU kinds"),
    )
    for column, label in labels:
        values = runs[column].dropna() if column in runs else pd.Series(dtype=object)
        if "mixed" in set(values) or values.nunique() > 1:
            flags.append(f"mixed {label}")
    if "git_dirty" in runs and runs["git_dirty"].fillna(False).astype(bool).any():
        flags.append("dirty tree")
    return ", ".join(flags)


def _test_by_seed(scores: pd.DataFrame, setting: str) -> dict[int, float]:
    column = compared_column(scores, setting)
    rows = scores[(scores["setting"] == setting) & scores[column].notna()]
    return dict(zip(rows["seed"], rows[column]))


def _panel(row) -> tuple:
    return tuple(row[c] for c in PANEL)


def comparison_table(scores: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """One row per chosen (dataset, model, budget, optimizer) setting.

    test accuracy mean, std, 95% CI and seeds; diverged and failed runs of the setting; the gap to
    SGD's chosen setting (Welch CI); root-free minus its root-based counterpart (paired by seed).
    A language model's row has its test loss in place of accuracy (gaps in loss: negative is
    better), test_ppl (the perplexity of that mean loss), and its mean val_loss and val_ppl.
    """
    index = {tuple(row[c] for c in CELL): row for _, row in chosen.iterrows()}
    rows = []
    for _, cell in chosen.iterrows():
        runs = scores[scores["setting"] == cell["setting"]]
        accuracy = _test_by_seed(scores, cell["setting"])
        summary = summarize(list(accuracy.values()))
        row = {c: cell[c] for c in CELL} | {"budget_label": cell["budget_label"]}
        metric = primary_metric(cell["dataset"])
        row[f"test_{metric.name}"] = summary["mean"]
        if not metric.higher_is_better:
            row |= _perplexities(runs, summary)
        row.update(
            std=summary["std"],
            ci95=summary["ci"],
            seeds=summary["n"],
            diverged=int((runs["status"] == "diverged").sum()),
            failed=int((runs["status"] == "failed").sum()),
            unfinished=int(runs["status"].isin(UNFINISHED).sum()),
            provenance=provenance_flag(runs),
            selection_split=cell["selection_split"],
        )
        reference = index.get((*_panel(cell), REFERENCE))
        if reference is not None and cell["optimizer"] != REFERENCE:
            gap = _welch_gap(scores, accuracy, reference)
            row.update(gap_to_sgd=gap["diff"], gap_ci95=gap["ci"], gap_p=gap["p"])
        spec = get_optimizer_spec(cell["optimizer"])
        counterpart = index.get((*_panel(cell), spec.counterpart)) if spec.counterpart else None
        if counterpart is not None:
            paired = paired_difference(accuracy, _test_by_seed(scores, counterpart["setting"]))
            row.update(
                vs_counterpart=paired["diff"],
                vs_counterpart_ci95=paired["ci"],
                vs_counterpart_p=paired["p"],
                pairs=paired["pairs"],
            )
        first = runs.iloc[0]
        row.update({c: first[c] for c in PAPER_COLUMNS if c in first and not _missing(first[c])})
        rows.append(row)
    return pd.DataFrame(rows)


def _perplexities(runs: pd.DataFrame, test: dict) -> dict[str, float]:
    """A language model's test perplexity of the mean test loss, and its mean validation loss
    and the perplexity of that (over the seeds that finished)."""
    val = runs["val_loss"].dropna() if "val_loss" in runs else pd.Series(dtype=float)
    mean_val = float(val.mean()) if len(val) else math.nan
    return {
        "test_ppl": math.exp(test["mean"]) if test["n"] else math.nan,
        "val_loss": mean_val,
        "val_ppl": math.exp(mean_val) if len(val) else math.nan,
    }


def _welch_gap(scores: pd.DataFrame, accuracy: dict[int, float], reference) -> dict:
    baseline = _test_by_seed(scores, reference["setting"])
    return welch_difference(list(accuracy.values()), list(baseline.values()))


def with_gap_to(
    table: pd.DataFrame, scores: pd.DataFrame, chosen: pd.DataFrame, baseline: str
) -> pd.DataFrame:
    """``table`` (a comparison_table of ``chosen``) with each row's Welch difference to
    ``baseline``'s chosen setting on the same (dataset, model, budget): gap_to_<baseline> and
    its CI."""
    index = {tuple(row[c] for c in CELL): row for _, row in chosen.iterrows()}
    gaps = []
    for _, row in table.iterrows():
        reference = index.get((*_panel(row), baseline))
        cell = index[tuple(row[c] for c in CELL)]
        if reference is None or row["optimizer"] == baseline:
            gaps.append({"diff": math.nan, "ci": math.nan, "p": math.nan})
            continue
        gaps.append(_welch_gap(scores, _test_by_seed(scores, cell["setting"]), reference))
    return table.assign(
        **{
            f"gap_to_{baseline}": [g["diff"] for g in gaps],
            f"gap_to_{baseline}_ci95": [g["ci"] for g in gaps],
            f"gap_to_{baseline}_p": [g["p"] for g in gaps],
        }
    )


def _test_key(column: str, row) -> tuple:
    """Which test a p-value column holds for a row, so one Welch comparison that two rows
    report (AdamW vs SGD, SGD vs AdamW) counts once in the family."""
    panel = _panel(row)
    if column == "vs_counterpart_p":
        return (*panel, "paired", row["optimizer"])
    baseline = REFERENCE if column == "gap_p" else column[len("gap_to_") : -len("_p")]
    return (*panel, "welch", frozenset((row["optimizer"], baseline)))


def _compared(key: tuple) -> set[str]:
    """The optimizers a test (a ``_test_key``) compares."""
    kind, what = key[-2:]
    if kind == "welch":
        return set(what)
    return {what, get_optimizer_spec(what).counterpart}


def holm_family(optimizers: set[str], families: Mapping[str, Sequence[str]]) -> str:
    """The latest of the ordered ``families`` that names one of ``optimizers``: a family added
    later (methods that joined a question after its first reading) holds its tests against the
    earlier methods, so the earlier family's adjustment stays the one it was read with."""
    named = [name for name, members in families.items() if optimizers & set(members)]
    return named[-1] if named else ""


def with_holm(
    table: pd.DataFrame, families: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """``table`` with a Holm-adjusted twin (``<column>_holm``) of every p-value column
    (``*_p``), the family being every distinct test in the table, so a reading that survives
    it is not one lucky comparison among many. With ``families`` (name -> optimizers, in
    order) each test is adjusted within its ``holm_family`` only, and each row says its own."""
    columns = [c for c in table if c.endswith("_p")]
    tested = {
        _test_key(c, row): p
        for c in columns
        for _, row in table.iterrows()
        if not math.isnan(p := float(row[c]))
    }
    family = {key: holm_family(_compared(key), families or {}) for key in tested}
    adjusted = {}
    for name in set(family.values()):
        keys = [key for key in tested if family[key] == name]
        adjusted |= dict(zip(keys, holm([tested[key] for key in keys])))
    table = table.assign(
        **{
            f"{c}_holm": [
                math.nan if math.isnan(float(row[c])) else adjusted[_test_key(c, row)]
                for _, row in table.iterrows()
            ]
            for c in columns
        }
    )
    if families:
        table["holm_family"] = [holm_family({o}, families) for o in table["optimizer"]]
    return table


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def missing_cells(
    scores: pd.DataFrame,
    optimizers: list[str] | None = None,
    budgets: dict[str, dict] | None = None,
) -> list[dict[str, str]]:
    """Per (dataset, model, budget): the optimizers with no finished run and one command that
    fills them under the same budget (``budgets``: id -> settings, as ``collect`` gives them;
    without them the command names the dataset and model alone)."""
    optimizers = optimizers or sorted(OPTIMIZERS)
    done = scores[scores["status"] == "done"]
    have = set(map(tuple, done[CELL].drop_duplicates().values.tolist()))
    panels = scores[[*PANEL, "budget_label"]].drop_duplicates(PANEL).sort_values(PANEL)
    missing = []
    for dataset, model, budget, label in panels.itertuples(index=False):
        absent = [o for o in optimizers if (dataset, model, budget, o) not in have]
        if not absent:
            continue
        settings = (budgets or {}).get(budget)
        extra = rerun_overrides(settings) if settings else [f"dataset={dataset}", f"model={model}"]
        command = " ".join(
            ["rootfree-train -m tuning=random", *extra, f"optimizer={','.join(absent)}"]
        )
        missing.append(
            {"panel": panel_title(dataset, model, label), "optimizers": absent, "command": command}
        )
    return missing


def _percent(value: float, ci: float) -> str:
    return f"{100 * value:.2f}" + (f" ± {100 * ci:.2f}" if math.isfinite(ci) else "")


def _loss(value: float, ci: float) -> str:
    return f"{value:.4f}" + (f" ± {ci:.4f}" if math.isfinite(ci) else "")


def _cell_text(row: dict, metric) -> str:
    """A row's mean and CI as the compact table shows it: accuracy in %, a test loss with its
    perplexity and the validation perplexity."""
    if metric.higher_is_better:
        return _percent(row[f"test_{metric.name}"], row["ci95"])
    ppl = f"ppl {row['test_ppl']:.3g}, val ppl {row.get('val_ppl', math.nan):.3g}"
    return f"{_loss(row['test_loss'], row['ci95'])} ({ppl})"


def panel_title(dataset: str, model: str, label: str) -> str:
    """A table column's or a figure's name: dataset / model, then what sets its budget apart
    from the others' of the same dataset and model, if any."""
    return f"{dataset} / {model}" + (f" ({label})" if label else "")


def compact_table(table: pd.DataFrame) -> pd.DataFrame:
    """Optimizers x (dataset / model / budget): test accuracy in % with its 95% CI and seed
    count, the best mean of each column in bold, and the difference to SGD with its Welch CI."""
    order = {name: i for i, name in enumerate(OPTIMIZERS)}
    cells: dict[str, dict[str, str]] = {}
    for (dataset, model, _), rows in table.groupby(PANEL):
        title = panel_title(dataset, model, rows["budget_label"].iloc[0])
        metric = primary_metric(dataset)
        column = f"test_{metric.name}"
        best = rows[column].max() if metric.higher_is_better else rows[column].min()
        gap_text = _percent if metric.higher_is_better else _loss
        for row in rows.to_dict("records"):
            text = _cell_text(row, metric)
            text = f"**{text}**" if row[column] == best else text
            lost = [f"{row[k]} {k}" for k in ("diverged", "failed") if row.get(k)]
            text += f" (n={', '.join([str(row['seeds']), *lost])})"
            gap = row.get("gap_to_sgd", math.nan)
            if isinstance(gap, float) and math.isfinite(gap):
                text += f", {'+' if gap >= 0 else '−'}{gap_text(abs(gap), row['gap_ci95'])} vs SGD"
                if math.isfinite(row.get("gap_p_holm", math.nan)):
                    text += f" (Holm p {row['gap_p_holm']:.2g})"
            cells.setdefault(row["optimizer"], {})[title] = text
    compact = pd.DataFrame.from_dict(cells, orient="index").fillna("–")
    compact = compact.loc[sorted(compact.index, key=lambda name: order.get(name, len(order)))]
    return compact.rename_axis("optimizer").reset_index()


def _holm_scope(table: pd.DataFrame) -> str:
    """Which tests a Holm p-value of the table was adjusted with, in words."""
    if "holm_family" not in table:
        return "every test in comparison.csv"
    families = ", ".join(
        f"{f}: {', '.join(rows['optimizer'])}"
        for f, rows in table.groupby("holm_family", sort=False)
    )
    return f"the tests of the row's family (holm_family in comparison.csv; {families})"


def compact_markdown(table: pd.DataFrame, title: str) -> str:
    """The compact table with its reading instructions and the selection split."""
    splits = ", ".join(sorted(set(table["selection_split"]))) if len(table) else "none"
    note = (
        f"Test accuracy in %, mean ± 95% CI over n seeds of the setting chosen on the **{splits}** "
        "split; bold: the best mean of the column; then the difference to SGD (Welch 95% CI; "
        f"p-value Holm-adjusted over {_holm_scope(table)}). "
        "Every column is in comparison.csv and comparison.tex.\n\n"
    )
    if "test_loss" in table:
        note = note.replace(
            "Every column",
            "Language-model columns: test loss in nats per token instead (lower is better; "
            "ppl: the perplexity of the mean test loss, val ppl: of the mean validation loss; "
            "differences in loss). Every column",
        )
    return f"# {title}\n\n{note}" + compact_table(table).to_markdown(index=False) + "\n"


def skipped_note(skipped: pd.DataFrame) -> str:
    """A footnote naming every run kept out of the table and why ('' when none was)."""
    if skipped.empty:
        return ""
    lines = [f"- `{row.path}`: {row.reason}" for row in skipped.itertuples()]
    return (
        f"\n{skipped['run'].nunique()} run(s) skipped (not in any number above):\n\n"
        + "\n".join(lines)
        + "\n"
    )


def precision_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Settings run with more than one optimizer-state dtype, side by side (the precision question
    of docs/update_rules.md): test accuracy mean, std and seeds per dtype."""
    done = scores[scores["status"] == "done"]
    dtypes = done.groupby("setting_any_dtype")["optimizer_dtype"].nunique()
    twins = done[done["setting_any_dtype"].isin(dtypes[dtypes > 1].index)]
    if twins.empty:
        return pd.DataFrame()
    return (
        twins.groupby(CELL + ["optimizer_dtype"])["test_acc"]
        .agg(test_acc="mean", std="std", seeds="count")
        .reset_index()
    )
