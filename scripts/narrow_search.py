"""Stage 2 of the paper's two-stage random search: narrow each searched range to the best trials.

Reads the finished runs of a stage-1 search (run directories), keeps the top fraction by
*validation* accuracy, and prints Hydra overrides that set each searched hyperparameter's
log-uniform range to [min, max] over those trials, widened by ``--margin`` (a factor on each
side). Pass them to the stage-2 sweep:

    python scripts/narrow_search.py runs/ --optimizer rootfree_rmsprop --top 0.2
    python train.py -m tuning=random optimizer=rootfree_rmsprop $(python scripts/...)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rootfree.record import iter_runs
from rootfree.results.tuning import narrowed_ranges


def finished_trials(runs: Path, optimizer: str) -> list[tuple[float, dict]]:
    """(validation accuracy, optimizer settings) of every finished run of ``optimizer``."""
    return [
        (record.final["val_acc"], record.config["optimizer"])
        for record in iter_runs(runs)
        if record.state == "done"
        and not record.problems
        and record.config["optimizer"]["name"] == optimizer
    ]


def as_overrides(ranges: dict[str, tuple[float, float]]) -> list[str]:
    return [
        f"optimizer.{name}=tag(log,interval({low:.3g},{high:.3g}))"
        for name, (low, high) in ranges.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--optimizer", required=True)
    parser.add_argument("--top", type=float, default=0.2, help="fraction of trials kept")
    parser.add_argument("--margin", type=float, default=1.25, help="widening factor on each side")
    args = parser.parse_args()
    ranges = narrowed_ranges(finished_trials(args.runs, args.optimizer), args.top, args.margin)
    print(" ".join(f"'{o}'" for o in as_overrides(ranges)))


if __name__ == "__main__":
    main()
