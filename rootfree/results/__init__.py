"""From run directories to the paper's comparisons: tidy frame, selection, statistics, tables."""

from rootfree.results.collect import collect, collect_runs
from rootfree.results.select import select_best
from rootfree.results.stats import paired_difference, summarize
from rootfree.results.tables import comparison_table, missing_cells

__all__ = [
    "collect",
    "collect_runs",
    "comparison_table",
    "missing_cells",
    "paired_difference",
    "select_best",
    "summarize",
]
