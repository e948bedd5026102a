"""Running the study: which runs each question needs now, from the records already on disk,
and a pool that keeps N single-threaded train runs going; then collecting finished records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import yaml

from rootfree.compose import compose_overrides
from rootfree.record import RECORD_FILES, RunStatus, config_hash, read_run, setting_id
from rootfree.record.rundir import RunDir
from rootfree.results.collect import collect_runs
from rootfree.results.select import run_scores, select_best
from rootfree.study.design import Question, grid_cells, seed_list
from rootfree.tasks import task_for
from rootfree.train.final_eval import backfill_final_eval


def run_path(overrides: list[str]) -> Path:
    config = compose_overrides(overrides)
    return Path(config["paths"]["runs"]) / config_hash(config)


def is_settled(overrides: list[str], retry_failed: bool = False) -> bool:
    """Nothing left to run for this run (``RunStatus.settled``): a failed run is not retried
    by the same driver unless asked (a deterministic crash would loop forever)."""
    status = RunDir(run_path(overrides), writer=False).status()
    return status is not None and RunStatus(status["status"]).settled(retry_failed)


def finished_trials(
    question: Question, optimizer: str, settings: list[dict]
) -> list[tuple[float, dict]]:
    """(validation score, setting) of the trials that finished as ``done``: the task's primary
    metric, higher is better (accuracy; minus a language model's loss)."""
    out = []
    for setting in settings:
        record = read_run(run_path(question.overrides(optimizer, setting, 0)))
        if record.finished:
            task = task_for(record.config["dataset"]["name"])
            out.append((task.score(record.final), setting))
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


def unfinished(runs, retry_failed: bool = False) -> list[list[str]]:
    return [overrides for overrides in runs if not is_settled(overrides, retry_failed)]


def progress(question: Question, optimizer: str) -> tuple[list[list[str]], dict | None]:
    """(the runs of (question, optimizer) that can start now, the chosen setting once both
    search stages are final)."""
    first = question.stage1(optimizer)
    todo = unfinished((question.overrides(optimizer, s, 0) for s in first), question.retry_failed)
    if todo:
        return todo, None
    trials = finished_trials(question, optimizer, first)
    if not trials:
        raise RuntimeError(f"{question.name}/{optimizer}: every stage-1 trial failed or diverged")
    second = question.stage2(optimizer, trials)
    todo = unfinished((question.overrides(optimizer, s, 0) for s in second), question.retry_failed)
    if todo:
        return todo, None
    if optimizer not in question.chosen:  # every trial is settled, so the choice is too
        question.chosen[optimizer] = chosen_setting(question, optimizer, first + second)
    best = question.chosen[optimizer]
    seeds = range(1, question.spec["seeds"])
    reseeded = (question.overrides(optimizer, best, seed) for seed in seeds)
    return unfinished(reseeded, question.retry_failed), best


def derived_runs(
    question: Question, source: Question
) -> dict[tuple[str, ...], list[list[str]]] | None:
    """A derived question's runs by grid labels: the source's chosen setting of
    ``optimizer`` with each grid combination's overrides (only ``cells``' where it lists
    some); None until that setting is known."""
    optimizer = question.spec["optimizer"]
    _, best = progress(source, optimizer)
    if best is None:
        return None
    runs = {}
    for labels, overrides in grid_cells(question.spec):
        extra = [*question.spec.get("overrides", []), *overrides]
        runs[labels] = [
            source.overrides(optimizer, best, seed, extra, runs=question.runs)
            for seed in seed_list(question.spec["seeds"])
        ]
    return runs


def train(overrides: list[str], log_path: Path, device: str) -> int:
    """One single-threaded train.py run (in a worker thread: no Hydra compose here). The device
    is not part of a run's identity, so CPU and GPU runs share run directories."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        command = [
            sys.executable,
            "-m",
            "rootfree.train.cli",
            *overrides,
            f"trainer.device={device}",
        ]
        return subprocess.run(command, env=env, stdout=log, stderr=log).returncode


def run_all(
    questions: list[Question],
    everything: dict[str, Question],
    jobs: int,
    logs: Path,
    device: str = "cpu",
    launch=None,
) -> None:
    """Keep ``jobs`` runs going (on one GPU they share it) until nothing is pending; ``launch``
    runs one (``study.launchers``; default: a subprocess here)."""
    launch = launch or train
    running: dict[Future, tuple[str, ...]] = {}
    with ThreadPoolExecutor(jobs) as pool:
        while True:
            busy = set(running.values())
            for question in questions:
                for overrides in question.pending(everything):
                    if len(running) < jobs and tuple(overrides) not in busy:
                        log_path = logs / run_path(overrides).with_suffix(".log").name
                        running[pool.submit(launch, overrides, log_path, device)] = tuple(overrides)
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


def restore_records(questions: list[Question], out: Path) -> int:
    """Copy committed records (``out``) that the working runs lack into them, so a fresh clone
    resumes the study where its records stand instead of rerunning every settled run (and a
    derived question finds its source's chosen setting)."""
    restored = 0
    for question in questions:
        for status in sorted((out / question.name).glob("*/status.json")):
            target = question.runs / status.parent.name
            if not target.exists():
                shutil.copytree(status.parent, target)
                restored += 1
    return restored


def collect_records(questions: list[Question], out: Path) -> int:
    """Copy the records of final runs of the current design (config, status, metrics,
    provenance, final evaluation) to ``out``; a finished run from before final_eval.json was
    written gets it first, from its last checkpoint (which stays behind)."""
    copied = 0
    for question in questions:
        fixed = question.spec.get("overrides", [])
        for run in sorted(question.runs.glob("*/status.json")):
            record = read_run(run.parent)
            if not RunStatus(record.state).final or not follows_design(record.config, fixed):
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
