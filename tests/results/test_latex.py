"""The comparison tables' LaTeX escapes names and shows missing values as `--`, so pdflatex
compiles it, both for a synthetic table and for the committed comparison.tex files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from rootfree.results.latex import latex_table
from tests.train.helpers import ROOT

COMMITTED = sorted((ROOT / "results" / "study").glob("*/comparison.tex")) + [
    ROOT / "results" / "paper_small" / "comparison.tex"
]
DOCUMENT = (
    "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n%s\\end{document}\n"
)


def synthetic() -> pd.DataFrame:
    """A table with the names and gaps that broke pdflatex: underscores, a NaN, an empty cell."""
    return pd.DataFrame(
        {
            "optimizer": ["rootfree_adam", "sgd"],
            "test_acc": [0.8669123, 0.8481],
            "gap_to_sgd": [0.01883, np.nan],
            "provenance": ["mixed commits", ""],
            "seeds": [3, 3],
        }
    )


def pdflatex() -> str:
    """The pdflatex executable; skipped without one, except on CI, where it must be installed."""
    found = shutil.which("pdflatex")
    if found is None and os.environ.get("CI"):
        pytest.fail("pdflatex is not on PATH on CI (.ci/run installs it)")
    if found is None:
        pytest.skip("pdflatex is not on PATH (install texlive-latex-recommended)")
    return found


def assert_compiles(tabular: str, tmp_path) -> None:
    """Wrap `tabular` in a minimal booktabs document and compile it with pdflatex."""
    (tmp_path / "table.tex").write_text(DOCUMENT % tabular)
    done = subprocess.run(
        [pdflatex(), "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "table.pdf").is_file()


def test_latex_escapes_names_and_shows_missing_values_as_dashes():
    tex = latex_table(synthetic())
    assert "test\\_acc" in tex and "gap\\_to\\_sgd" in tex and "rootfree\\_adam" in tex
    assert not re.search(r"\bnan\b", tex, re.IGNORECASE)
    assert "sgd & 0.8481 & -- & -- & 3" in tex
    assert "0.8669 " in tex
    assert "\\toprule" in tex and "\\bottomrule" in tex


@pytest.mark.slow
def test_synthetic_table_compiles(tmp_path):
    assert_compiles(latex_table(synthetic()), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_comparison_tex_compiles(path, tmp_path):
    assert_compiles(path.read_text(), tmp_path)
