"""Choose, per cell (dataset, model, budget, optimizer), the hyperparameter setting with the best
validation score. The budget (``rootfree.record.budget_id``) keeps runs of other epochs, subsets,
batch sizes or schedules out of each other's cells: only the optimizer's settings and the seed
vary inside one."""

from __future__ import annotations

import math

import pandas as pd

from rootfree.results.stability import run_stability
from rootfree.tasks import Metric, task_for

PANEL = ["dataset", "model", "budget"]  # what a table column or a figure holds fixed
CELL = [*PANEL, "optimizer"]
EPOCH_POLICIES = ("final", "best")
SCORES = ("val_acc", "test_acc")  # kept for every run; language models add LM_SCORES
LM_SCORES = ("val_loss", "test_loss", "val_ppl", "test_ppl", "val_bpc", "test_bpc")


def primary_metric(dataset: str) -> Metric:
    """What runs on ``dataset`` are selected and compared on (``rootfree.tasks``)."""
    return task_for(dataset).primary


def signed_score(frame: pd.DataFrame, split: str = "val") -> pd.Series:
    """Each row's primary metric on ``split`` (its dataset's task decides which), signed so
    that higher is better: accuracy as it is, a language model's loss negated."""
    score = pd.Series(math.nan, index=frame.index, dtype=float)
    for dataset, rows in frame.groupby("dataset"):
        metric = primary_metric(dataset)
        column = f"{split}_{metric.name}"
        if column in rows:
            score[rows.index] = metric.signed(rows[column])
    return score


def compared_column(scores: pd.DataFrame, setting: str) -> str:
    """The test column a setting is compared on: its dataset's primary metric."""
    dataset = scores.loc[scores["setting"] == setting, "dataset"].iloc[0]
    return f"test_{primary_metric(dataset).name}"


def run_scores(frame: pd.DataFrame, epoch: str = "final") -> pd.DataFrame:
    """One row per run: its val and test accuracy (and a language model's loss, perplexity and
    bits per character) at the final epoch, or at the epoch of its best primary validation
    metric, and its stability over all its epochs (worst_acc_drop, loss_spike;
    ``results.stability``).

    Diverged and failed runs keep their row with NaN scores, so they are counted, never dropped.
    """
    if epoch not in EPOCH_POLICIES:
        raise ValueError(f"Invalid epoch policy: {epoch!r}; choose one of {list(EPOCH_POLICIES)}")
    logged = frame.dropna(subset=["epoch"])
    columns = [*SCORES, *(c for c in LM_SCORES if "val_ppl" in frame and c in frame)]
    if epoch == "final":
        pick = logged.groupby("run")["epoch"].idxmax()
    else:  # a run that never scored gets no pick and keeps NaN scores (the merge below)
        scored = logged.assign(score=signed_score(logged)).dropna(subset=["score"])
        pick = scored.groupby("run")["score"].idxmax()
    chosen = logged.loc[pick, ["run", "epoch", *columns]]
    runs = frame.drop_duplicates("run").drop(columns=[c for c in ("epoch", *columns) if c in frame])
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
    scores.loc[unfinished, columns] = float("nan")
    return scores


def select_best(scores: pd.DataFrame) -> pd.DataFrame:
    """The chosen setting per cell: the best mean primary validation metric (accuracy; a
    language model's loss) on the seeds all its settings share (a search's seed 0, say), so
    settings rerun with more seeds gain no selection advantage.

    The split that "validation" was is stamped in ``selection_split`` (``test`` only for runs
    configured to reproduce the paper's test-set tuning).
    """
    finished = scores.assign(score=signed_score(scores)).dropna(subset=["score"])
    chosen = []
    for _, cell in finished.groupby(CELL):
        seed_sets = cell.groupby("setting")["seed"].agg(frozenset)
        common = frozenset.intersection(*seed_sets) or frozenset(cell["seed"])
        shared = cell[cell["seed"].isin(common)]
        ranked = shared.groupby("setting")["score"].mean()
        best = ranked.idxmax()
        row = cell[cell["setting"] == best].iloc[0]
        metric = primary_metric(row["dataset"])
        chosen.append(
            {
                **{c: row[c] for c in CELL},
                "budget_label": row["budget_label"],
                "setting": best,
                f"selection_val_{metric.name}": metric.signed(ranked[best]),
                "seeds": int((cell["setting"] == best).sum()),
                "selection_split": row["selection_split"],
            }
        )
    return pd.DataFrame(chosen)
