"""Choose, per cell (dataset, model, budget, optimizer), the hyperparameter setting with the best
validation score. The budget (``rootfree.record.budget_id``) keeps runs of other epochs, subsets,
batch sizes or schedules out of each other's cells: only the optimizer's settings and the seed
vary inside one."""

from __future__ import annotations

import pandas as pd

from rootfree.results.stability import run_stability

PANEL = ["dataset", "model", "budget"]  # what a table column or a figure holds fixed
CELL = [*PANEL, "optimizer"]
EPOCH_POLICIES = ("final", "best")


def run_scores(frame: pd.DataFrame, epoch: str = "final") -> pd.DataFrame:
    """One row per run: its val and test accuracy at the final epoch, or at its best-val epoch,
    and its stability over all its epochs (worst_acc_drop, loss_spike; ``results.stability``).

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
    per_epoch = ("step", "lr_epoch", "wall_seconds", "images_per_second")
    runs = runs[
        [
            c
            for c in runs.columns
            if not c.startswith(("train_", "val_", "test_")) and c not in per_epoch
        ]
    ]
    scores = runs.merge(chosen, on="run", how="left").merge(
        run_stability(frame), on="run", how="left"
    )
    unfinished = scores["status"] != "done"
    scores.loc[unfinished, ["val_acc", "test_acc"]] = float("nan")
    return scores


def select_best(scores: pd.DataFrame) -> pd.DataFrame:
    """The chosen setting per cell: highest mean validation accuracy on the seeds all its settings
    share (a search's seed 0, say), so settings rerun with more seeds gain no selection advantage.

    The split that "validation" was is stamped in ``selection_split`` (``test`` only for runs
    configured to reproduce the paper's test-set tuning).
    """
    finished = scores.dropna(subset=["val_acc"])
    chosen = []
    for _, cell in finished.groupby(CELL):
        seed_sets = cell.groupby("setting")["seed"].agg(frozenset)
        common = frozenset.intersection(*seed_sets) or frozenset(cell["seed"])
        shared = cell[cell["seed"].isin(common)]
        ranked = shared.groupby("setting")["val_acc"].mean()
        best = ranked.idxmax()
        row = cell[cell["setting"] == best].iloc[0]
        chosen.append(
            {
                **{c: row[c] for c in CELL},
                "budget_label": row["budget_label"],
                "setting": best,
                "selection_val_acc": ranked[best],
                "seeds": int((cell["setting"] == best).sum()),
                "selection_split": row["selection_split"],
            }
        )
    return pd.DataFrame(chosen)
