"""The benchmark scripts' arithmetic and a tiny end-to-end cell, so they cannot rot silently."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_ratios_are_taken_against_adamw_and_each_baseline():
    bench = load("bench_optimizers")
    frame = pd.DataFrame(
        [
            dict(optimizer="adamw_foreach", baseline=None, step_median_ms=40.0),
            dict(optimizer="adamw_fused", baseline=None, step_median_ms=8.0),
            dict(optimizer="sirfshampoo_T2", baseline=None, step_median_ms=500.0),
            dict(optimizer="rootfree_shampoo_T2", baseline="sirfshampoo_T2", step_median_ms=250.0),
        ]
    )
    frame["step_mean_ms"] = [40.0, 8.0, 800.0, 200.0]  # a refresh every 2nd step: means differ
    frame["state_mib"] = [85.0, 85.0, 94.0, 47.0]
    out = bench.add_ratios(frame)
    row = out.set_index("optimizer").loc["rootfree_shampoo_T2"]
    assert row.vs_adamw_foreach == pytest.approx(6.25)
    assert row.vs_adamw_fused == pytest.approx(31.25)
    assert row.vs_baseline == pytest.approx(0.25)  # amortized: the ratio of means
    assert row.state_vs_baseline == pytest.approx(0.5)
    assert math.isnan(out.set_index("optimizer").loc["adamw_fused"].vs_baseline)


def test_state_bytes_counts_each_tensor_once():
    bench = load("bench_optimizers")
    params = [torch.nn.Parameter(torch.zeros(10, 10)), torch.nn.Parameter(torch.zeros(5))]
    optimizer = torch.optim.AdamW(params, lr=0.1, foreach=False)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    step_bytes = sum(s["step"].numel() * s["step"].element_size() for s in optimizer.state.values())
    assert bench.state_bytes(optimizer) == 2 * 4 * (100 + 5) + step_bytes


def test_precision_cell_reports_a_finite_run():
    precision = load("bench_precision")
    x, y = precision.make_task(torch.device("cpu"), steps=5)
    row = precision.run_cell("rootfree_shampoo", "bf16 state", x, y, torch.device("cpu"))
    assert row["first_non_finite_step"] is None
    assert math.isfinite(row["final_loss"]) and row["final_over_initial"] > 0


def test_narrowing_keeps_the_best_trials_ranges_on_validation():
    narrow = load("narrow_search")
    trials = [
        (0.90, dict(lr=0.01, momentum=0.9, weight_decay=1e-4)),
        (0.88, dict(lr=0.02, momentum=0.8, weight_decay=1e-4)),
        (0.50, dict(lr=1.0, momentum=0.1, weight_decay=1e-1)),
        (0.40, dict(lr=1e-5, momentum=0.5, weight_decay=1e-2)),
    ]
    ranges = narrow.narrowed_ranges(trials, top=0.5, margin=2.0)
    assert ranges["lr"] == pytest.approx((0.005, 0.04))
    assert ranges["momentum"] == pytest.approx((0.4, 0.999)), "widened, but below 1"
    assert "weight_decay" not in ranges, "one value among the best: nothing to narrow"
    (override,) = narrow.as_overrides({"lr": (0.005, 0.04)})
    assert override == "optimizer.lr=tag(log,interval(0.005,0.04))"


def test_the_bench_takes_every_registered_optimizer_and_its_reference(monkeypatch):
    import dataclasses

    from rootfree.optim import OPTIMIZERS

    plugged = dataclasses.replace(OPTIMIZERS["sgd"], name="plugged_sgd", provider="a-plugin")
    monkeypatch.setitem(OPTIMIZERS, "plugged_sgd", plugged)  # as a plug-in registers
    bench = load("bench_optimizers")
    labels = {config.label: config for config in bench.configs()}
    assert set(OPTIMIZERS) <= set(labels)
    assert labels["rootfree_shampoo"].baseline == "rootfree_shampoo_reference"
    model = torch.nn.Linear(4, 3)
    assert isinstance(labels["plugged_sgd"].build(model, 8), torch.optim.SGD)


def test_pairs_take_turns_so_a_stall_hits_both_alike():
    bench = load("bench_optimizers")
    calls = []
    timed = [lambda: calls.append("a") or 1.0, lambda: calls.append("b") or 2.0]
    times = bench.interleaved(timed, rounds=3, warmup=1)
    assert "".join(calls) == "abbaabba"
    assert times == [[1.0] * 3, [2.0] * 3]  # the warm-up round is dropped


def test_a_config_is_paired_with_its_baseline_only_when_both_are_selected():
    bench = load("bench_optimizers")
    ours = bench.BenchConfig("m", None, baseline="m_reference")
    theirs, other = bench.BenchConfig("m_reference", None), bench.BenchConfig("adamw", None)
    labels = lambda gs: [[c.label for c in g] for g in gs]  # noqa: E731
    assert labels(bench.groups([ours, theirs, other])) == [["m", "m_reference"], ["adamw"]]
    assert labels(bench.groups([ours, other])) == [["m"], ["adamw"]]


def test_the_ratio_interval_covers_the_ratio_of_means():
    bench = load("bench_optimizers")
    theirs = [1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 0.95, 1.05]
    ours = [1.5 * t + 0.01 * (-1) ** i for i, t in enumerate(theirs)]
    low, high = bench.ratio_ci(ours, theirs)
    assert low < sum(ours) / sum(theirs) < high and 1.45 < low and high < 1.55
