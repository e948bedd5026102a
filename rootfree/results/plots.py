"""Figures (PNG and PDF): test error over training per optimizer with seed bands; tuning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rootfree.optim import OPTIMIZERS  # noqa: E402

_LINES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def style(optimizer: str) -> dict:
    """A line style and marker fixed per optimizer, so overlapping curves stay apart."""
    index = list(OPTIMIZERS).index(optimizer) if optimizer in OPTIMIZERS else len(OPTIMIZERS)
    return {"linestyle": _LINES[index % len(_LINES)], "marker": _MARKERS[index % len(_MARKERS)]}


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _save(figure, path: Path) -> list[Path]:
    paths = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in paths:
        # no creation date or version stamp: regenerated figures are byte-identical
        metadata = {"CreationDate": None} if p.suffix == ".pdf" else {"Software": None}
        figure.savefig(p, bbox_inches="tight", dpi=120, metadata=metadata)
    plt.close(figure)
    return paths


def error_curves(
    frame: pd.DataFrame, chosen: pd.DataFrame, out: Path, x: str = "epoch"
) -> list[Path]:
    """Per (dataset, model): test error of each optimizer's chosen setting vs ``x`` (epoch or
    wall_seconds), the mean over seeds with a min-max band. Nothing when runs did not log ``x``."""
    written = []
    if x not in frame:
        return written
    for (dataset, model), cells in chosen.groupby(["dataset", "model"]):
        figure, axis = plt.subplots(figsize=(6, 4))
        for _, cell in cells.iterrows():
            runs = frame[
                (frame["setting"] == cell["setting"]) & (frame["status"] == "done")
            ].dropna(subset=["epoch", "test_acc"])
            if runs.empty:
                continue
            error = (
                runs.assign(error=1 - runs["test_acc"])
                .groupby("epoch")
                .agg(
                    x=(x, "mean"),
                    mean=("error", "mean"),
                    low=("error", "min"),
                    high=("error", "max"),
                )
            )
            axis.plot(
                error["x"],
                error["mean"],
                label=f"{cell['optimizer']} ({_seeds(runs['seed'].nunique())})",
                markersize=4,
                **style(cell["optimizer"]),
            )
            axis.fill_between(error["x"], error["low"], error["high"], alpha=0.2)
        axis.set(
            xlabel="wall-clock seconds" if x == "wall_seconds" else x,
            ylabel="test error",
            title=f"{dataset} / {model}",
        )
        if x == "epoch":
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
        written += _save(figure, out / f"error_vs_{x}_{dataset}_{model}")
    return written


SATURATION_FROM = 4  # the y-range shows the curves from this many trials on


def tuning_curves(curve: pd.DataFrame, out: Path) -> list[Path]:
    """Per (dataset, model): expected test accuracy of the trial a k-trial search picks, with
    its 5-95% band, on a log2 trial axis. The y-range fits k >= 4, where the curves have to
    flatten; with one to three trials a curve may start below it."""
    written = []
    for (dataset, model), cells in curve.groupby(["dataset", "model"]):
        figure, axis = plt.subplots(figsize=(6, 4))
        for optimizer, rows in cells.groupby("optimizer"):
            axis.plot(rows["k"], rows["mean"], label=optimizer, markersize=4, **style(optimizer))
            axis.fill_between(rows["k"], rows["low"], rows["high"], alpha=0.2)
        shown = cells[
            cells["k"]
            >= cells.groupby("optimizer")["k"].transform("max").clip(upper=SATURATION_FROM)
        ]
        low, high = shown["low"].min(), cells["high"].max()
        if high > low:
            axis.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_formatter("{x:.0f}")
        axis.set(
            xlabel="random-search trials (log scale)",
            ylabel="expected test accuracy of the chosen trial",
            title=f"{dataset} / {model}",
        )
        axis.legend()
        written += _save(figure, out / f"tuning_{dataset}_{model}")
    return written


def sweep_curves(
    cells: pd.DataFrame, axes: list[str], sweep: str, across: str, order: list[str], path: Path
) -> list[Path]:
    """One panel per combination of the other grid axes: validation accuracy against the swept
    value (grid order, log-spaced values), one line per ``across`` value; x marks a cell whose
    seeds all diverged, at the panel's floor."""
    panels = [axis for axis in axes if axis not in {sweep, across}]
    groups = list(cells.groupby(panels, sort=False)) if panels else [((), cells)]
    figure, axes_ = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.6), sharey=True)
    position = {value: index for index, value in enumerate(order)}
    floor = float(cells["val_acc"].min() * 100) if cells["val_acc"].notna().any() else 0.0
    for axis, (key, group) in zip(np.atleast_1d(axes_), groups):
        for index, (where, rows) in enumerate(group.groupby(across, sort=False)):
            rows = rows.assign(x=rows[sweep].map(position)).sort_values("x")
            line = axis.plot(
                rows["x"],
                rows["val_acc"] * 100,
                label=f"{across} {where}",
                marker=_MARKERS[index % len(_MARKERS)],
                markersize=4,
            )
            lost = rows[rows["val_acc"].isna() & (rows["diverged"] > 0)]
            axis.plot(lost["x"], [floor] * len(lost), "x", color=line[0].get_color())
        axis.set_xticks(range(len(order)), order, rotation=45)
        axis.set(xlabel=sweep, title=" / ".join(map(str, np.atleast_1d(key))))
    np.atleast_1d(axes_)[0].set_ylabel("validation accuracy (%)")
    np.atleast_1d(axes_)[0].legend()
    return _save(figure, path)


__all__ = ["error_curves", "sweep_curves", "tuning_curves"]
