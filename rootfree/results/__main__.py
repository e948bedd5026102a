"""`python -m rootfree.results RUNS_DIR --out results/tables [--epoch final|best] [--strict] [--plots]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rootfree.results.collect import collect
from rootfree.results.latex import write_latex
from rootfree.results.select import run_scores, select_best
from rootfree.results.stability import stability_markdown
from rootfree.results.tables import (
    compact_markdown,
    comparison_table,
    missing_cells,
    precision_table,
    skipped_note,
    with_holm,
)
from rootfree.results.tuning import tuning_curve
from rootfree.results.validity import stable_alternatives


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Build the comparison tables from run directories."
    )
    parser.add_argument(
        "runs", type=Path, nargs="?", default=Path("runs"), help="run directories (default: runs)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/tables"))
    parser.add_argument("--epoch", default="final", choices=["final", "best"])
    parser.add_argument(
        "--optimizers", default="", help="comma-separated: the cells a complete table needs"
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail when a cell has no finished run"
    )
    parser.add_argument("--plots", action="store_true", help="also write figures (PNG and PDF)")
    return parser


def write_tables(
    frame: pd.DataFrame,
    skipped: pd.DataFrame,
    scores: pd.DataFrame,
    out: Path,
    epoch: str,
    plots: bool,
) -> pd.DataFrame:
    """Write every table (and, with ``plots``, the figures) of one set of runs under ``out``."""
    chosen = select_best(scores)
    table = with_holm(comparison_table(scores, chosen))
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "runs.csv", index=False)
    table.to_csv(out / "comparison.csv", index=False, float_format="%.6g")
    write_latex(table, out / "comparison.tex")
    (out / "comparison.md").write_text(
        compact_markdown(table, f"Comparison ({epoch} epoch)") + skipped_note(skipped)
    )
    skipped.to_csv(out / "skipped.csv", index=False)
    precision = precision_table(scores)
    if not precision.empty:
        (out / "precision.md").write_text(
            "# The same settings with different optimizer-state dtypes (test accuracy over seeds)\n\n"
            + precision.to_markdown(index=False, floatfmt=".4f")
            + "\n"
        )
    stability = stable_alternatives(scores, chosen)
    stability.to_csv(out / "stability.csv", index=False, float_format="%.6g")
    (out / "stability.md").write_text(stability_markdown(stability))
    curve = tuning_curve(scores)
    curve.to_csv(out / "tuning.csv", index=False, float_format="%.6g")
    if plots:
        from rootfree.results.plots import error_curves, tuning_curves

        for x in ("epoch", "wall_seconds"):
            error_curves(frame, chosen, out, x)
        tuning_curves(curve, out)
    return table


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    frame, skipped, budgets = collect(args.runs)
    for row in skipped.itertuples():
        print(f"skipped: {row.path}: {row.reason}", file=sys.stderr)
    if frame.empty:
        print(f"no usable run directories under {args.runs}", file=sys.stderr)
        return 1
    scores = run_scores(frame, args.epoch)
    table = write_tables(frame, skipped, scores, args.out, args.epoch, args.plots)
    wanted = [o for o in args.optimizers.split(",") if o] or None
    missing = missing_cells(scores, wanted, budgets)
    for cell in missing:
        print(f"missing: {cell['panel']}: {', '.join(cell['optimizers'])}  ({cell['command']})")
    runs = frame["run"].nunique()
    print(
        f"wrote {args.out}/comparison.md (compact), comparison.csv and .tex ({len(table)} cells), "
        f"runs.csv ({runs} runs, {len(frame)} rows)"
    )
    return 1 if args.strict and (missing or len(skipped)) else 0


if __name__ == "__main__":
    sys.exit(main())
