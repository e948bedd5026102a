"""Read run directories (``rootfree.record``) into one tidy frame, and the runs left out of it.

A run whose record has a problem (config edited after the run, a torn or repeated metrics row,
an unreadable status) never enters the frame: it is listed in ``skipped`` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from rootfree.optim import (
    get_optimizer_spec,
    optimizer_arguments,
    searched_arguments,
    to_paper_hparams,
)
from rootfree.record import RunRecord, budget_id, iter_runs, setting_id
from rootfree.results.budget import budget_labels, budget_settings

PAPER_COLUMNS = ("lr", "momentum", "lr_cov", "damping", "weight_decay", "riemannian_momentum")
DTYPE_KEYS = ("state_dtype", "preconditioner_dtype")


class Collected(NamedTuple):
    frame: pd.DataFrame  # one row per run and epoch
    skipped: pd.DataFrame  # run, path, reason: records kept out of every table
    budgets: dict[str, dict]  # budget id -> its settings, flat (results.budget.budget_settings)


PROVENANCE_COLUMNS = ("git_commit", "dataset_checksum", "cpu_capability")


def run_provenance(record: RunRecord) -> dict[str, str | bool | None]:
    """The code version, data and CPU kind a run came from (``mixed`` if its launches
    disagree), and whether any launch ran from a tree with uncommitted changes."""
    out: dict[str, str | bool | None] = {}
    for key in PROVENANCE_COLUMNS:
        values = {launch.get(key) for launch in record.launches}
        out[key] = values.pop() if len(values) == 1 else ("mixed" if values else None)
    out["git_dirty"] = any(launch.get("git_dirty") for launch in record.launches)
    return out


FINAL_EVAL_COLUMNS = ("train_eval_acc", "train_eval_loss")


def _base_row(record: RunRecord) -> dict:
    config = record.config
    optimizer = dict(config["optimizer"])
    name = optimizer.pop("name")
    get_optimizer_spec(name)
    arguments = optimizer_arguments(name, optimizer)
    paper = to_paper_hparams(name, arguments)
    return {
        "run": record.name,
        "status": record.state,
        "dataset": config["dataset"]["name"],
        "model": config["model"]["name"],
        "budget": budget_id(config),
        "optimizer": name,
        "seed": config["seed"],
        "setting": setting_id(config),
        "setting_any_dtype": setting_id(config, ignore_dtype=True),
        "optimizer_dtype": next((optimizer[k] for k in DTYPE_KEYS if optimizer.get(k)), None)
        or "default",
        "selection_split": config["dataset"].get("selection_split", "val"),
        **run_provenance(record),
        **{column: paper.get(column) for column in PAPER_COLUMNS},
        **searched_arguments(name, arguments),
        **{key: (record.final_eval or {}).get(key) for key in FINAL_EVAL_COLUMNS},
    }


def collect(root: str | Path) -> Collected:
    """Every run below ``root``: the tidy frame of the sound ones, and the skipped ones."""
    rows, skipped, budgets = [], [], {}
    for record in iter_runs(root):
        if record.problems:
            skipped.extend(
                {"run": record.name, "path": str(record.path), "reason": problem}
                for problem in record.problems
            )
            continue
        base = _base_row(record)
        budgets.setdefault((base["dataset"], base["model"]), {})[base["budget"]] = budget_settings(
            record.config
        )
        if not record.metrics:
            rows.append({**base, "epoch": None})
        # the epoch's scheduled learning rate must not shadow the hyperparameter ``lr``
        rows.extend(
            {**base, **{("lr_epoch" if k == "lr" else k): v for k, v in row.items()}}
            for row in record.metrics
        )
    labels = {b: text for group in budgets.values() for b, text in budget_labels(group).items()}
    frame = pd.DataFrame(rows)
    if len(frame):
        frame.insert(
            frame.columns.get_loc("budget") + 1, "budget_label", frame["budget"].map(labels)
        )
    settings = {b: flat for group in budgets.values() for b, flat in group.items()}
    return Collected(frame, pd.DataFrame(skipped, columns=["run", "path", "reason"]), settings)


def collect_runs(root: str | Path) -> pd.DataFrame:
    """The tidy frame alone: one row per run and epoch (one row with no epoch for a run that
    logged none). Columns: run, status, dataset, model, budget (the experiment a cell holds
    fixed) and budget_label (what sets it apart from the other budgets of its dataset and
    model, '' for the only one), optimizer, seed, setting, provenance,
    selection_split, the paper's hyperparameters, epoch and every metric the trainer logged."""
    return collect(root).frame
