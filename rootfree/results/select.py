"""Choose, per (dataset, model, optimizer), the hyperparameter setting with the best validation score."""

from __future__ import annotations

import pandas as pd

CELL = ["dataset", "model", "optimizer"]
EPOCH_POLICIES = ("final", "best")


def run_scores(frame: pd.DataFrame, epoch: str = "final") -> pd.DataFrame:
    """One row per run: its val and test accuracy at the final epoch, or at its best-val epoch.

    Diverged and failed runs keep their row with NaN scores, so they are counted, never dropped.
    """
    if epoch not in EPOCH_POLICIES:
        raise ValueError(f"Invalid epoch policy: {epoch!r}; choose one of {list(EPOCH_POLICIES)}")
    logged = frame.dropna(subset=["epoch"])
    pick = (
        logged.groupby("run")["epoch"].idxmax()
        if epoch == "final"
        else logged.groupby("run")["val_acc"].idxmax()
    )
    chosen = logged.loc[pick, ["run", "epoch", "val_acc", "test_acc"]]
    runs = frame.drop_duplicates("run").drop(
        columns=[c for c in ("epoch", "val_acc", "test_acc") if c in frame]
    )
    runs = runs[
        [
            c
            for c in runs.columns
            if not c.startswith(("train_", "val_", "test_")) and c not in ("step", "lr_now")
        ]
    ]
    scores = runs.merge(chosen, on="run", how="left")
    unfinished = scores["status"] != "done"
    scores.loc[unfinished, ["val_acc", "test_acc"]] = float("nan")
    return scores


def select_best(scores: pd.DataFrame) -> pd.DataFrame:
    """The chosen setting per cell: highest mean validation accuracy over its finished seeds.

    The split that "validation" was is stamped in ``selection_split`` (``test`` only for runs
    configured to reproduce the paper's test-set tuning).
    """
    settings = (
        scores.groupby(CELL + ["setting"], dropna=False)
        .agg(
            val_acc=("val_acc", "mean"),
            seeds=("run", "count"),
            selection_split=("selection_split", "first"),
        )
        .reset_index()
    )
    settings = settings.dropna(subset=["val_acc"])
    best = settings.loc[settings.groupby(CELL)["val_acc"].idxmax()]
    return best.rename(columns={"val_acc": "selection_val_acc"}).reset_index(drop=True)
