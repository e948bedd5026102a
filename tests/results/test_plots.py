"""The figures, checked through matplotlib's objects: seed spread, throughput note, legend and
y-range placement."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from rootfree.results.plots import (
    THROUGHPUT_SPREAD,
    _error_figure,
    _tuning_figure,
    error_curves,
    throughput_spread,
    tuning_curves,
)

PANEL = {"dataset": "fashion_mnist", "model": "vit", "budget": "b0", "budget_label": ""}


def _runs(optimizer: str, errors: dict[int, list[float]], speed: dict[int, float]) -> list[dict]:
    """Per-epoch rows of one setting: seed -> test error per epoch, seed -> images per second."""
    rows = []
    for seed, per_epoch in errors.items():
        for epoch, error in enumerate(per_epoch, start=1):
            rows.append(
                {
                    **PANEL,
                    "run": f"{optimizer}-{seed}",
                    "setting": optimizer,
                    "optimizer": optimizer,
                    "status": "done",
                    "seed": seed,
                    "epoch": epoch,
                    "test_acc": 1 - error,
                    "images_per_second": speed[seed],
                    "wall_seconds": 1000.0 * epoch / speed[seed],
                }
            )
    return rows


def _chosen(*optimizers: str) -> pd.DataFrame:
    return pd.DataFrame([{**PANEL, "optimizer": o, "setting": o} for o in optimizers])


def _marked_points(figure) -> list[float]:
    """The y values of every point drawn with a marker."""
    return [
        float(y)
        for line in figure.axes[0].get_lines()
        if line.get_marker() not in (None, "", " ", "None", "none")
        for y in line.get_ydata()
    ]


def _note(figure) -> str:
    return " ".join(text.get_text() for text in figure.axes[0].texts)


def _legend_outside(figure) -> bool:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    return axis.get_legend().get_window_extent(renderer).x0 >= axis.get_window_extent(renderer).x1


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_one_epoch_runs_show_every_seed_as_a_marker():
    frame = pd.DataFrame(_runs("adamw", {0: [0.2], 1: [0.3], 2: [0.5]}, {0: 100, 1: 100, 2: 100}))
    for x in ("epoch", "wall_seconds"):
        figure = _error_figure(frame, _chosen("adamw"), "t", x)
        assert {0.2, 0.3, 0.5} <= {round(y, 6) for y in _marked_points(figure)}, x
        labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
        assert labels == ["adamw (3 seeds)"]
    axis = _error_figure(frame, _chosen("adamw"), "t", "epoch").axes[0]
    low, high = axis.get_xlim()
    assert [t for t in axis.get_xticks() if low <= t <= high] == [1], "whole epochs"


def test_throughput_spread_is_the_ratio_of_the_runs_median_speeds():
    runs = pd.DataFrame(
        {"run": ["a", "a", "a", "b", "b", "b"], "images_per_second": [10, 10, 900, 100, 1, 100]}
    )
    assert throughput_spread(runs) == pytest.approx(10.0)
    assert math.isnan(throughput_spread(runs[runs["run"] == "a"]))
    assert math.isnan(throughput_spread(runs.drop(columns="images_per_second")))
    assert math.isnan(throughput_spread(runs.assign(images_per_second=float("nan"))))


def test_the_wall_clock_figure_says_when_the_runs_throughput_differs():
    slow = _runs("adamw", {0: [0.3, 0.2], 1: [0.3, 0.2]}, {0: 10.0, 1: 12.0})
    fast = _runs("sgd", {0: [0.3, 0.2], 1: [0.3, 0.2]}, {0: 100.0, 1: 100.0})
    mixed, even = pd.DataFrame(slow + fast), pd.DataFrame(fast)
    note = _note(_error_figure(mixed, _chosen("adamw", "sgd"), "t", "wall_seconds"))
    assert "throughput differs up to 10x" in note and "not comparable" in note
    assert _note(_error_figure(mixed, _chosen("adamw", "sgd"), "t", "epoch")) == ""
    assert _note(_error_figure(even, _chosen("sgd"), "t", "wall_seconds")) == ""
    assert THROUGHPUT_SPREAD == 2.0


def _curve(optimizer: str, means: list[float], low: float, high: float) -> list[dict]:
    return [
        {**PANEL, "optimizer": optimizer, "k": k, "mean": mean, "low": low, "high": high}
        for k, mean in enumerate(means, start=1)
    ]


def test_the_tuning_range_follows_the_mean_curves_not_a_wide_band():
    curve = pd.DataFrame(
        _curve("adamw", [0.3, 0.5, 0.55, 0.58, 0.6], 0.19, 0.80)
        + _curve("sgd", [0.52, 0.53, 0.54, 0.55, 0.56], 0.5, 0.58)
    )
    axis = _tuning_figure(curve, "t").axes[0]
    low, high = axis.get_ylim()
    assert 0.5 < low < 0.55 and 0.6 < high < 0.65, "k >= 4 means, padded; k = 1 may fall below"
    assert all(band.get_alpha() <= 0.15 for band in axis.collections)


def test_legends_sit_outside_the_axes():
    frame = pd.DataFrame(_runs("adamw", {0: [0.3, 0.2], 1: [0.3, 0.25]}, {0: 100, 1: 100}))
    assert _legend_outside(_error_figure(frame, _chosen("adamw"), "t", "epoch"))
    assert _legend_outside(_tuning_figure(pd.DataFrame(_curve("adamw", [0.5, 0.6], 0.2, 0.8)), "t"))


def test_the_public_functions_save_one_figure_per_panel(tmp_path):
    frame = pd.DataFrame(_runs("adamw", {0: [0.3, 0.2]}, {0: 100}))
    curve = pd.DataFrame(_curve("adamw", [0.5, 0.6], 0.2, 0.8))
    written = error_curves(frame, _chosen("adamw"), tmp_path, "wall_seconds")
    written += tuning_curves(curve, tmp_path)
    assert sorted(p.name for p in written) == [
        "error_vs_wall_seconds_fashion_mnist_vit.pdf",
        "error_vs_wall_seconds_fashion_mnist_vit.png",
        "tuning_fashion_mnist_vit.pdf",
        "tuning_fashion_mnist_vit.png",
    ]
