"""`make study`: the small-scale study of experiments/study.yaml, resumable, N runs at a time.

Per question and optimizer: stage 1 samples the wide space (conf/search/random/), stage 2 the
range of stage 1's best trials, then the chosen setting (best mean validation accuracy over the
trials, by ``rootfree.results.select_best``) is rerun with more seeds. Runs are plain train.py
runs under ``runs/study/<question>``; a relaunch skips what is finished. ``--collect`` copies the
finished run records (no checkpoints) to results/study/runs/<question>, the folder to commit.

    python scripts/study.py plan                 # the runs and their estimated CPU time
    python scripts/study.py run --jobs 2         # run (or resume) everything, single-threaded jobs
    python scripts/study.py collect              # copy finished records, rebuild their tables
    python scripts/study.py report               # tables, checks, plots from the records
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rootfree.record import FINAL_STATUSES, RECORD_FILES, config_hash, read_run, setting_id
from rootfree.record.rundir import RunDir
from rootfree.results import validity
from rootfree.results.collect import collect, collect_runs
from rootfree.results.plots import error_curves, tuning_curves
from rootfree.results.select import run_scores, select_best
from rootfree.results.stats import summarize
from rootfree.results.tables import compact_markdown, comparison_table, skipped_note
from rootfree.results.tuning import narrowed_ranges, tuning_curve
from rootfree.train.final_eval import backfill_final_eval

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "experiments" / "study.yaml"
SPACE = re.compile(r"(tag\(log,)?interval\(([^,]+),([^)]+)\)\)?")


def load_space(optimizer: str) -> dict[str, tuple[float, float, bool]]:
    """The stage-1 space of ``optimizer``: {key: (low, high, log)} from conf/search/random/."""
    text = yaml.safe_load((ROOT / "conf" / "search" / "random" / f"{optimizer}.yaml").read_text())
    space = {}
    for key, value in text.items():
        match = SPACE.fullmatch(str(value).replace(" ", ""))
        if match is None:
            raise ValueError(f"cannot read the search space {key}: {value!r}")
        space[key.removeprefix("optimizer.")] = (float(match[2]), float(match[3]), bool(match[1]))
    return space


def sample(space: dict[str, tuple[float, float, bool]], n: int, seed: int) -> list[dict]:
    """``n`` settings drawn from ``space`` (log-uniform where marked), reproducibly."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        setting = {}
        for key, (low, high, log) in sorted(space.items()):
            value = (
                math.exp(rng.uniform(math.log(low), math.log(high)))
                if log
                else rng.uniform(low, high)
            )
            setting[key] = float(f"{value:.4g}")
        draws.append(setting)
    return draws


def merge_overrides(*groups: list[str]) -> list[str]:
    """Overrides in order, a later one replacing an earlier one of the same key (Hydra refuses
    two values for one key)."""
    merged: dict[str, str] = {}
    for group in groups:
        for override in group:
            merged[override.split("=", 1)[0].lstrip("+")] = override
    return list(merged.values())


class Question:
    """One comparison of the design and the run directories that answer it."""

    def __init__(self, name: str, spec: dict, runs: Path) -> None:
        self.name, self.spec, self.runs = name, spec, runs / name
        self.chosen: dict[str, dict] = {}  # optimizer -> chosen setting, once its trials settle

    def overrides(
        self,
        optimizer: str,
        setting: dict,
        seed: int,
        extra: list[str] = (),
        runs: Path | None = None,
    ) -> list[str]:
        return merge_overrides(
            self.spec["overrides"],
            [f"optimizer={optimizer}", *(f"optimizer.{k}={v}" for k, v in setting.items())],
            extra,
            [f"seed={seed}", f"paths.runs={runs or self.runs}"],
        )

    def space(self, optimizer: str) -> dict[str, tuple[float, float, bool]]:
        """The optimizer's stage-1 space with the question's bounds (``space``: key -> [low,
        high] for every optimizer with that key, or key -> {optimizer: [low, high]}) applied."""
        space = load_space(optimizer)
        for key, bounds in self.spec.get("space", {}).items():
            if isinstance(bounds, dict):
                bounds = bounds.get(optimizer)
            if key in space and bounds is not None:
                space[key] = (*map(float, bounds), space[key][2])
        return space

    def trials(self, optimizer: str) -> tuple[int, int]:
        """[stage 1, stage 2] trials of ``optimizer``: ``trials`` is a pair, or pairs by
        optimizer with a ``default``. Draws are sequential, so raising a count keeps every
        trial already drawn (and run) and only adds new ones."""
        trials = self.spec["trials"]
        first, second = (
            trials.get(optimizer, trials["default"]) if isinstance(trials, dict) else trials
        )
        return first, second

    def stage1(self, optimizer: str) -> list[dict]:
        return sample(self.space(optimizer), self.trials(optimizer)[0], seed=1)

    def stage2(self, optimizer: str, trials: list[tuple[float, dict]]) -> list[dict]:
        wide = self.space(optimizer)
        ranges = narrowed_ranges(trials, self.spec["top"], self.spec["margin"])
        space = {
            key: (
                max(low, ranges.get(key, (low, high))[0]),
                min(high, ranges.get(key, (low, high))[1]),
                log,
            )
            for key, (low, high, log) in wide.items()
        }
        return sample(space, self.trials(optimizer)[1], seed=2)


def compose_overrides(overrides: list[str]) -> dict:
    """The run config of ``overrides``, composed once per driver (the scheduler asks again for
    every run each time a job ends, and composing dominated the driver's CPU)."""
    return copy.deepcopy(_composed(tuple(overrides)))


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def run_path(overrides: list[str]) -> Path:
    config = compose_overrides(overrides)
    return Path(config["paths"]["runs"]) / config_hash(config)


# A failed run is not retried by the same driver (a deterministic crash would loop forever);
# interrupted and stale runs are resumed. ``--retry-failed`` retries failed ones too.
SETTLED = [*FINAL_STATUSES, "failed"]


def is_final(overrides: list[str]) -> bool:
    status = RunDir(run_path(overrides), writer=False).status()
    return status is not None and status["status"] in SETTLED


def finished_trials(
    question: Question, optimizer: str, settings: list[dict]
) -> list[tuple[float, dict]]:
    """(validation accuracy, setting) of the trials that finished as ``done``."""
    out = []
    for setting in settings:
        record = read_run(run_path(question.overrides(optimizer, setting, 0)))
        if record.state == "done" and not record.problems:
            out.append((record.final["val_acc"], setting))
    return out


def chosen_setting(question: Question, optimizer: str, settings: list[dict]) -> dict:
    """The trial the results module selects (best validation accuracy on seed 0), among these
    trials only (a run left from another design never competes)."""
    by_id = {
        setting_id(compose_overrides(question.overrides(optimizer, s, 0))): s for s in settings
    }
    frame = collect_runs(question.runs)
    frame = frame[(frame["optimizer"] == optimizer) & frame["setting"].isin(by_id)]
    (best,) = select_best(run_scores(frame))["setting"]
    return by_id[best]


def unfinished(runs) -> list[list[str]]:
    return [overrides for overrides in runs if not is_final(overrides)]


def progress(question: Question, optimizer: str) -> tuple[list[list[str]], dict | None]:
    """(the runs of (question, optimizer) that can start now, the chosen setting once both
    search stages are final)."""
    first = question.stage1(optimizer)
    todo = unfinished(question.overrides(optimizer, s, 0) for s in first)
    if todo:
        return todo, None
    trials = finished_trials(question, optimizer, first)
    if not trials:
        raise RuntimeError(f"{question.name}/{optimizer}: every stage-1 trial failed or diverged")
    second = question.stage2(optimizer, trials)
    todo = unfinished(question.overrides(optimizer, s, 0) for s in second)
    if todo:
        return todo, None
    if optimizer not in question.chosen:  # every trial is settled, so the choice is too
        question.chosen[optimizer] = chosen_setting(question, optimizer, first + second)
    best = question.chosen[optimizer]
    seeds = range(1, question.spec["seeds"])
    return unfinished(question.overrides(optimizer, best, seed) for seed in seeds), best


def derived_runs(
    question: Question, source: Question
) -> dict[tuple[str, ...], list[list[str]]] | None:
    """A derived question's runs by grid labels: the source's chosen setting of
    ``optimizer`` with each grid combination's overrides; None until that setting is known."""
    optimizer = question.spec["optimizer"]
    _, best = progress(source, optimizer)
    if best is None:
        return None
    grid = question.spec["grid"]
    runs = {}
    for combination in itertools.product(*(grid[axis].items() for axis in grid)):
        labels = tuple(str(label) for label, _ in combination)
        extra = [
            *question.spec.get("overrides", []),
            *(o for _, group in combination for o in group),
        ]
        runs[labels] = [
            source.overrides(optimizer, best, seed, extra, runs=question.runs)
            for seed in range(question.spec["seeds"])
        ]
    return runs


def pending(question: Question, questions: dict[str, Question]) -> list[list[str]]:
    """Every run of ``question`` that can start now."""
    if question.spec.get("kind") == "computation":
        return []
    if question.spec.get("kind") == "derived":
        runs = derived_runs(question, questions[question.spec["from"]])
        return [] if runs is None else unfinished(o for group in runs.values() for o in group)
    return [o for opt in question.spec["optimizers"] for o in progress(question, opt)[0]]


def train(overrides: list[str], log_path: Path, device: str) -> int:
    """One single-threaded train.py run (in a worker thread: no Hydra compose here). The device
    is not part of a run's identity, so CPU and GPU runs share run directories."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        command = [sys.executable, str(ROOT / "train.py"), *overrides, f"trainer.device={device}"]
        return subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=log).returncode


def run_all(
    questions: list[Question],
    everything: dict[str, Question],
    jobs: int,
    logs: Path,
    device: str = "cpu",
) -> None:
    """Keep ``jobs`` runs going (on one GPU they share it) until nothing is pending."""
    running: dict[Future, tuple[str, ...]] = {}
    with ThreadPoolExecutor(jobs) as pool:
        while True:
            busy = set(running.values())
            for question in questions:
                for overrides in pending(question, everything):
                    if len(running) < jobs and tuple(overrides) not in busy:
                        log_path = logs / run_path(overrides).with_suffix(".log").name
                        running[pool.submit(train, overrides, log_path, device)] = tuple(overrides)
                        busy.add(tuple(overrides))
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                overrides = running.pop(future)
                print(
                    f"[study] rc={future.result()} {' '.join(o for o in overrides if 'paths' not in o)}",
                    flush=True,
                )


def plan_rows(question: Question) -> list[tuple[str, int, float]]:
    """(what, runs, CPU minutes per run) of a question, before anything has run."""
    spec, minutes = question.spec, question.spec["minutes"]
    if spec.get("kind") == "computation":
        return [("computed by `report`", 0, 0.0)]
    if spec.get("kind") == "derived":
        cells = math.prod(len(axis) for axis in spec["grid"].values())
        each = {str(k): v for k, v in minutes.items()}
        return (
            [
                (label, spec["seeds"], each.get(label, minutes["default"]))
                for label in _grid_labels(spec)
            ]
            if cells
            else []
        )
    return [
        (opt, sum(question.trials(opt)) + spec["seeds"] - 1, minutes.get(opt, minutes["default"]))
        for opt in spec["optimizers"]
    ]


def _grid_labels(spec: dict) -> list[str]:
    return [
        "/".join(map(str, c))
        for c in itertools.product(*(axis.keys() for axis in spec["grid"].values()))
    ]


def plan(questions: list[Question], jobs: int) -> float:
    """Print the runs of each question with their estimated CPU minutes; return CPU hours."""
    total = 0.0
    for question in questions:
        print(f"{question.name}: {question.spec['title']}")
        for what, runs, minutes in plan_rows(question):
            total += runs * minutes
            print(
                f"  {what:22s} {runs:4d} runs x {minutes:4.1f} min = {runs * minutes:6.1f} CPU min"
            )
    print(f"total: {total / 60:.1f} CPU hours, about {total / 60 / jobs:.1f} h with {jobs} jobs")
    return total / 60


def follows_design(config: dict, overrides: list[str]) -> bool:
    """Whether a run's config has every value the question's overrides set (a run left over
    from an earlier design does not)."""
    for override in overrides:
        key, value = override.lstrip("+").split("=", 1)
        if "." not in key and key not in config:
            continue  # a group with no key of its own (experiment=...)
        node = config
        for part in key.split(".") if "." in key else [key, "name"]:
            node = node.get(part) if isinstance(node, dict) else None
        if node != yaml.safe_load(value):
            return False
    return True


def collect_records(questions: list[Question], out: Path) -> int:
    """Copy the records of final runs of the current design (config, status, metrics,
    provenance, final evaluation) to ``out``; a finished run from before final_eval.json was
    written gets it first, from its last checkpoint (which stays behind)."""
    copied = 0
    for question in questions:
        fixed = question.spec.get("overrides", [])
        for run in sorted(question.runs.glob("*/status.json")):
            record = read_run(run.parent)
            if record.state not in FINAL_STATUSES or not follows_design(record.config, fixed):
                continue
            if record.state == "done" and record.final_eval is None:
                backfill_final_eval(run.parent)
            target = out / question.name / run.parent.name
            target.mkdir(parents=True, exist_ok=True)
            for name in RECORD_FILES:
                if (run.parent / name).exists():
                    shutil.copy2(run.parent / name, target / name)
            copied += 1
    print(f"collected {copied} finished runs into {out}")
    return copied


CHECKS = {
    "converged": lambda frame, scores, chosen, spec: validity.converged(frame, chosen),
    "warm": lambda frame, scores, chosen, spec: validity.warm_preconditioner(frame, chosen),
    "tuning": lambda frame, scores, chosen, spec: validity.tuning_saturated(scores, chosen),
    "seeds": lambda frame, scores, chosen, spec: validity.enough_seeds(chosen, spec["seeds"]),
    "plateau": lambda frame, scores, chosen, spec: validity.plateaued(frame, chosen, "adamw"),
}


def with_mdd(table: pd.DataFrame) -> pd.DataFrame:
    """Add the minimal detectable difference (power 0.8, two-sided 5%) at each cell's seeds."""
    mdd = [validity.minimal_detectable_difference(r.std, int(r.seeds)) for r in table.itertuples()]
    return table.assign(mdd=mdd)


def report_question(question: Question, records: Path, out: Path) -> pd.DataFrame:
    """Tables, validity checks and plots of one question from its committed records."""
    frame, skipped = collect(records)
    scores = run_scores(frame)
    chosen = select_best(scores)
    out.mkdir(parents=True, exist_ok=True)
    table = with_mdd(comparison_table(scores, chosen))
    table.to_csv(out / "comparison.csv", index=False, float_format="%.6g")
    title = f"{question.spec['title']} (final epoch; {len(frame['run'].unique())} runs)"
    (out / "comparison.md").write_text(compact_markdown(table, title) + skipped_note(skipped))
    table.to_latex(out / "comparison.tex", index=False, float_format="%.4g")
    checks = pd.concat(
        [CHECKS[name](frame, scores, chosen, question.spec) for name in question.spec["checks"]],
        ignore_index=True,
    )
    checks.to_csv(out / "validity.csv", index=False, float_format="%.6g")
    lines = [
        f"# Validity checks: {question.name}\n",
        checks.to_markdown(index=False, floatfmt=".4g"),
    ]
    (out / "validity.md").write_text("\n".join(lines) + "\n")
    curve = tuning_curve(scores)
    curve.to_csv(out / "tuning.csv", index=False, float_format="%.6g")
    error_curves(frame, chosen, out, "epoch")
    error_curves(frame, chosen, out, "wall_seconds")
    tuning_curves(curve, out)
    return checks


def cell_row(records: list) -> dict:
    """Seeds, test accuracy mean and CI, final train accuracy, the fraction of second-moment
    coordinates still at S0, training images/s, optimizer state MiB, runs that did not finish."""
    done = [r for r in records if r.state == "done" and not r.problems]
    test = summarize([r.final["test_acc"] for r in done])

    def mean(key: str, rows=lambda r: [r.final]) -> float:
        values = [v for r in done for m in rows(r) if (v := m.get(key)) is not None]
        return float(np.mean(values)) if values else math.nan

    return {
        "seeds": test["n"],
        "test_acc": test["mean"],
        "ci95": test["ci"],
        "train_acc": mean("train_acc"),
        "s_at_init": mean("second_moment_at_init"),
        "images_per_s": mean("images_per_second", rows=lambda r: r.metrics),
        "state_mib": mean("optimizer_state_mib"),
        "not_done": sum(r.state != "done" for r in records),
    }


def derived_table(question: Question, source: Question) -> pd.DataFrame:
    """One row per grid cell, then one per ``references`` optimizer: the source question's own
    chosen setting of it, all its seeds, as the cells' baseline."""
    axes = list(question.spec["grid"])
    rows = [
        {**dict(zip(axes, labels)), **cell_row([read_run(run_path(o)) for o in group])}
        for labels, group in (derived_runs(question, source) or {}).items()
    ]
    for optimizer in question.spec.get("references", []):
        _, best = progress(source, optimizer)
        if best is None:
            continue
        group = [source.overrides(optimizer, best, seed) for seed in range(source.spec["seeds"])]
        label = {axis: "" for axis in axes} | {axes[0]: f"{optimizer} ({source.name})"}
        rows.append({**label, **cell_row([read_run(run_path(o)) for o in group])})
    return pd.DataFrame(rows)


def report_derived(question: Question, everything: dict[str, Question], out: Path) -> None:
    table = derived_table(question, everything[question.spec["from"]])
    if table.empty:
        return
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False, float_format="%.6g")
    shown = table.assign(test_acc=table["test_acc"] * 100, ci95=table["ci95"] * 100)
    text = (
        f"# {question.spec['title']}\n\n"
        "Test accuracy in %, +- the 95% CI over seeds; train_acc: the last epoch's running\n"
        "training accuracy; s_at_init: the fraction of second-moment coordinates still exactly\n"
        "at S0; images_per_s: training throughput (one thread, two runs sharing the machine);\n"
        "state_mib: the optimizer's state; not_done: runs that diverged, failed or are unfinished.\n\n"
    )
    (out / "table.md").write_text(text + shown.to_markdown(index=False, floatfmt=".4g") + "\n")


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
) -> int:
    """Every question with records; returns the number of failed validity checks."""
    failed = 0
    for question in questions:
        if question.spec.get("kind") == "computation":
            report_computation(question, out / question.name)
        elif question.spec.get("kind") == "derived":
            report_derived(question, everything, out / question.name)
        elif (records / question.name).exists():
            checks = report_question(question, records / question.name, out / question.name)
            failed += int((~checks["passed"]).sum())
            print(
                f"{question.name}: {len(checks)} validity checks, {int((~checks['passed']).sum())} failed"
            )
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["plan", "run", "collect", "report"])
    parser.add_argument("--design", type=Path, default=DESIGN)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "study")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "study" / "runs")
    parser.add_argument("--tables", type=Path, help="where report writes (default: --out/..)")
    parser.add_argument("--only", default="", help="comma-separated question names")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (also on one GPU)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to pack the runs on a GPU")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    args = parser.parse_args(argv)
    design = yaml.safe_load(args.design.read_text())["questions"]
    names = [n for n in args.only.split(",") if n] or list(design)
    everything = {name: Question(name, spec, args.runs.resolve()) for name, spec in design.items()}
    questions = [everything[name] for name in names]
    if args.command == "plan":
        plan(questions, args.jobs)
        return 0
    if args.command == "run":
        if args.retry_failed:
            SETTLED.remove("failed")
        run_all(questions, everything, args.jobs, args.runs / "logs", args.device)
    if args.command in ("run", "collect"):
        collect_records(questions, args.out)
    # records and the tables built from them always change together
    records = {name: Question(name, spec, args.out.resolve()) for name, spec in design.items()}
    report([records[q.name] for q in questions], records, args.out, args.tables or args.out.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
