"""Figures (PNG and PDF): test error over training per optimizer with seed bands; tuning curves."""

from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rootfree.results.select import PANEL, compared_column, primary_metric  # noqa: E402
from rootfree.results.tables import panel_title  # noqa: E402
from rootfree.tasks import ACCURACY, Metric  # noqa: E402

_LINES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def style(optimizer: str) -> dict:
    """A line style and marker fixed per optimizer name (a checksum of it, so a method keeps its
    look whatever else is registered), so overlapping curves stay apart."""
    index = zlib.crc32(optimizer.encode())
    return {"linestyle": _LINES[index % len(_LINES)], "marker": _MARKERS[index % len(_MARKERS)]}


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _panels(frame: pd.DataFrame):
    """(title, file stem, rows) per dataset, model and budget; the stem names the budget only
    where its dataset and model have more than one."""
    for (dataset, model, budget), rows in frame.groupby(PANEL):
        label = rows["budget_label"].iloc[0]
        yield (
            panel_title(dataset, model, label),
            f"{dataset}_{model}" + (f"_{budget}" if label else ""),
            rows,
        )


def _save(figure, path: Path) -> list[Path]:
    paths = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in paths:
        # no creation date: regenerated figures are byte-identical; a PNG names the matplotlib
        # that drew it, since another minor version lays text out a few pixels apart
        metadata = (
            {"CreationDate": None}
            if p.suffix == ".pdf"
            else {"Software": f"matplotlib {matplotlib.__version__}"}
        )
        figure.savefig(p, bbox_inches="tight", dpi=120, metadata=metadata)
    plt.close(figure)
    return paths


THROUGHPUT_SPREAD = 2.0  # a panel's runs this many times apart in speed get a wall-clock note
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1), "borderaxespad": 0}


def throughput_spread(runs: pd.DataFrame) -> float:
    """Fastest over slowest run by median images per second over its epochs; NaN with fewer
    than two runs that logged it. Tells when wall-clock curves were measured under unequal load."""
    if "images_per_second" not in runs:
        return float("nan")
    speed = runs.groupby("run")["images_per_second"].median().dropna()
    speed = speed[speed > 0]
    return float(speed.max() / speed.min()) if len(speed) > 1 else float("nan")


def _throughput_note(spread: float) -> str:
    """The warning under a wall-clock figure's title; empty while the runs' speeds agree."""
    if not spread > THROUGHPUT_SPREAD:
        return ""
    ratio = f"{spread:.0f}" if spread >= 10 else f"{spread:.1f}"
    return (
        f"throughput differs up to {ratio}x across runs (machine load?): "
        "wall-clock times are not comparable"
    )


def _cell_runs(frame: pd.DataFrame, setting: str) -> pd.DataFrame:
    """The finished runs of one setting, each epoch that logged its test metric, as ``error``:
    1 - accuracy, or a language model's test loss."""
    runs = frame[(frame["setting"] == setting) & (frame["status"] == "done")]
    column = compared_column(frame, setting)
    runs = runs.dropna(subset=["epoch", column])
    return runs.assign(error=1 - runs[column] if column.endswith("_acc") else runs[column])


def _metric_word(cells: pd.DataFrame) -> str:
    """What a tuning panel's curves are in: accuracy, or a language model's loss."""
    return "accuracy" if primary_metric(cells["dataset"].iloc[0]).higher_is_better else "loss"


def _error_label(dataset: str) -> str:
    return "test error" if primary_metric(dataset).higher_is_better else "test loss (nats)"


def _draw_cell(axis, runs: pd.DataFrame, optimizer: str, x: str) -> None:
    """One optimizer's mean error over seeds as a line with a min-max band, and every seed's
    own points as faint markers, so the spread shows even with a single epoch."""
    error = runs.groupby("epoch").agg(
        x=(x, "mean"), mean=("error", "mean"), low=("error", "min"), high=("error", "max")
    )
    look = style(optimizer)
    (line,) = axis.plot(
        error["x"],
        error["mean"],
        label=f"{optimizer} ({_seeds(runs['seed'].nunique())})",
        markersize=4,
        **look,
    )
    color = line.get_color()
    axis.fill_between(error["x"], error["low"], error["high"], color=color, alpha=0.2)
    axis.plot(
        runs[x],
        runs["error"],
        linestyle="none",
        marker=look["marker"],
        markersize=3,
        color=color,
        alpha=0.4,
    )


def _error_figure(frame: pd.DataFrame, cells: pd.DataFrame, title: str, x: str) -> Figure:
    """One panel's error curves: each chosen cell's runs against ``x``, the legend outside the
    axes; against wall_seconds a note when the runs' throughputs differ."""
    figure, axis = plt.subplots(figsize=(6, 4))
    drawn = []
    for _, cell in cells.iterrows():
        runs = _cell_runs(frame, cell["setting"])
        if not runs.empty:
            _draw_cell(axis, runs, cell["optimizer"], x)
            drawn.append(runs)
    wall = x == "wall_seconds" and drawn
    note = _throughput_note(throughput_spread(pd.concat(drawn))) if wall else ""
    axis.set_title(title, pad=16 if note else 6)
    if note:
        axis.annotate(
            note,
            xy=(0.5, 1),
            xycoords="axes fraction",
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
            color="darkred",
        )
    xlabel = "wall-clock seconds" if x == "wall_seconds" else x
    axis.set(xlabel=xlabel, ylabel=_error_label(cells["dataset"].iloc[0]))
    if x == "epoch":
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axis.legend(**_OUTSIDE)
    return figure


def error_curves(
    frame: pd.DataFrame, chosen: pd.DataFrame, out: Path, x: str = "epoch"
) -> list[Path]:
    """Per (dataset, model, budget): test error of each optimizer's chosen setting vs ``x``
    (epoch or wall_seconds). Nothing when runs did not log ``x``."""
    written = []
    if x not in frame:
        return written
    for title, stem, cells in _panels(chosen):
        written += _save(_error_figure(frame, cells, title, x), out / f"error_vs_{x}_{stem}")
    return written


SATURATION_FROM = 4  # the y-range shows the curves from this many trials on


def _tuning_range(cells: pd.DataFrame) -> tuple[float, float]:
    """The y-range of a tuning panel: the mean curves from k >= SATURATION_FROM (or each
    curve's last k) up, padded; a wide band is clipped rather than setting it."""
    shown = cells[
        cells["k"] >= cells.groupby("optimizer")["k"].transform("max").clip(upper=SATURATION_FROM)
    ]
    low, high = shown["mean"].min(), cells["mean"].max()
    pad = 0.08 * (high - low) if high > low else max(0.01, 0.05 * abs(high))
    return low - pad, high + pad


def _tuning_figure(cells: pd.DataFrame, title: str) -> Figure:
    """One panel's tuning curves with light 5-95% bands and the legend outside the axes."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for optimizer, rows in cells.groupby("optimizer"):
        (line,) = axis.plot(
            rows["k"], rows["mean"], label=optimizer, markersize=4, **style(optimizer)
        )
        axis.fill_between(rows["k"], rows["low"], rows["high"], color=line.get_color(), alpha=0.12)
    axis.set_ylim(*_tuning_range(cells))
    axis.set_xscale("log", base=2)
    axis.xaxis.set_major_formatter("{x:.0f}")
    axis.set(
        xlabel="random-search trials (log scale)",
        ylabel=f"expected test {_metric_word(cells)} of the chosen trial",
        title=title,
    )
    axis.legend(**_OUTSIDE)
    return figure


def tuning_curves(curve: pd.DataFrame, out: Path) -> list[Path]:
    """Per (dataset, model, budget): expected test accuracy of the trial a k-trial search picks,
    with its 5-95% band, on a log2 trial axis. The y-range fits the mean curves at k >= 4, where
    they have to flatten; with one to three trials a curve may start below it."""
    written = []
    for title, stem, cells in _panels(curve):
        written += _save(_tuning_figure(cells, title), out / f"tuning_{stem}")
    return written


def sweep_curves(
    cells: pd.DataFrame,
    axes: list[str],
    sweep: str,
    across: str,
    order: list[str],
    path: Path,
    metric: Metric = ACCURACY,
) -> list[Path]:
    """One panel per combination of the other grid axes: the validation score (``metric``)
    against the swept value (grid order, log-spaced values), one line per ``across`` value; x
    marks a cell whose seeds all diverged, at the panel's worst value."""
    panels = [axis for axis in axes if axis not in {sweep, across}]
    groups = list(cells.groupby(panels, sort=False)) if panels else [((), cells)]
    figure, axes_ = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.6), sharey=True)
    position = {value: index for index, value in enumerate(order)}
    val, scale = f"val_{metric.name}", 100 if metric.percent else 1
    worst = cells[val].min() if metric.higher_is_better else cells[val].max()
    floor = float(worst * scale) if cells[val].notna().any() else 0.0
    for axis, (key, group) in zip(np.atleast_1d(axes_), groups):
        for index, (where, rows) in enumerate(group.groupby(across, sort=False)):
            rows = rows.assign(x=rows[sweep].map(position)).sort_values("x")
            line = axis.plot(
                rows["x"],
                rows[val] * scale,
                label=f"{across} {where}",
                marker=_MARKERS[index % len(_MARKERS)],
                markersize=4,
            )
            lost = rows[rows[val].isna() & (rows["diverged"] > 0)]
            axis.plot(lost["x"], [floor] * len(lost), "x", color=line[0].get_color())
        axis.set_xticks(range(len(order)), order, rotation=45)
        axis.set(xlabel=sweep, title=" / ".join(map(str, np.atleast_1d(key))))
    np.atleast_1d(axes_)[0].set_ylabel(f"validation {metric.label} ({metric.unit})")
    np.atleast_1d(axes_)[0].legend()
    return _save(figure, path)


__all__ = ["error_curves", "sweep_curves", "throughput_spread", "tuning_curves"]
