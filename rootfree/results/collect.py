"""Read run directories (the trainer's contract, rootfree/train/rundir.py) into one tidy frame."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import yaml

from rootfree.optim import get_optimizer_spec, optimizer_arguments, to_paper_hparams
from rootfree.train.rundir import NON_SEMANTIC_KEYS

PAPER_COLUMNS = ("lr", "momentum", "lr_cov", "damping", "weight_decay", "riemannian_momentum")


DTYPE_KEYS = ("state_dtype", "preconditioner_dtype")


def _setting_id(config: dict, ignore_dtype: bool = False) -> str:
    """A run's configuration without its seed: the runs of one setting differ only in seed.

    With ``ignore_dtype`` the optimizer's state/preconditioner dtype is left out too, which pairs
    the fp32 and bf16 twins of one setting.
    """
    without_seed = {k: v for k, v in config.items() if k != "seed" and k not in NON_SEMANTIC_KEYS}
    if ignore_dtype:
        without_seed["optimizer"] = {
            k: v for k, v in config["optimizer"].items() if k not in DTYPE_KEYS
        }
    canonical = json.dumps(without_seed, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One row per run and epoch (one row with no epoch for a run that logged none).

    Columns: run, status, dataset, model, optimizer, seed, setting, selection_split, the paper's
    hyperparameters, epoch and every metric the trainer logged (its scheduled lr as ``lr_epoch``).
    """
    rows = []
    for status_path in sorted(Path(root).glob("*/status.json")):
        run_dir = status_path.parent
        config_path = run_dir / "config.yaml"
        if not config_path.exists():
            continue
        status = json.loads(status_path.read_text())
        config = yaml.safe_load(config_path.read_text())
        optimizer = dict(config["optimizer"])
        name = optimizer.pop("name")
        get_optimizer_spec(name)
        paper = to_paper_hparams(name, optimizer_arguments(name, optimizer))
        base = {
            "run": run_dir.name,
            "status": status["status"],
            "dataset": config["dataset"]["name"],
            "model": config["model"]["name"],
            "optimizer": name,
            "seed": config["seed"],
            "setting": _setting_id(config),
            "setting_any_dtype": _setting_id(config, ignore_dtype=True),
            "optimizer_dtype": next((optimizer[k] for k in DTYPE_KEYS if optimizer.get(k)), None)
            or "default",
            "selection_split": config["dataset"].get("selection_split", "val"),
            **{column: paper.get(column) for column in PAPER_COLUMNS},
        }
        metrics = (
            [
                json.loads(line)
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                if line.strip()
            ]
            if (run_dir / "metrics.jsonl").exists()
            else []
        )
        if not metrics:
            rows.append({**base, "epoch": None})
        # the epoch's scheduled learning rate must not shadow the hyperparameter ``lr``
        rows.extend(
            {**base, **{("lr_epoch" if k == "lr" else k): v for k, v in row.items()}}
            for row in metrics
        )
    return pd.DataFrame(rows)
