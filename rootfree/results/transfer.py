"""Does a tuned hyperparameter transfer along another axis? From a grid swept over one
hyperparameter (``sweep``, e.g. lr) at several values of another (``across``, e.g. the batch
size): the value chosen on validation at the ``anchor``, and what it costs elsewhere; then
that cost re-measured on fresh seeds, paired by seed. Scores are the task's primary metric
(``metric``: accuracy by default; a language model's loss, where lower is better)."""

from __future__ import annotations

import math

import pandas as pd

from rootfree.results.stats import paired_difference
from rootfree.tasks import ACCURACY, Metric


def _best(rows: pd.DataFrame, metric: Metric):
    """The row with the best validation score (a diverged cell has none), or None."""
    done = rows.dropna(subset=[f"val_{metric.name}"])
    return None if done.empty else done.loc[metric.signed(done[f"val_{metric.name}"]).idxmax()]


def transfer_table(
    cells: pd.DataFrame,
    axes: list[str],
    sweep: str,
    across: str,
    anchor: str,
    order: list[str],
    metric: Metric = ACCURACY,
) -> pd.DataFrame:
    """Per group of the remaining axes and per ``across`` value: the best ``sweep`` value by
    validation accuracy there, the one chosen at ``anchor``, the test accuracy of each, the
    validation accuracy lost by transferring (``regret``) and how many grid steps the best value
    moved (``shift``; ``order``: the sweep's values in grid order); ``bracketed`` is True where
    the best value has a settled (finished or diverged) grid neighbour on each side, so the
    optimum lies between them; False at an end of the grid or beside a cell still to run. ``cells``:
    one row per grid cell, its labels in the columns ``axes``, with val_<metric> and
    test_<metric> (NaN where no seed finished) and ``diverged`` (seeds that diverged)."""
    val, test = f"val_{metric.name}", f"test_{metric.name}"
    groups = [axis for axis in axes if axis not in {sweep, across}]
    position = {value: index for index, value in enumerate(order)}
    rows = []
    for key, group in cells.groupby(groups, sort=False) if groups else [((), cells)]:
        chosen = _best(group[group[across] == anchor], metric)
        for where, rows_at in group.groupby(across, sort=False):
            best = _best(rows_at, metric)
            same = rows_at[rows_at[sweep] == chosen[sweep]] if chosen is not None else rows_at[:0]
            moved = None if same.empty else same.iloc[0]
            rows.append(
                {
                    **dict(zip(groups, key if isinstance(key, tuple) else (key,))),
                    across: where,
                    f"best_{sweep}": None if best is None else best[sweep],
                    "best_val": math.nan if best is None else best[val],
                    "best_test": math.nan if best is None else best[test],
                    f"{sweep}_from_{anchor}": None if chosen is None else chosen[sweep],
                    "transfer_val": math.nan if moved is None else moved[val],
                    "transfer_test": math.nan if moved is None else moved[test],
                    "regret": _regret(best, moved, metric),
                    "shift": math.nan
                    if best is None or chosen is None
                    else position[best[sweep]] - position[chosen[sweep]],
                    "bracketed": _bracketed(rows_at, best, sweep, order, position, val),
                }
            )
    return pd.DataFrame(rows)


def _bracketed(
    rows: pd.DataFrame, best, sweep: str, order: list[str], position: dict, val: str
) -> bool:
    """Both grid neighbours of ``best`` exist and have settled: finished or diverged."""
    if best is None:
        return False
    index = position[best[sweep]]
    if not 0 < index < len(order) - 1:
        return False
    settled = rows[rows[val].notna() | (rows["diverged"] > 0)][sweep]
    return {order[index - 1], order[index + 1]} <= set(settled)


def _regret(best, moved, metric: Metric) -> float:
    """Validation score lost by using the anchor's value instead of the best one here; a
    transferred value whose every seed diverged loses all of its accuracy (a language model:
    an infinite loss; one still running: unknown)."""
    if best is None or moved is None:
        return math.nan
    val = f"val_{metric.name}"
    if pd.isna(moved[val]):
        if moved["diverged"] == 0:
            return math.nan
        return float(best[val]) if metric.higher_is_better else math.inf
    return float(metric.signed(best[val] - moved[val]))


def paired_to_base(
    runs: pd.DataFrame,
    axes: list[str],
    axis: str,
    base: dict[str, str],
    metric: Metric = ACCURACY,
) -> pd.DataFrame:
    """Per grid cell whose ``axis`` label is not its base: its validation and test score
    (``metric``) minus the base cell's (the same other labels), paired by seed: mean and 95%
    t-interval. ``base``: a label of another axis -> the ``axis`` label its cells are compared
    to (e.g. by variant, the lr transferred from the anchor); a group without one is left out.
    ``runs``: one row per run with its labels in ``axes``, ``seed``, val_<metric> and
    test_<metric> (NaN where the run did not finish); ``unpaired`` counts the pair's runs that
    did not finish, so a pair lost to divergence shows."""
    groups = [name for name in axes if name != axis]
    rows = []
    for key, group in runs.groupby(groups, sort=False):
        labels = dict(zip(groups, key if isinstance(key, tuple) else (key,)))
        reference = next((base[label] for label in labels.values() if label in base), None)
        if reference is None:
            continue
        at_base = group[group[axis] == reference].set_index("seed")
        for label, cell in group[group[axis] != reference].groupby(axis, sort=False):
            cell = cell.set_index("seed")
            row = {**labels, axis: label, f"{axis}_base": reference}
            for column in (f"val_{metric.name}", f"test_{metric.name}"):
                gap = paired_difference(
                    cell[column].dropna().to_dict(), at_base[column].dropna().to_dict()
                )
                row |= {f"{column}_diff": gap["diff"], f"{column}_ci95": gap["ci"]}
            val = f"val_{metric.name}"
            unpaired = cell[val].isna().sum() + at_base[val].isna().sum()
            rows.append(row | {"pairs": gap["pairs"], "unpaired": int(unpaired)})
    return pd.DataFrame(rows)


def regret_pairs(
    table: pd.DataFrame, axis: str, a: str, b: str, across: str, anchor: str
) -> pd.DataFrame:
    """The regrets of ``axis`` labels ``a`` and ``b`` side by side, matched on every other
    label and the ``across`` value (the anchor left out: there both are 0 by construction);
    pairs where either is unknown are dropped. ``table``: a ``transfer_table``."""
    away = table[table[across].astype(str) != str(anchor)]
    keys = [c for c in away.columns if c in _label_columns(table, across) and c != axis]
    sides = [
        away[away[axis] == label][[*keys, "regret"]].rename(columns={"regret": f"regret_{label}"})
        for label in (a, b)
    ]
    pairs = sides[0].merge(sides[1], on=keys).dropna()
    return pairs.assign(difference=pairs[f"regret_{a}"] - pairs[f"regret_{b}"])


def _label_columns(table: pd.DataFrame, across: str) -> list[str]:
    """The grid-label columns of a transfer table: those before ``across``, and ``across``."""
    columns = list(table.columns)
    return columns[: columns.index(across) + 1]


def regret_difference(pairs: pd.DataFrame) -> dict[str, float]:
    """Mean, 95% t-interval and two-sided p of the paired regret differences (``regret_pairs``)."""
    values = dict(enumerate(pairs["difference"]))
    return paired_difference(values, dict.fromkeys(values, 0.0))
