"""The comparison table as a LaTeX tabular that pdflatex compiles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def latex_table(table: pd.DataFrame) -> str:
    """A booktabs tabular of `table`: headers and cells escaped and empty cells as `--`, so that
    names like `test_acc` or `rootfree_adam` and missing values do not stop pdflatex."""
    blanked = table.mask(table.eq(""))
    return blanked.to_latex(index=False, escape=True, na_rep="--", float_format="%.4g")


def write_latex(table: pd.DataFrame, path: Path) -> None:
    """Write `latex_table(table)` to `path`."""
    Path(path).write_text(latex_table(table))
