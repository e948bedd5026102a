"""Stage 2 of the paper's two-stage random search: narrow each searched range to the best trials.

Reads the finished runs of a stage-1 search through the results module (sound records only,
settings ranked by mean validation accuracy), keeps the top fraction, and prints Hydra overrides
that set each searched hyperparameter's log-uniform range to [min, max] over those trials,
widened by ``--margin`` on each side. They paste into a shell as they are:

    python scripts/narrow_search.py runs/ --optimizer rootfree_rmsprop --top 0.25
    python train.py -m tuning=random optimizer=rootfree_rmsprop \\
        $(python scripts/narrow_search.py runs/ --optimizer rootfree_rmsprop --top 0.25)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from rootfree.results.collect import collect_runs
from rootfree.results.select import run_scores, signed_score
from rootfree.results.tuning import SEARCHED, narrowed_ranges


def trials(
    runs: Path, optimizer: str, dataset: str | None, model: str | None
) -> list[tuple[float, dict]]:
    """(mean validation score, paper hyperparameters) per finished setting of ``optimizer``: the
    task's primary metric, higher is better (accuracy; minus a language model's loss)."""
    scores = run_scores(collect_runs(runs))
    scores = scores.assign(score=signed_score(scores)).dropna(subset=["score"])
    keep = scores["optimizer"] == optimizer
    for column, value in (("dataset", dataset), ("model", model)):
        if value is not None:
            keep &= scores[column] == value
    chosen = scores[keep]
    if chosen[["dataset", "model"]].drop_duplicates().shape[0] > 1:
        found = sorted(map(tuple, chosen[["dataset", "model"]].drop_duplicates().values.tolist()))
        raise SystemExit(
            f"narrow_search: runs of several (dataset, model) pairs {found}; pass --dataset and --model"
        )
    settings = chosen.groupby("setting").agg(
        {"score": "mean", **{c: "first" for c in SEARCHED if c in chosen}}
    )
    return [
        (row.score, {c: row[c] for c in SEARCHED if c in row and not pd.isna(row[c])})
        for _, row in settings.iterrows()
    ]


def as_overrides(ranges: dict[str, tuple[float, float]]) -> list[str]:
    return [
        f"optimizer.{name}=tag(log,interval({low:.3g},{high:.3g}))"
        for name, (low, high) in ranges.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--optimizer", required=True)
    parser.add_argument("--dataset", help="only runs on this dataset")
    parser.add_argument("--model", help="only runs of this model")
    parser.add_argument("--top", type=float, default=0.25, help="fraction of trials kept")
    parser.add_argument("--margin", type=float, default=1.25, help="widening factor on each side")
    args = parser.parse_args(argv)
    found = trials(args.runs, args.optimizer, args.dataset, args.model)
    kept = math.ceil(args.top * len(found))
    if kept < 2:
        raise SystemExit(
            f"narrow_search: --top {args.top} of {len(found)} finished {args.optimizer} trials keeps "
            f"{kept}; a range needs at least 2 (raise --top or run more trials)"
        )
    print(" ".join(as_overrides(narrowed_ranges(found, args.top, args.margin))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
